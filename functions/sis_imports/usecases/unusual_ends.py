"""An import's end against the school's own history, when its alert goes out (core/unusual.py has the rule).

One GetItem of the shape's baseline per import end; one UpdateItem on the batch when the end is unusual (the
list route and `make status` show it). The baseline is the reconciler's to write (usecases/school_history.py):
the end itself is left out of what it is compared with, so a retry says the same.
"""

from __future__ import annotations

from typing import Any

from ..core.alerts import Alert
from ..core.batch import Batch
from ..core.unusual import Check, annotate, check


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
        baseline = self._store.baseline(batch.root_account_uuid, str(details.get("import_shape")))
        result = check(details["figures"], baseline.history_for(batch.sis_batch_id, None),
                       sensitivity=self._sensitivity, min_history=self._min_history)
        if result.anomalies:
            self._store.mark_unusual(batch.root_account_uuid, batch.sis_batch_id, [a.figure for a in result.anomalies])
        return annotate(alert, result)
