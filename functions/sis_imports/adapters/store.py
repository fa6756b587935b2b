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

from ..core.batch import DEFAULT_HISTORY_LIMIT, FUTURE_TOLERANCE_SECONDS, Batch, Decision, EventFacts, HistoryEntry, apply_event
from ..core.states import RANK, WorkflowState, is_terminal, outcome_of
from ..core.table import ACTIVITY_INDEX, ACTIVITY_SORT_KEY, OPEN_INDEX, OPEN_SINCE, PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from ..core.events import SisBatchEvent

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
MAX_ATTEMPTS = 5


class StoreConflict(Exception):
    """Concurrent writers kept changing the batch; the caller should let the sender retry."""


@dataclass(frozen=True)
class ApplyResult:
    decision: Decision
    batch: Batch


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


class BatchStore:
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

    def apply(self, event: SisBatchEvent) -> ApplyResult:
        try:
            return self._apply_in_order(event)
        except Exception as exc:
            stored = _stored_item(exc)
        return self._apply_from(stored, event)

    def _apply_from(self, stored: dict[str, Any] | None, event: SisBatchEvent,
                    asked_at: str | None = None) -> ApplyResult:
        """The pure core decides from the stored item; one version-guarded write, retried on a race."""
        for _ in range(MAX_ATTEMPTS):
            current = Batch.from_item(from_attributes(stored)) if stored else None
            decision, new = apply_event(current, event, self._history_limit, asked_at, self._require_host)
            if decision in (Decision.DUPLICATE, Decision.FOREIGN):
                return ApplyResult(decision, new)
            try:
                self._put(replace(new, expires_at=self._expires_at()), expected_version=current.version if current else None)
                return ApplyResult(decision, new)
            except Exception as exc:
                stored = _stored_item(exc)
        raise StoreConflict(f"batch {event.sis_batch_id} changed {MAX_ATTEMPTS} times while being written")

    def reconcile(self, event: SisBatchEvent, *, asked_at: str | None = None,
                  baseline: bool = False) -> Reconciled | None:
        """Apply what Canvas's API answered, unless the batch is already in that state (then None).

        The same core as a live event: `event`'s time is when Canvas's answer came, `asked_at` when
        we asked; the core places the reading among the events (batch.sequence). One conditional
        write when nothing stored comes near the reading's window; else the stored item comes back
        with the failed condition and either nothing is owed (same state) or the core decides.
        `baseline` (the first pass for an instance) records an import we never heard of without an alert.
        """
        if baseline:
            new = replace(apply_event(None, event, self._history_limit, asked_at)[1], baseline=True,
                          expires_at=self._expires_at())
            try:
                self._put(new, expected_version=None)
                return Reconciled(None, new, created=True)
            except Exception as exc:
                _stored_item(exc)  # it exists after all: reconcile it as any other
        try:
            old = self._apply_in_order(event, unless_state=True, asked_at=asked_at)
            return Reconciled(old.workflow_state if old else None, None, created=old is None)
        except Exception as exc:
            stored = _stored_item(exc)
        current = Batch.from_item(from_attributes(stored)) if stored else None
        if current is not None and current.workflow_state is event.workflow_state and not current.unbound:
            return None
        result = self._apply_from(stored, event, asked_at)
        if result.decision in (Decision.DUPLICATE, Decision.FOREIGN):
            return None
        return Reconciled(current.workflow_state if current else None, result.batch, created=current is None)

    def open_batches(self, root_account_uuid: str) -> list[Batch]:
        """Every batch of the root account not in an end state: one query of the sparse index.

        The projection holds what the reconciler compares (state, times, stuck_state); the rest of
        each Batch is left empty.
        """
        batches, start = [], None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = self._client.query(
                TableName=self._table, IndexName=OPEN_INDEX,
                KeyConditionExpression="#pk = :pk", ExpressionAttributeNames={"#pk": PARTITION_KEY},
                ExpressionAttributeValues={":pk": {"S": root_account_uuid}}, **kwargs,
            )
            for item in page.get("Items", []):
                plain = from_attributes(item)
                plain.setdefault("account_id", "")
                batches.append(Batch.from_item(plain))
            start = page.get("LastEvaluatedKey")
            if not start:
                return batches

    def recent(
        self,
        root_account_uuid: str,
        *,
        state: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        limit: int = 50,
        start: dict[str, str] | None = None,
        max_evaluated: int = 1000,
    ) -> tuple[list[Batch], dict[str, str] | None]:
        """The root account's batches, newest activity first: up to `limit` of them, and the key to go
        on from (None when there are no more). One query of the activity index per page, never a scan.

        `since` (Canvas's event_time format) bounds the index key: last activity at or after it.
        `state` and `outcome` filter what the index returns, so a page may take several queries; after
        `max_evaluated` index entries the batches found so far come back with the key to go on from
        (fewer than `limit`, and more may follow). The key is the index's own (root account, batch id,
        last_event_at), as plain strings. Each Batch holds what the index projects: no history.
        """
        names = {"#pk": PARTITION_KEY}
        values: dict[str, Any] = {":pk": root_account_uuid}
        condition = "#pk = :pk"
        if since is not None:
            condition += " AND #at >= :since"
            names["#at"] = ACTIVITY_SORT_KEY
            values[":since"] = since
        filters = []
        for name, value in (("workflow_state", state), ("outcome", outcome)):
            if value is not None:
                filters.append(f"#{name} = :{name}")
                names[f"#{name}"] = name
                values[f":{name}"] = value
        batches: list[Batch] = []
        evaluated, key = 0, start
        while True:
            wanted = limit - len(batches)
            kwargs: dict[str, Any] = {"ExclusiveStartKey": to_attributes(key)} if key else {}
            if filters:
                kwargs["FilterExpression"] = " AND ".join(filters)
            page = self._client.query(
                TableName=self._table, IndexName=ACTIVITY_INDEX, KeyConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=to_attributes(values),
                ScanIndexForward=False,
                # Unfiltered, exactly what is wanted; filtered, a fuller page, since some will not match.
                Limit=max(wanted, min(100, max_evaluated)) if filters else wanted, **kwargs,
            )
            items = page.get("Items", [])
            evaluated += int(page.get("ScannedCount", len(items)))
            last = page.get("LastEvaluatedKey")
            for position, item in enumerate(items, start=1):
                plain = from_attributes(item)
                plain.setdefault("account_id", "")
                batches.append(Batch.from_item(plain))
                if len(batches) == limit:
                    more = position < len(items) or last is not None
                    return batches, ({PARTITION_KEY: plain[PARTITION_KEY], SORT_KEY: plain[SORT_KEY],
                                      ACTIVITY_SORT_KEY: plain[ACTIVITY_SORT_KEY]} if more else None)
            if not last:
                return batches, None
            key = {name: str(value) for name, value in from_attributes(last).items()}
            if evaluated >= max_evaluated:
                return batches, key

    def mark_stuck(self, root_account_uuid: str, sis_batch_id: str, state: str) -> bool:
        """Record once that the batch is stuck in `state` (its stream record makes the notifier alert).

        False when it was already marked for that state, or has moved on meanwhile.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self.key(root_account_uuid, sis_batch_id),
                UpdateExpression="SET #stuck = :state",
                ConditionExpression="#state = :state AND (attribute_not_exists(#stuck) OR #stuck <> :state)",
                ExpressionAttributeNames={"#stuck": "stuck_state", "#state": "workflow_state"},
                ExpressionAttributeValues={":state": {"S": state}},
            )
            return True
        except Exception as exc:
            _stored_item(exc)
            return False

    def claim(self, root_account_uuid: str, sis_batch_id: str, event_time: str) -> None:
        """Record that a host not allowed here created an import of this id at `event_time` (only the
        time: nothing else of another instance's event is kept). From then on no host-less event counts
        for the batch. Only on a batch we hold, a few claims at most; the version moves, so a concurrent
        version-guarded write cannot lose the claim."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self.key(root_account_uuid, sis_batch_id),
                UpdateExpression="SET #claims = list_append(if_not_exists(#claims, :empty), :claim), "
                                 "#version = #version + :one",
                ConditionExpression="attribute_exists(#version) AND (attribute_not_exists(#claims) OR "
                                    "(size(#claims) < :most AND NOT contains(#claims, :time)))",
                ExpressionAttributeNames={"#claims": "foreign_claims", "#version": "version"},
                ExpressionAttributeValues={":empty": {"L": []}, ":claim": {"L": [{"S": event_time}]},
                                           ":time": {"S": event_time}, ":one": {"N": "1"}, ":most": {"N": "10"}},
            )
        except Exception as exc:
            _stored_item(exc)  # not ours to record: no such batch, or already claimed

    def reconciled_before(self, root_account_uuid: str) -> bool:
        """Whether a reconcile pass for this root account has completed before (its marker item)."""
        response = self._client.get_item(TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
                                         ConsistentRead=True)
        return "Item" in response

    def mark_reconciled(self, root_account_uuid: str, when: str) -> None:
        self._client.put_item(TableName=self._table, Item={
            **self.key(root_account_uuid, MARKER_ID), "first_reconciled_at": {"S": when}})

    def _apply_in_order(self, event: SisBatchEvent, *, unless_state: bool = False,
                        asked_at: str | None = None) -> Any:
        """The one-write path: valid when the event is beyond the stored fence (or first).

        A Live Event is beyond it when its key is; a reading when its whole window is (the stored
        fence before the window's start). With `unless_state`, also only when the batch is not
        already in the event's state; answers the batch as it was before (None when new) instead.
        """
        entry = HistoryEntry.of(event, asked_at)
        facts = EventFacts.of(event)
        state = event.workflow_state
        outcome = outcome_of(state)
        values: dict[str, Any] = {
            ":state": state.value,
            ":time": event.event_time,
            ":key": entry.fence_key(),
            ":after": f"{entry.window()[0]}#" if entry.reading else entry.order_key,
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
        removes = ["#baseline"]  # any write ends the first pass's record (batch.py)
        if outcome is not None:
            sets.append("#outcome = :outcome")
            values[":outcome"] = outcome.value
            removes.append(f"#{OPEN_SINCE}")  # an end state leaves the open-batches index
            sets.append("#ended = :true")
            values[":true"] = True
        else:
            sets.append(f"#{OPEN_SINCE} = if_not_exists(#first_event_at, :time)")
            removes.append("#outcome")
        expression = "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes)
        condition = "#order_key < :after AND size(#history) < :limit"
        if unless_state:
            condition += " AND #workflow_state <> :state"
        if entry.reading or facts.hostname is not None:
            condition = f"attribute_not_exists(#sis_batch_id) OR ({condition} AND attribute_not_exists(#unbound))"
        elif not self._require_host:
            condition = f"attribute_not_exists(#sis_batch_id) OR ({condition})"
        else:
            # A host-less event in one write only on a batch an allowed host has bound, no other host has
            # claimed and (for a state of the import itself) that has not ended: else the core decides.
            condition += " AND attribute_exists(#hostname) AND attribute_not_exists(#foreign_claims)"
            if RANK[state] <= RANK[WorkflowState.IMPORTED]:
                condition += " AND attribute_not_exists(#ended)"
        names = {f"#{name}": name for name in re.findall(r"#(\w+)", f"{expression} {condition}")}
        if "#sis_batch_id" in names:
            names["#sis_batch_id"] = SORT_KEY
        response = self._client.update_item(
            TableName=self._table,
            Key=self.key(event.root_account_uuid, event.sis_batch_id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_attributes(values),
            ReturnValues="ALL_OLD" if unless_state else "ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if unless_state:
            old = response.get("Attributes")
            return Batch.from_item(from_attributes(old)) if old and "workflow_state" in old else None
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
