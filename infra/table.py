"""The batch table: one item per SIS batch, streamed to the notifier, with a sparse index of open batches
and an index of every batch by its first event (the list route)."""

from __future__ import annotations

import sys

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from .bundling import FUNCTIONS

sys.path.insert(0, str(FUNCTIONS))
from sis_imports.core import table as shape  # noqa: E402  (the same key names the store and `make run` use)

_KEY_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _key(role: str) -> dynamodb.Attribute:
    name = next(k["AttributeName"] for k in shape.KEY_SCHEMA if k["KeyType"] == role)
    kind = next(a["AttributeType"] for a in shape.ATTRIBUTE_DEFINITIONS if a["AttributeName"] == name)
    return dynamodb.Attribute(name=name, type=_KEY_TYPES[kind])


class BatchTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain: bool, deletion_protection: bool = True) -> None:
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
            # A delete (by hand, or by a stack deployed with removal_policy=destroy) fails until this is
            # turned off: context deletion_protection=false, deployed first.
            deletion_protection=deletion_protection,
        )
        # Sparse: only a batch not in an end state carries OPEN_SINCE, so the reconciler finds the open
        # batches of a root account with one query, never a scan. Made with or without the reconciler:
        # every write keeps the attribute, whichever path wrote it. On-demand, as the table.
        self.table.add_global_secondary_index(
            index_name=shape.OPEN_INDEX,
            partition_key=_key("HASH"),
            sort_key=dynamodb.Attribute(name=shape.OPEN_SINCE, type=dynamodb.AttributeType.STRING),
            # Keys only: the readers get the few open items themselves (BatchGetItem), rather than every
            # event rewriting a projected copy.
            **({"projection_type": dynamodb.ProjectionType.INCLUDE,
                "non_key_attributes": list(shape.OPEN_INDEX_PROJECTION)}
               if shape.OPEN_INDEX_PROJECTION else {"projection_type": dynamodb.ProjectionType.KEYS_ONLY}),
        )
        # Every batch of a root account by its first event, newest first for the list route: every batch
        # item has first_event_at, the reconciler's and the history's items have not (so they are not
        # listed). Keys only, on a key that does not change: one index write per batch (core/table.py).
        self.table.add_global_secondary_index(
            index_name=shape.LIST_INDEX,
            partition_key=_key("HASH"),
            sort_key=dynamodb.Attribute(name=shape.LIST_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )


def grant_items(grantee: iam.IGrantable, table: dynamodb.Table, *actions: str) -> None:
    """Item actions on the table itself. (`Table.grant` would add `<table>/index/*` now that the table
    has indexes: a wildcard no function needs; each index is granted by name, to its one reader.)"""
    iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[table.table_arn])


def grant_index_query(grantee: iam.IGrantable, table: dynamodb.Table, index_name: str) -> None:
    """dynamodb:Query on one index, named."""
    iam.Grant.add_to_principal(grantee=grantee, actions=["dynamodb:Query"],
                               resource_arns=[f"{table.table_arn}/index/{index_name}"])
