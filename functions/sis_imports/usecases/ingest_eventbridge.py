"""EventBridge: events whose detail-type is the Canvas event name and whose detail is the event.

An invalid event raises, so that after Lambda's asynchronous retries it lands in the function's
on-failure destination with the reason in its error message. An event that names a root account
this deployment does not serve is dropped, valid or not (counted and logged by the core): no retries.
"""

from __future__ import annotations

from typing import Any

from ..adapters.observability import count_rejected, logger
from ..core.admission import NotAllowed
from ..core.events import InvalidEvent
from .ingest import SisBatchIngest


class EventBridgeConsumer:
    def __init__(self, ingest: SisBatchIngest):
        self._ingest = ingest

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            outcome = self._ingest.ingest(event.get("detail"))
        except InvalidEvent:
            count_rejected("invalid")
            logger.warning("invalid EventBridge event", extra={"eventbridge_id": event.get("id")})
            raise
        except NotAllowed as exc:
            return {"status": "refused", "field": exc.field}
        return {"status": outcome.status, **outcome.detail}
