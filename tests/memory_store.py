"""The store's contract kept in a dict by the pure core's rules: for tests that need thousands of
writes (a moto request costs ~50 ms). The conditional writes of the real store are an optimisation
of exactly these decisions; tests/handlers/test_reconciler.py runs the real store on moto."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sis_imports.core.batch import Batch, Decision, apply_event
from sis_imports.adapters.store import ApplyResult, Reconciled, to_attributes


class MemoryStore:
    def __init__(self):
        self.items: dict[tuple[str, str], Batch] = {}
        self.writes: list[tuple[Batch | None, Batch]] = []  # (old, new): what the stream would carry
        self.markers: set[str] = set()

    def _write(self, key, old, new) -> None:
        self.items[key] = new
        self.writes.append((old, new))

    def apply(self, event) -> ApplyResult:
        key = (event.root_account_uuid, event.sis_batch_id)
        old = self.items.get(key)
        decision, batch = apply_event(old, event)
        if decision is not Decision.DUPLICATE:
            self._write(key, old, batch)
        return ApplyResult(decision, batch)

    def reconcile(self, event, *, asked_at: str | None = None, baseline: bool = False) -> Reconciled | None:
        key = (event.root_account_uuid, event.sis_batch_id)
        old = self.items.get(key)
        if old is not None and old.workflow_state is event.workflow_state and not old.unbound:
            return None
        decision, batch = apply_event(old, event, asked_at=asked_at)
        if decision is Decision.DUPLICATE:
            return None
        self._write(key, old, replace(batch, baseline=baseline and old is None))
        return Reconciled(old.workflow_state if old else None, batch, created=old is None)

    def open_batches(self, root_account_uuid: str) -> list[Batch]:
        return [b for (uuid, _), b in self.items.items() if uuid == root_account_uuid and not b.terminal]

    def mark_stuck(self, root_account_uuid: str, sis_batch_id: str, state: str) -> bool:
        old = self.items.get((root_account_uuid, sis_batch_id))
        if old is None or old.workflow_state.value != state or old.stuck_state == state:
            return False
        self._write((root_account_uuid, sis_batch_id), old, replace(old, stuck_state=state))
        return True

    def reconciled_before(self, root_account_uuid: str) -> bool:
        return root_account_uuid in self.markers

    def mark_reconciled(self, root_account_uuid: str, when: str) -> None:
        self.markers.add(root_account_uuid)

    def pass_marker(self, root_account_uuid: str) -> dict[str, Any] | None:
        if root_account_uuid not in self.markers:
            return None
        listed = getattr(self, "listed", {}).get(root_account_uuid)
        return {"listed_through": listed} if listed is not None else {}

    def mark_listed(self, root_account_uuid: str, started: float) -> None:
        self.listed = {**getattr(self, "listed", {}), root_account_uuid: started}

    def known_states(self, root_account_uuid: str, sis_batch_ids: list[str]) -> dict:
        found = {i: self.items.get((root_account_uuid, i)) for i in sis_batch_ids}
        return {i: b.workflow_state for i, b in found.items() if b is not None and not b.unbound}

    def scan(self) -> list[dict[str, Any]]:
        return [to_attributes(batch.to_item()) for batch in self.items.values()]
