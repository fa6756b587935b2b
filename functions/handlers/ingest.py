"""POST /events: Canvas's HTTPS Live Events webhook (API Gateway HTTP API, payload v2)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from sis_imports import wiring
from sis_imports.usecases.ingest_http import IngestApi

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> IngestApi:
    return IngestApi(wiring.authenticator(), wiring.sis_batch_ingest())


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app()(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
