"""The batch table's items: DynamoDB's attribute values, what a failed condition returns, and the
table every part of the store writes (its key, retention and version-guarded put)."""


from __future__ import annotations

import time
from typing import Any, Callable

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ...core.batch import DEFAULT_HISTORY_LIMIT, FUTURE_TOLERANCE_SECONDS, Batch, Decision
from ...core.table import PARTITION_KEY, SORT_KEY

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
MAX_ATTEMPTS = 5


class StoreConflict(Exception):
    """Concurrent writers kept changing the batch; the caller should let the sender retry."""


class ApplyResult:
    """What applying an event decided, and the batch as it is now (a plain class, as Reconciled)."""

    __slots__ = ("decision", "batch")

    def __init__(self, decision: Decision, batch: Batch):
        self.decision, self.batch = decision, batch


class Reconciled:
    """A state the reconciler wrote: the batch's state before (None if we never heard of it).

    A plain class, not a dataclass: the store is in the ingest's bundle, whose cold start it would cost.
    """

    __slots__ = ("previous_state", "batch", "created")

    def __init__(self, previous_state: Any, batch: Batch | None, created: bool):
        self.previous_state, self.batch, self.created = previous_state, batch, created


# The reconciler's per-root-account marker: outside the id alphabet (table.ID_PATTERN), so no batch
# can collide with it and the query route cannot ask for it.
MARKER_ID = "#reconciler"


def to_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def from_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in attributes.items()}


def _stored_item(exc: Exception) -> dict[str, Any] | None:
    """The item a failed condition returned (ReturnValuesOnConditionCheckFailure); re-raises other errors."""
    response = getattr(exc, "response", None) or {}
    if response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
        raise exc
    return response.get("Item")


class Table:
    """The table and its settings; each part of the store adds its own writes or reads."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        retention_days: int = 90,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        clock: Callable[[], float] = time.time,
        require_host: bool = False,
    ):
        self._client = client
        self._table = table_name
        # canvas_hostnames is set: a batch belongs to the allowed host that creates it (batch.apply_event).
        self._require_host = require_host
        self._retention_seconds = retention_days * 86400
        self._history_limit = history_limit
        self._clock = clock

    def _expires_at(self) -> int:
        # Retention counts from when we last heard of the batch. Events up to FUTURE_TOLERANCE ahead
        # are admitted, so the item outlives every event it holds by the retention period: once it
        # expires, each of its events is older than that and is ignored (no replay resurrects it).
        return int(self._clock()) + self._retention_seconds + FUTURE_TOLERANCE_SECONDS

    @staticmethod
    def key(root_account_uuid: str, sis_batch_id: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": root_account_uuid}, SORT_KEY: {"S": sis_batch_id}}

    def get(self, root_account_uuid: str, sis_batch_id: str) -> Batch | None:
        response = self._client.get_item(
            TableName=self._table, Key=self.key(root_account_uuid, sis_batch_id), ConsistentRead=True
        )
        item = response.get("Item")
        return Batch.from_item(from_attributes(item)) if item else None

    def _put(self, batch: Batch, expected_version: int | None) -> None:
        if expected_version is None:
            condition, values = "attribute_not_exists(sis_batch_id)", {}
        else:
            condition, values = "#version = :expected", {":expected": {"N": str(expected_version)}}
        kwargs: dict[str, Any] = {}
        if values:
            kwargs["ExpressionAttributeValues"] = values
            kwargs["ExpressionAttributeNames"] = {"#version": "version"}
        self._client.put_item(
            TableName=self._table,
            Item=to_attributes(batch.to_item()),
            ConditionExpression=condition,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **kwargs,
        )
