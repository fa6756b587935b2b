"""What Lambda's event sources do in AWS, done by threads: hand records to the real handlers."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3

from local.invoke import Handler, invoke
from sis_imports.core.delivery import STREAM_BATCH_SIZE, STREAM_BISECT_ON_ERROR, STREAM_MAX_RECORD_AGE_SECONDS

REGION = "us-east-1"
SQS_VISIBILITY_SECONDS = 3  # AWS uses 6x the function timeout; locally a failed message comes back sooner


def _lambda_shaped(record: dict[str, Any]) -> dict[str, Any]:
    """GetRecords gives datetimes where Lambda's event has epoch seconds."""
    return json.loads(json.dumps(record, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)))


def _failed_ids(result: Any) -> set[str]:
    return {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", []) if isinstance(f, dict)}


def read_stream(streams: Any, stream_arn: str, iterators: dict[str, str]) -> list[dict[str, Any]]:
    """The stream's new records, shaped as Lambda's DynamoDB event source hands them over.

    `iterators` keeps each shard's position between calls (shared with tests/aws_env.py).
    """
    records: list[dict[str, Any]] = []
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = iterators.get(shard_id) or streams.get_shard_iterator(
            # The table starts empty (made by this run or test): from the start misses nothing.
            StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = streams.get_records(ShardIterator=iterator)
        if response.get("NextShardIterator"):
            iterators[shard_id] = response["NextShardIterator"]
        records += [{**_lambda_shaped(r), "eventSourceARN": stream_arn} for r in response.get("Records", [])]
    return records


class Poller(threading.Thread):
    def __init__(self, name: str, stop: threading.Event, interval: float = 0.2):
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.interval = interval

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                busy = self.poll()
            except Exception as exc:  # keep polling: a local hiccup must not end the run
                if self.stop.is_set():
                    break  # moto is going away on shutdown: not worth a message
                print(f"[{self.name}] {type(exc).__name__}: {exc}", flush=True)
                busy = False
            if not busy:
                self.stop.wait(self.interval)

    def poll(self) -> bool:
        """One round; True when there was work (poll again at once)."""
        raise NotImplementedError


class StreamPoller(Poller):
    """The table's stream -> the notifier, as the stack's event source mapping does it (the numbers are
    sis_imports/core/delivery.py's, which the stack uses too): batches of STREAM_BATCH_SIZE in stream order;
    on a reported failure, again from the first failed record; on a failed invocation, the batch split
    in half (bisection) until the failing record is alone; no retry count: a record is given up only
    once it is older than STREAM_MAX_RECORD_AGE_SECONDS, and then described (shard, sequence numbers,
    no content) on the notifier's failure queue, as Lambda's on-failure destination does."""

    def __init__(self, stop: threading.Event, stream_arn: str, handler: Handler, streams: Any = None,
                 failures_url: str | None = None, sqs: Any = None, clock: Any = time.time):
        super().__init__("stream", stop)
        self.stream_arn = stream_arn
        self.handler = handler
        self.streams = streams or boto3.client("dynamodbstreams")
        self.failures_url = failures_url
        self.sqs = sqs if sqs is not None or not failures_url else boto3.client("sqs")
        self.clock = clock
        self.iterators: dict[str, str] = {}
        self.pending: list[dict[str, Any]] = []  # records not yet handled successfully, in stream order
        self.attempts = 0
        self.batch_size = STREAM_BATCH_SIZE  # halved while an invocation keeps failing (bisection)

    def _expired(self, record: dict[str, Any]) -> bool:
        created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
        return created is not None and self.clock() - float(created) > STREAM_MAX_RECORD_AGE_SECONDS

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        print(f"[stream] gave up on {len(records)} record(s) older than {STREAM_MAX_RECORD_AGE_SECONDS} s "
              "(the stack's age limit); described on the notifier's failure queue", flush=True)
        if self.failures_url:
            self.sqs.send_message(QueueUrl=self.failures_url, MessageBody=json.dumps({
                "requestContext": {"condition": "RecordAgeExceeded", "functionArn": "notifier",
                                   "approximateInvokeCount": self.attempts},
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "DDBStreamBatchInfo": {"streamArn": self.stream_arn, "batchSize": len(records),
                                       "startSequenceNumber": numbers[0], "endSequenceNumber": numbers[-1]},
            }))

    def poll(self) -> bool:
        self.pending += read_stream(self.streams, self.stream_arn, self.iterators)
        expired = [r for r in self.pending if self._expired(r)]
        if expired:
            self._give_up(expired)
            self.pending = [r for r in self.pending if not self._expired(r)]
        if not self.pending:
            return False
        batch = self.pending[:self.batch_size]
        try:
            failed = _failed_ids(invoke(self.handler, {"Records": batch}, "notifier"))
            first = None
            if failed:
                numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
                first = min((numbers.index(n) for n in failed if n in numbers), default=0)
        except Exception as exc:  # the whole invocation failed: Lambda retries the batch, split in half
            if STREAM_BISECT_ON_ERROR and len(batch) > 1:
                self.batch_size = max(1, len(batch) // 2)
            print(f"[stream] the notifier raised {type(exc).__name__}; retrying {self.batch_size} record(s)",
                  flush=True)
            first = 0
        if first is None:
            self.pending, self.attempts, self.batch_size = self.pending[len(batch):], 0, STREAM_BATCH_SIZE
            return True
        self.attempts += 1
        self.pending = self.pending[first:]  # resume at the first failed record, as Lambda does
        self.stop.wait(min(2.0, 0.2 * 2**min(self.attempts, 10)))
        return False


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class CanvasQueuePoller(Poller):
    """The Canvas queue -> the SQS consumer, in Lambda's SQS event shape (partial batch failures honoured)."""

    def __init__(self, stop: threading.Event, queue_url: str, queue_arn: str, handler: Handler, max_receives: int,
                 sqs: Any = None, name: str = "sqs", function_name: str = "sqs-consumer"):
        super().__init__(name, stop)
        self.queue_url, self.queue_arn, self.handler, self.max_receives = queue_url, queue_arn, handler, max_receives
        self.function_name = function_name
        self.sqs = sqs or boto3.client("sqs")

    def poll(self) -> bool:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=SQS_VISIBILITY_SECONDS,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        event = {"Records": [_sqs_record(m, self.queue_arn) for m in messages]}
        try:
            failed = _failed_ids(invoke(self.handler, event, self.function_name))
        except Exception as exc:  # Lambda: the whole batch becomes visible again
            print(f"[{self.name}] the consumer raised {type(exc).__name__}; the batch comes back", flush=True)
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            receives = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
            where = ("moves to the dead-letter queue" if receives >= self.max_receives
                     else f"comes back in {SQS_VISIBILITY_SECONDS} s")
            print(f"[{self.name}] message {message['MessageId']} failed (receive {receives} of {self.max_receives}); "
                  f"it {where}", flush=True)
        return True


class EventBridgePoller(Poller):
    """The bus rule's target queue -> the EventBridge consumer, one event per invocation as EventBridge does."""

    def __init__(self, stop: threading.Event, queue_url: str, handler: Handler, sqs: Any = None):
        super().__init__("eventbridge", stop)
        self.queue_url, self.handler = queue_url, handler
        self.sqs = sqs or boto3.client("sqs")

    def poll(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            VisibilityTimeout=30).get("Messages", [])
        for message in messages:
            try:
                invoke(self.handler, json.loads(message["Body"]), "eventbridge-consumer")
            except Exception as exc:
                # The handler's reason names fields, never values. In AWS: two more tries, then the DLQ.
                print(f"[eventbridge] event refused ({type(exc).__name__}: {exc}); "
                      "in AWS it would reach the bus's dead-letter queue", flush=True)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)


def notification_line(envelope: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope (raw delivery off) as one notifications-file line."""
    try:
        message: Any = json.loads(envelope.get("Message") or "null")
    except ValueError:
        message = envelope.get("Message")  # not JSON: keep it as text rather than lose it
    from sis_imports.core.alert_text import email_text

    return {
        "subject": envelope.get("Subject"),
        "message": message,
        "attributes": {name: value.get("Value") for name, value in (envelope.get("MessageAttributes") or {}).items()},
        # What an email subscriber of the topic reads (the per-protocol message's `email` part).
        "email": email_text(message) if isinstance(message, dict) else None,
    }


def describe(line: dict[str, Any], path: Path) -> str:
    """The alert as an email subscriber reads it, indented under its subject."""
    text = line.get("email") or json.dumps(line.get("message"))
    body = "\n".join(f"         {row}" if row else "" for row in text.rstrip().splitlines())
    return f"\n  ALERT  {line['subject']}\n{body}\n         (appended to {path})\n"


class AlertSubscriber(Poller):
    """The topic's subscriber: prints each alert and appends it to the notifications file."""

    def __init__(self, stop: threading.Event, queue_url: str, path: Path, sqs: Any = None):
        super().__init__("alerts", stop)
        self.queue_url, self.path = queue_url, path
        self.sqs = sqs or boto3.client("sqs")
        path.parent.mkdir(parents=True, exist_ok=True)

    def poll(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            VisibilityTimeout=30).get("Messages", [])
        for message in messages:
            try:
                line = notification_line(json.loads(message["Body"]))
            except ValueError:
                line = {"subject": None, "message": message["Body"], "attributes": {}}
            # Written, then deleted: nothing below may raise in between, or the line would be written twice.
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            print(describe(line, self.path), flush=True)
        return bool(messages)
