"""GET /batches/{root_account_uuid}/{sis_batch_id} and GET /batches/{root_account_uuid}: one SIS import,
or a root account's recent ones (usecases/batches.py: the parameters, the cursor, the views)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from sis_imports import wiring
from sis_imports.usecases.batches import QueryApi

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> QueryApi:
    store = wiring.batch_store()
    return QueryApi(store, wiring.school_history(store).options)  # the rhythm as the reconciler judges it


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app()(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
