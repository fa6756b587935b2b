"""The embedded AWS's resources, named and shaped as the stack makes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from sis_imports.core.events import SIS_EVENT_NAMES
from sis_imports.core.table import (ATTRIBUTE_DEFINITIONS, KEY_SCHEMA, LIST_INDEX, LIST_SORT_KEY, OPEN_INDEX,
                                   OPEN_INDEX_PROJECTION, OPEN_SINCE, PARTITION_KEY, STREAM_VIEW_TYPE,
                                   TTL_ATTRIBUTE)

STAGE = "local"
TABLE_NAME = f"canvas-sis-batches-{STAGE}"
TOPIC_NAME = f"canvas-sis-alerts-{STAGE}"
CANVAS_QUEUE = f"canvas-live-events-{STAGE}"  # the prefix Canvas requires
CANVAS_DLQ = f"canvas-live-events-{STAGE}-dlq"
MAX_RECEIVES = 5  # infra/canvas_queue.py's redrive (importing infra would load the CDK)
BUS_NAME = f"canvas-sis-imports-{STAGE}"  # as infra/event_bus.py names it
DETAIL_TYPES = sorted(SIS_EVENT_NAMES)  # the event names the core accepts
CANVAS_TOKEN_SECRET = f"canvas-api-token-{STAGE}"  # the reconciler's Canvas API token
# The sparse index of open batches (only their items carry OPEN_SINCE), as the stack declares it.
OPEN_BATCHES_INDEX = {
    "IndexName": OPEN_INDEX,
    "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                  {"AttributeName": OPEN_SINCE, "KeyType": "RANGE"}],
    "Projection": ({"ProjectionType": "INCLUDE", "NonKeyAttributes": list(OPEN_INDEX_PROJECTION)}
                   if OPEN_INDEX_PROJECTION else {"ProjectionType": "KEYS_ONLY"}),
}
# Every batch by its first event (the list route), keys only, as the stack declares it.
LIST_BATCHES_INDEX = {
    "IndexName": LIST_INDEX,
    "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                  {"AttributeName": LIST_SORT_KEY, "KeyType": "RANGE"}],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


@dataclass
class LocalAws:
    table_name: str
    stream_arn: str
    topic_arn: str
    subscriber_queue_url: str
    canvas_queue_url: str
    canvas_queue_arn: str
    canvas_dlq_url: str
    eventbridge_queue_url: str
    bus_name: str
    token_secret_arn: str | None
    alert_retry_queue_url: str = ""  # alerts SNS refused (the stack's AlertRetries)
    alert_retry_queue_arn: str = ""
    notifier_failures_url: str = ""  # stream records the notifier could not read (NotifierFailures)


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def create(token: str | None) -> LocalAws:
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=[*ATTRIBUTE_DEFINITIONS, {"AttributeName": OPEN_SINCE, "AttributeType": "S"},
                              {"AttributeName": LIST_SORT_KEY, "AttributeType": "S"}],
        GlobalSecondaryIndexes=[OPEN_BATCHES_INDEX, LIST_BATCHES_INDEX],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    )["TableDescription"]
    dynamodb.update_time_to_live(
        TableName=TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    sns, sqs, events = boto3.client("sns"), boto3.client("sqs"), boto3.client("events")
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    subscriber_url, subscriber_arn = _queue(sqs, "local-alert-subscriber")
    # Raw delivery off: the subject and message attributes arrive in the SNS envelope, as an
    # email or HTTPS subscriber would see them.
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=subscriber_arn,
                  Attributes={"RawMessageDelivery": "false"})
    dlq_url, dlq_arn = _queue(sqs, CANVAS_DLQ)
    canvas_url, canvas_arn = _queue(sqs, CANVAS_QUEUE)
    # A message that keeps failing leaves the queue after MAX_RECEIVES tries, as deployed.
    sqs.set_queue_attributes(QueueUrl=canvas_url, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})})
    events.create_event_bus(Name=BUS_NAME)
    # Lambda is the target in AWS; here a queue stands in and a poller invokes the handler.
    eventbridge_url, eventbridge_arn = _queue(sqs, "local-eventbridge-target")
    events.put_rule(Name="sis-batch-events", EventBusName=BUS_NAME,
                    EventPattern=json.dumps({"detail-type": DETAIL_TYPES}))
    events.put_targets(Rule="sis-batch-events", EventBusName=BUS_NAME,
                       Targets=[{"Id": "eventbridge-consumer", "Arn": eventbridge_arn}])
    secret_arn = None
    if token is not None:
        secret_arn = boto3.client("secretsmanager").create_secret(Name="canvas-token-local", SecretString=token)["ARN"]
    retry_url, retry_arn = _queue(sqs, f"canvas-sis-alert-retries-{STAGE}")
    failures_url, _ = _queue(sqs, f"canvas-sis-notifier-failures-{STAGE}")
    return LocalAws(TABLE_NAME, table["LatestStreamArn"], topic_arn, subscriber_url, canvas_url, canvas_arn, dlq_url,
                    eventbridge_url, BUS_NAME, secret_arn, retry_url, retry_arn, failures_url)


def canvas_token_secret(token: str, name: str = CANVAS_TOKEN_SECRET) -> str:
    """The reconciler's Canvas API token in the emulated Secrets Manager, as the stack's secret holds it; its ARN."""
    return boto3.client("secretsmanager").create_secret(Name=name, SecretString=token)["ARN"]
