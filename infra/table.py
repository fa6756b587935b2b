"""The batch table: one item per SIS batch, streamed to the notifier."""

from __future__ import annotations

import sys

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from .bundling import FUNCTIONS

sys.path.insert(0, str(FUNCTIONS))
from sis_imports import table as shape  # noqa: E402  (the same key names the store and `make run` use)

_KEY_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _key(role: str) -> dynamodb.Attribute:
    name = next(k["AttributeName"] for k in shape.KEY_SCHEMA if k["KeyType"] == role)
    kind = next(a["AttributeType"] for a in shape.ATTRIBUTE_DEFINITIONS if a["AttributeName"] == name)
    return dynamodb.Attribute(name=name, type=_KEY_TYPES[kind])


class BatchTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_key("HASH"),
            sort_key=_key("RANGE"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=shape.TTL_ATTRIBUTE,
            stream=dynamodb.StreamViewType[shape.STREAM_VIEW_TYPE],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
