"""What the reconciler writes: Canvas's answer applied as a reading, and another host's claim on an id."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ...core.batch import Batch, Decision, apply_event
from ...core.states import WorkflowState
from .apply import Applying
from .items import Reconciled, _stored_item, from_attributes

if TYPE_CHECKING:
    from ...core.events import SisBatchEvent


MAX_BATCH_READS = 5  # a page's unprocessed keys are asked again this often; what is left is simply written


class Reconciling(Applying):
    """Readings of Canvas's SIS Import API, through the same core as events."""

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

    def known_states(self, root_account_uuid: str, sis_batch_ids: list[str]) -> dict[str, WorkflowState]:
        """The states our table holds for these batches (bound ones only: an unbound batch wants its reading),
        read 100 at a time with BatchGetItem and only the two attributes compared: what a cold pass checks
        before it writes, instead of one failed conditional write per import Canvas lists."""
        known: dict[str, WorkflowState] = {}
        for start in range(0, len(sis_batch_ids), 100):
            request = {self._table: {
                "Keys": [self.key(root_account_uuid, i) for i in sis_batch_ids[start:start + 100]],
                "ProjectionExpression": "sis_batch_id, workflow_state, unbound", "ConsistentRead": True}}
            for _ in range(MAX_BATCH_READS):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    plain = from_attributes(item)
                    if "workflow_state" in plain and not plain.get("unbound"):
                        known[str(plain["sis_batch_id"])] = WorkflowState(plain["workflow_state"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
        return known

