"""An import's end against the school's own history, when its alert goes out (core/unusual.py has the rule).

One GetItem of the shape's baseline per import end; one UpdateItem on the batch when the end is unusual (the
list route and `make status` show it); a successful end is recorded into the baseline (one UpdateItem guarded by
its version), as the reconciler records what it lists (usecases/school_history.py). An end is compared with
the kept ends before it (never itself, nor later ones), so a retry says the same.
"""

from __future__ import annotations

from typing import Any

from ..adapters.observability import logger
from ..core.alerts import Alert, follow_up
from ..core.batch import Batch
from ..core.moments import epoch_seconds
from ..core.unusual import Baseline, Check, End, annotate, check

SUCCESS_ENDS = ("imported", "imported_with_messages")  # what a baseline is made of (as usecases/school_history.py)
RECORD_ATTEMPTS = 2
# An end whose figures Canvas did not give when it alerted is asked for again at the reconciler's next passes,
# this many times at most (each pass is `reconcile_minutes` later).
FIGURES_RECHECKS = 3


class UnusualEnds:
    def __init__(self, store: Any, *, sensitivity: float, min_history: int):
        self._store = store
        self._sensitivity = sensitivity
        self._min_history = min_history

    def annotate(self, batch: Batch, alert: Alert, details: dict[str, Any] | None) -> Alert:
        if alert.message.get("type") != "sis_import_finished":
            return alert  # a restore is not an import: nothing to compare
        if not isinstance(details, dict) or not isinstance(details.get("figures"), dict):
            return annotate(alert, Check((), 0, "no figures: Canvas's details of this import were not read"))
        shape = str(details.get("import_shape"))
        # Eventually consistent (half a read unit): an end recorded a moment ago may be missing from the
        # comparison, and a save from a stale read fails its version guard and reads again (_record).
        baseline = self._store.baseline(batch.root_account_uuid, shape, consistent=False)
        ended = epoch_seconds(alert.message.get("finished_at"))  # compared with the ends before it, not later ones
        result = check(details["figures"], baseline.history_for(batch.sis_batch_id, ended),
                       sensitivity=self._sensitivity, min_history=self._min_history)
        if result.anomalies:
            self._store.mark_unusual(batch.root_account_uuid, batch.sis_batch_id, [a.figure for a in result.anomalies])
        if alert.message.get("workflow_state") in SUCCESS_ENDS:
            self._record(baseline, End(batch.sis_batch_id, int(ended or 0), details["figures"]))
        return annotate(alert, result)

    def owe(self, batch: Batch) -> None:
        """This end's figures were not read (Canvas did not answer): the reconciler's next pass asks the notifier
        to read them again. Best effort: a write that fails leaves the end unchecked, as before."""
        try:
            self._store.owe_figures(batch.root_account_uuid, batch.sis_batch_id)
        except Exception:
            logger.exception("could not note an end's figures as owed; it stays unchecked",
                             extra={"root_account_uuid": batch.root_account_uuid, "sis_batch_id": batch.sis_batch_id})

    def recheck(self, batch: Batch, alert: Alert, details: dict[str, Any] | None, *, owe_again: bool) -> Alert | None:
        """The end's figures, read again at the reconciler's request: the follow-up alert when they are unusual
        (an end alert of its own `alert_id`, `follow_up` true), else None. Unread again, they are owed again
        (when `owe_again`: Canvas, not our configuration, kept them) until FIGURES_RECHECKS."""
        where = {"root_account_uuid": batch.root_account_uuid, "sis_batch_id": batch.sis_batch_id,
                 "rechecks": batch.figures_rechecks}
        if not isinstance(details, dict) or not isinstance(details.get("figures"), dict):
            if owe_again and batch.figures_rechecks < FIGURES_RECHECKS:
                logger.info("an end's figures are still unread; asked again at the next pass", extra=where)
                self.owe(batch)
            else:
                logger.warning("an end's figures could not be read; it stays unchecked against the school's "
                               "history", extra={**where, "reason": alert.message.get("details_unavailable")})
            return None
        checked = self.annotate(batch, alert, details)
        return follow_up(checked) if checked.message.get("unusual") else None

    def _record(self, baseline: Baseline, end: End) -> None:
        """The end into its shape's baseline, as the reconciler records what it lists: an import created before
        the reconciler's last pass (a long one) is not listed again, and its end would be missing."""
        for _ in range(RECORD_ATTEMPTS):
            updated = baseline.with_ends([end])
            if updated.ends == baseline.ends or self._store.save_baseline(updated):
                return
            baseline = self._store.baseline(baseline.root_account_uuid, baseline.shape)  # lost a race: again
