"""The one path every ingress (HTTPS, SQS, EventBridge) takes: parse, apply, count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .batch import Decision
from .events import IgnoredEvent, parse_event
from .observability import count, logger
from .store import BatchStore

_METRIC = {Decision.APPLY: "EventsApplied", Decision.HISTORY_ONLY: "EventsLate", Decision.DUPLICATE: "EventsDuplicate"}


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # applied | history | duplicate | ignored
    detail: dict[str, Any]


class SisBatchIngest:
    def __init__(self, store: BatchStore):
        self._store = store

    def ingest(self, raw: Any) -> IngestOutcome:
        """Apply one decoded event. Raises `InvalidEvent` for bad input; store errors propagate."""
        parsed = parse_event(raw)
        if isinstance(parsed, IgnoredEvent):
            count("EventsIgnored")
            logger.info("ignored a Canvas event that is not an SIS batch event", extra={"event_name": parsed.event_name})
            return IngestOutcome("ignored", {"note": "not an SIS batch event; ignored"})
        result = self._store.apply(parsed)
        count("EventsAccepted")
        count(_METRIC[result.decision])
        logger.info(
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
