"""The pipeline on moto, in-process: table with stream, topic, a queue subscribed to the topic.

`pump_stream` plays Lambda's DynamoDB event source: it hands new stream records to the
notifier and, like Lambda with ReportBatchItemFailures, retries from the first failed record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3

from local import resources
from local.lambda_context import LambdaContext
from local.pollers import read_stream

TABLE_NAME = resources.TABLE_NAME


@dataclass
class AwsEnv:
    dynamodb: Any
    sqs: Any
    streams: Any
    topic_arn: str
    queue_url: str
    stream_arn: str
    retry_queue_url: str = ""
    failures_url: str = ""
    _iterators: dict[str, str] = field(default_factory=dict)
    _pending: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls) -> AwsEnv:
        """The resources `make run` makes (local.resources), in moto's in-process mock."""
        aws = resources.create(token=None)
        return cls(
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            # botocore would use an account-based streams endpoint that moto does not route.
            streams=boto3.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"),
            topic_arn=aws.topic_arn,
            queue_url=aws.subscriber_queue_url,
            stream_arn=aws.stream_arn,
            retry_queue_url=aws.alert_retry_queue_url,
            failures_url=aws.notifier_failures_url,
        )

    def new_stream_records(self) -> list[dict[str, Any]]:
        return read_stream(self.streams, self.stream_arn, self._iterators)

    def pump_stream(self, notifier: Callable[[dict[str, Any], Any], dict[str, Any]], max_rounds: int = 50) -> int:
        """Deliver new stream records to the notifier until all succeed; returns the invocations made."""
        self._pending.extend(self.new_stream_records())
        invocations = 0
        while self._pending and invocations < max_rounds:
            invocations += 1
            response = notifier({"Records": list(self._pending)}, LambdaContext(function_name="notifier"))
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
            if not failed:
                self._pending.clear()
                break
            numbers = [r["dynamodb"]["SequenceNumber"] for r in self._pending]
            first = min(numbers.index(n) for n in failed)
            self._pending = self._pending[first:]  # Lambda resumes at the lowest failed record
        return invocations

    def alerts(self) -> list[dict[str, Any]]:
        """Every SNS message the subscriber queue received so far (drained)."""
        out: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                envelope = json.loads(message["Body"])
                out.append(
                    {
                        "subject": envelope.get("Subject"),
                        "message": json.loads(envelope["Message"]),
                        "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                        "raw": message["Body"],
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message body (parsed) on a queue, received and deleted."""
        out: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def scan(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=TABLE_NAME)["Items"]
