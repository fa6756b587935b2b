"""What Lambda's event sources do in AWS, done by threads: hand records to the real handlers."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import boto3

from local.lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
MAX_STREAM_RETRIES = 10  # as the stack's event source mapping


def _lambda_shaped(record: dict[str, Any]) -> dict[str, Any]:
    """GetRecords gives datetimes where Lambda's event has epoch seconds."""
    return json.loads(json.dumps(record, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)))


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
                print(f"[{self.name}] {type(exc).__name__}: {exc}", flush=True)
                busy = False
            if not busy:
                self.stop.wait(self.interval)

    def poll(self) -> bool:
        raise NotImplementedError


class StreamPoller(Poller):
    """The table's stream -> the notifier, retrying from the first failed record like Lambda."""

    def __init__(self, stop: threading.Event, stream_arn: str, handler: Handler):
        super().__init__("stream", stop)
        self.stream_arn = stream_arn
        self.handler = handler
        self.streams = boto3.client("dynamodbstreams")
        self.iterators: dict[str, str] = {}
        self.pending: list[dict[str, Any]] = []
        self.attempts = 0

    def poll(self) -> bool:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self.iterators.get(shard_id) or self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            response = self.streams.get_records(ShardIterator=iterator)
            self.iterators[shard_id] = response["NextShardIterator"]
            self.pending += [{**_lambda_shaped(r), "eventSourceARN": self.stream_arn} for r in response["Records"]]
        if not self.pending:
            return False
        result = self.handler({"Records": list(self.pending)}, LambdaContext(function_name="notifier"))
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        if not failed:
            self.pending, self.attempts = [], 0
            return True
        self.attempts += 1
        numbers = [r["dynamodb"]["SequenceNumber"] for r in self.pending]
        first = min(numbers.index(n) for n in failed if n in numbers)
        if self.attempts > MAX_STREAM_RETRIES:
            print(f"[stream] gave up on {len(self.pending) - first} record(s) after {MAX_STREAM_RETRIES} retries "
                  "(in AWS they would go to the notifier's failure queue)", flush=True)
            self.pending, self.attempts = [], 0
        else:
            self.pending = self.pending[first:]
            self.stop.wait(min(2.0, 0.2 * 2**self.attempts))
        return False


class QueuePoller(Poller):
    """An SQS queue -> a handler, in Lambda's SQS event shape (partial batch failures honoured)."""

    def __init__(self, name: str, stop: threading.Event, queue_url: str, queue_arn: str, handler: Handler,
                 eventbridge: bool = False):
        super().__init__(name, stop)
        self.queue_url, self.queue_arn, self.handler, self.eventbridge = queue_url, queue_arn, handler, eventbridge
        self.sqs = boto3.client("sqs")

    def poll(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            VisibilityTimeout=5).get("Messages", [])
        if not messages:
            return False
        if self.eventbridge:
            done = []
            for message in messages:  # EventBridge invokes its target once per event
                try:
                    self.handler(json.loads(message["Body"]), LambdaContext(function_name="eventbridge"))
                except Exception as exc:
                    print(f"[eventbridge] event refused: {exc}", flush=True)  # AWS: to the on-failure queue
                done.append(message)
        else:
            records = [
                {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                 "attributes": {}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                 "eventSourceARN": self.queue_arn, "awsRegion": "us-east-1"}
                for m in messages
            ]
            result = self.handler({"Records": records}, LambdaContext(function_name="sqs-consumer"))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if failed:
                print(f"[sqs] {len(failed)} message(s) failed; they come back after the visibility timeout "
                      "(in AWS, to the dead-letter queue after 5 receives)", flush=True)
        for message in done:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return True


class AlertSubscriber(Poller):
    """The topic's subscriber: prints each alert and appends it to the notifications file."""

    def __init__(self, stop: threading.Event, queue_url: str, path: Path):
        super().__init__("alerts", stop)
        self.queue_url, self.path = queue_url, path
        self.sqs = boto3.client("sqs")
        path.parent.mkdir(parents=True, exist_ok=True)

    def poll(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            envelope = json.loads(message["Body"])
            line = {
                "subject": envelope.get("Subject"),
                "message": json.loads(envelope["Message"]),
                "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
            }
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")
            m = line["message"]
            print(f"\n  ALERT  {line['subject']}\n         outcome={m['outcome']} previous={m['previous_state']} "
                  f"duration={m['duration_seconds']}s -> {self.path}\n", flush=True)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)

