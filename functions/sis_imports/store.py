"""DynamoDB access for batches: one item per batch, written with optimistic conditions.

An in-order event costs one conditional UpdateItem and no read. When the condition fails
(a duplicate, a late event, or a full history) DynamoDB returns the stored item with the
failure (`ReturnValuesOnConditionCheckFailure`), the pure core decides, and at most one more
conditional write (guarded by `version`) stores the result.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from .batch import DEFAULT_HISTORY_LIMIT, FUTURE_TOLERANCE_SECONDS, Batch, Decision, EventFacts, HistoryEntry, apply_event
from .states import is_terminal, outcome_of
from .table import PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from .events import SisBatchEvent

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
MAX_ATTEMPTS = 5


class StoreConflict(Exception):
    """Concurrent writers kept changing the batch; the caller should let the sender retry."""


@dataclass(frozen=True)
class ApplyResult:
    decision: Decision
    batch: Batch


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


class BatchStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        retention_days: int = 90,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        clock: Callable[[], float] = time.time,
    ):
        self._client = client
        self._table = table_name
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

    def apply(self, event: SisBatchEvent) -> ApplyResult:
        try:
            return self._apply_in_order(event)
        except Exception as exc:
            stored = _stored_item(exc)
        for _ in range(MAX_ATTEMPTS):
            current = Batch.from_item(from_attributes(stored)) if stored else None
            decision, new = apply_event(current, event, self._history_limit)
            if decision is Decision.DUPLICATE:
                return ApplyResult(decision, new)
            try:
                self._put(replace(new, expires_at=self._expires_at()), expected_version=current.version if current else None)
                return ApplyResult(decision, new)
            except Exception as exc:
                stored = _stored_item(exc)
        raise StoreConflict(f"batch {event.sis_batch_id} changed {MAX_ATTEMPTS} times while being written")

    def _apply_in_order(self, event: SisBatchEvent) -> ApplyResult:
        """The one-write path: valid when the event is newer than the stored state (or first)."""
        entry = HistoryEntry.of(event)
        facts = EventFacts.of(event)
        state = event.workflow_state
        outcome = outcome_of(state)
        values: dict[str, Any] = {
            ":state": state.value,
            ":time": event.event_time,
            ":key": entry.order_key,
            ":terminal": is_terminal(state),
            ":account": facts.account_id,
            ":entry": [entry.to_dict()],
            ":empty": [],
            ":zero": 0,
            ":one": 1,
            ":limit": self._history_limit,
            ":expires": self._expires_at(),
        }
        # Every name goes through a placeholder: several are DynamoDB reserved words.
        sets = [
            "#workflow_state = :state",
            "#event_time = :time",
            "#order_key = :key",
            "#terminal = :terminal",
            "#last_event_at = :time",
            "#first_event_at = if_not_exists(#first_event_at, :time)",
            "#account_id = if_not_exists(#account_id, :account)",
            "#history = list_append(if_not_exists(#history, :empty), :entry)",
            "#version = if_not_exists(#version, :zero) + :one",
            "#expires_at = :expires",
        ]
        # Attributes kept from the first event that tells them (EventFacts.fill in the core).
        for name in ("root_account_id", "hostname", "created_by_user_id", "created_by_login", "url", "referrer"):
            value = getattr(facts, name)
            if value is not None:
                sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
                values[f":{name}"] = value
        if outcome is not None:
            sets.append("#outcome = :outcome")
            values[":outcome"] = outcome.value
        expression = "SET " + ", ".join(sets) + ("" if outcome is not None else " REMOVE #outcome")
        names = {f"#{name}": name for name in re.findall(r"#(\w+)", expression)}
        names["#sis_batch_id"] = SORT_KEY
        response = self._client.update_item(
            TableName=self._table,
            Key=self.key(event.root_account_uuid, event.sis_batch_id),
            UpdateExpression=expression,
            ConditionExpression=(
                "attribute_not_exists(#sis_batch_id) OR (#order_key < :key AND size(#history) < :limit)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_attributes(values),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return ApplyResult(Decision.APPLY, Batch.from_item(from_attributes(response["Attributes"])))

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
