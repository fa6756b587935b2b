"""The table's stream -> SNS: one alert for each end of an import or a restore, and for each stuck state
(usecases/notify.py: the order, the retry queue, parking, the time each record needs)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.notify import Notifier

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> Notifier:
    return Notifier(wiring.alert_publisher(), wiring.notifier_failures(), wiring.alert_retries(),
                    wiring.alert_details(), wiring.unusual_check())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event, context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
