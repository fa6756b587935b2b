"""Applying an event: one conditional write in order, else the pure core decides from the stored item
(returned with the failed condition) and one version-guarded write stores its decision."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...core.batch import Batch, Decision, EventFacts, HistoryEntry, apply_event
from ...core.states import RANK, WorkflowState, is_terminal, outcome_of
from ...core.table import OPEN_SINCE, SORT_KEY
from .items import MAX_ATTEMPTS, ApplyResult, StoreConflict, Table, _stored_item, from_attributes, to_attributes

if TYPE_CHECKING:
    from ...core.events import SisBatchEvent


class Applying(Table):
    """Live events, from every ingress."""

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
