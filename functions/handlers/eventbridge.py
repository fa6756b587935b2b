"""EventBridge: events whose detail-type is the Canvas event name and whose detail is the event.

An invalid event raises, so that after Lambda's asynchronous retries it lands in the function's
on-failure destination with the reason in its error message. An event that names a root account
this deployment does not serve is dropped, valid or not (counted and logged by the core): no retries.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.admission import NotAllowed
from sis_imports.events import InvalidEvent
from sis_imports.ingest import SisBatchIngest
from sis_imports.observability import count_rejected, logger, metrics


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


@cache
def app() -> EventBridgeConsumer:
    return EventBridgeConsumer(wiring.sis_batch_ingest())


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
