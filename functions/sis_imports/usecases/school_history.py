"""The school's own history, kept by the reconciler from Canvas's listing (the truth; a Live Event can be
lost): each successful end into its shape's baseline (what the notifier compares an end with), each
creation into the root account's rhythm (what a missing import is measured against).

Per pass and root account: one GetItem of the rhythm item, one GetItem per shape that has a new end, and a
version-guarded UpdateItem only for an item that changed. A root account's first pass (no rhythm item yet)
lists further back (SEED_DAYS, at most SEED_IMPORTS beyond the lookback window) so that a new deployment
learns the rhythm and the baselines at once; it claims no gap (a gap that began before we watched is
not reported on the first pass, the next pass reports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable

from ..core.states import WorkflowState

if TYPE_CHECKING:  # loaded by the first pass, not at the reconciler's cold start (its budget, README "Cold start")
    from ..core.reconcile import CanvasImport
    from ..core.rhythm import Rhythm

SEED_DAYS = 35
SEED_IMPORTS = 100
SUCCESS_ENDS = frozenset({WorkflowState.IMPORTED, WorkflowState.IMPORTED_WITH_MESSAGES})


@dataclass(frozen=True)
class HistoryOptions:
    missing_imports: bool = True
    expected_every: dict[str, int] = field(default_factory=dict)  # per root account; 0: no missing alerts
    min_history: int = 10  # core/rhythm.py MIN_HISTORY, core/unusual.py MIN_HISTORY


class SchoolHistory:
    def __init__(self, store: Any, options: HistoryOptions):
        self._store = store
        self.options = options

    def rhythm(self, root_account_uuid: str) -> Rhythm | None:
        return self._store.rhythm(root_account_uuid)

    def record(self, root_account_uuid: str, hostname: str | None,
               listed: Iterable[tuple[CanvasImport, dict[str, Any]]],
               rhythm: Rhythm | None, now: float, previous: dict[str, WorkflowState] | None = None) -> dict[str, int]:
        """Returns what was written: ends added to baselines, rhythm writes, gaps found."""
        from ..core.rhythm import Rhythm, step
        from ..core.unusual import End, figures_of, shape_of

        ends: dict[str, list[End]] = {}
        creations = []
        for answer, raw in listed:
            if answer.created_at is not None:
                creations.append((answer.sis_batch_id, int(answer.created_at)))
            if answer.workflow_state not in SUCCESS_ENDS or answer.ended_at is None:
                continue
            if previous is not None and previous.get(answer.sis_batch_id) is answer.workflow_state:
                continue  # this container's last pass saw this end already, and recorded it
            ends.setdefault(shape_of(raw), []).append(End(answer.sis_batch_id, int(answer.ended_at), figures_of(raw)))
        added = 0
        for shape, found in ends.items():
            baseline = self._store.baseline(root_account_uuid, shape)
            updated = baseline.with_ends(found)
            if updated.ends != baseline.ends and self._store.save_baseline(updated):
                added += len({e.sis_batch_id for e in updated.ends} - {e.sis_batch_id for e in baseline.ends})
        expected = self.options.expected_every.get(root_account_uuid)
        current = rhythm or Rhythm(root_account_uuid)
        updated_rhythm = step(current, creations, now, expected_every=expected or None,
                              min_history=self.options.min_history,
                              enabled=self.options.missing_imports and expected != 0 and rhythm is not None)
        if hostname and updated_rhythm.hostname != hostname:
            updated_rhythm = replace(updated_rhythm, hostname=hostname)
        written = 0
        if (rhythm is None or updated_rhythm != rhythm) and self._store.save_rhythm(updated_rhythm):
            written = 1
        gap = int(updated_rhythm.gap is not None and (rhythm is None or rhythm.gap != updated_rhythm.gap))
        return {"baseline_ends": added, "rhythm_writes": written, "gaps": gap}
