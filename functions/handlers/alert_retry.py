"""The retry queue -> SNS: alerts the notifier could not publish, published again (usecases/alert_retry.py)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.alert_retry import AlertRetry

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> AlertRetry:
    return AlertRetry(wiring.alert_publisher())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event, context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
