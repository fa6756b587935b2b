"""The pipeline on moto, in-process: table with stream, topic, a queue subscribed to the topic.

`pump_stream` plays Lambda's DynamoDB event source: it hands new stream records to the
notifier and, like Lambda with ReportBatchItemFailures, retries from the first failed record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3

from local.lambda_context import LambdaContext
from sis_imports.table import ATTRIBUTE_DEFINITIONS, KEY_SCHEMA, STREAM_VIEW_TYPE

TABLE_NAME = "sis-batches-test"


@dataclass
class AwsEnv:
    dynamodb: Any
    sns: Any
    sqs: Any
    streams: Any
    topic_arn: str
    queue_url: str
    stream_arn: str
    _iterators: dict[str, str] = field(default_factory=dict)
    _pending: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls) -> AwsEnv:
        dynamodb = boto3.client("dynamodb")
        table = dynamodb.create_table(
            TableName=TABLE_NAME,
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
        )
        sns = boto3.client("sns")
        sqs = boto3.client("sqs")
        topic_arn = sns.create_topic(Name="sis-alerts-test")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return cls(
            dynamodb=dynamodb,
            sns=sns,
            sqs=sqs,
            # botocore would use an account-based streams endpoint that moto does not route.
            streams=boto3.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"),
            topic_arn=topic_arn,
            queue_url=queue_url,
            stream_arn=table["TableDescription"]["LatestStreamArn"],
        )

    def new_stream_records(self) -> list[dict[str, Any]]:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._iterators.get(shard_id) or self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            response = self.streams.get_records(ShardIterator=iterator)
            self._iterators[shard_id] = response["NextShardIterator"]
            for record in response["Records"]:
                records.append({**record, "eventSourceARN": self.stream_arn})
        return records

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

    def scan(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=TABLE_NAME)["Items"]
