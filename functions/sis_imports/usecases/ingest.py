"""The one path every ingress (HTTPS, SQS, EventBridge) takes: parse, admit, apply, count."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..adapters.observability import count, count_rejected, logger
from ..adapters.store import BatchStore
from ..core.admission import Admission, NotAllowed, Verdict
from ..core.batch import Decision
from ..core.events import IgnoredEvent, parse_event

_METRIC = {Decision.APPLY: "EventsApplied", Decision.HISTORY_ONLY: "EventsLate", Decision.DUPLICATE: "EventsDuplicate"}


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # applied | history | duplicate | ignored
    detail: dict[str, Any]


class SisBatchIngest:
    def __init__(self, store: BatchStore, admission: Admission, clock: Callable[[], float] = time.time):
        self._store = store
        self._admission = admission
        self._clock = clock

    def ingest(self, raw: Any) -> IngestOutcome:
        """Apply one decoded event.

        Raises `NotAllowed` for another Canvas's event, valid or not (counted and logged here, once for
        every ingress), and `InvalidEvent` for bad input from an allowed (or unnamed) root account;
        store errors propagate.
        """
        try:
            # Whose it is comes first: another Canvas's event is refused however malformed it is.
            self._admission.check_root_account(raw)
            parsed = parse_event(raw)
            if isinstance(parsed, IgnoredEvent):
                count("EventsIgnored")
                logger.info("ignored a Canvas event that is not an SIS batch event",
                            extra={"event_name": parsed.event_name})
                return IngestOutcome("ignored", {"note": "not an SIS batch event; ignored"})
            verdict = self._admission.check(parsed, self._clock())
        except NotAllowed as exc:
            count_rejected("not_allowed")
            # Only ids and host names (validated, or shown only when shaped like one): the operator needs
            # them to see a misconfiguration; nothing else of another Canvas's event is logged.
            logger.warning("event refused: not an allowed Canvas", extra={"field": exc.field, **exc.names})
            if exc.field == "metadata.hostname":
                # Our root account, another host (a beta or test copy): its import of this id exists from
                # now on, and the job events that name no host may be its, not ours.
                self._store.claim(parsed.root_account_uuid, parsed.sis_batch_id, parsed.event_time)
            raise
        if verdict == Verdict.TOO_OLD:
            count("EventsTooOld")
            logger.info("ignored an event older than the retention period",
                        extra={"event_time": parsed.event_time, "sis_batch_id": parsed.sis_batch_id})
            return IngestOutcome("ignored", {"note": "older than the retention period; ignored"})
        result = self._store.apply(parsed)
        if result.decision is Decision.FOREIGN:
            count_rejected("other_instance")
            logger.warning("event dropped: it names no host and cannot be this batch's (another instance's?)",
                           extra={"root_account_uuid": parsed.root_account_uuid, "sis_batch_id": parsed.sis_batch_id,
                                  "workflow_state": parsed.workflow_state.value, "event_time": parsed.event_time})
            return IngestOutcome("ignored", {"note": "names no host and cannot belong to this batch of the allowed "
                                                     "Canvas host (another instance's import of the same id?); ignored"})
        count("EventsAccepted")
        count(_METRIC[result.decision])
        # One line per event is most of the log bill: DEBUG, so logged only for the invocations sampled at
        # DEBUG (event_log_sample_rate); the batch's history and the metrics keep every event.
        logger.debug(
            "sis batch event %s",
            result.decision.value,
            extra={
                "event_name": parsed.event_name,
                "event_time": parsed.event_time,
                "root_account_uuid": parsed.root_account_uuid,
                "sis_batch_id": parsed.sis_batch_id,
                "workflow_state": parsed.workflow_state.value,
                "current_state": result.batch.workflow_state.value,
            },
        )
        return IngestOutcome(
            result.decision.value,
            {
                "root_account_uuid": parsed.root_account_uuid,
                "sis_batch_id": parsed.sis_batch_id,
                "workflow_state": result.batch.workflow_state.value,
            },
        )
