"""EventBridge: events whose detail-type is the Canvas event name and whose detail is the event
(usecases/ingest_eventbridge.py says what is retried and what is dropped)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.ingest_eventbridge import EventBridgeConsumer

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> EventBridgeConsumer:
    return EventBridgeConsumer(wiring.sis_batch_ingest())


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
