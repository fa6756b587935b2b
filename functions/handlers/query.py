"""GET /batches/{root_account_uuid}/{sis_batch_id}: the current state of one SIS import."""

from __future__ import annotations

import re
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from sis_imports import wiring
from sis_imports.batch import Batch
from sis_imports.http import HttpRequest, response
from sis_imports.observability import count, logger, metrics
from sis_imports.table import ID_PATTERN

ID = re.compile(ID_PATTERN)


def batch_view(batch: Batch) -> dict[str, Any]:
    return {
        "root_account_uuid": batch.root_account_uuid,
        "root_account_id": batch.root_account_id,
        "sis_batch_id": batch.sis_batch_id,
        "account_id": batch.account_id,
        "hostname": batch.hostname,
        "workflow_state": batch.workflow_state.value,
        "terminal": batch.terminal,
        "outcome": batch.outcome,
        "first_event_at": batch.first_event_at,
        "last_event_at": batch.last_event_at,
        "history": [entry.to_dict() for entry in batch.history],
    }


class QueryApi:
    def __init__(self, store: Any):
        self._store = store

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        count("BatchQueries")
        params = HttpRequest.from_event(event).path_parameters
        for name in ("root_account_uuid", "sis_batch_id"):
            if not ID.fullmatch(params.get(name) or ""):
                return response(400, {"error": "invalid path parameter", "field": name})
        try:
            batch = self._store.get(params["root_account_uuid"], params["sis_batch_id"])
        except Exception:
            logger.exception("the batch could not be read")
            return response(503, {"error": "the batch could not be read; retry later"})
        if batch is None:
            return response(404, {"error": "no such SIS batch"})
        return response(200, batch_view(batch))


@cache
def app() -> QueryApi:
    return QueryApi(wiring.batch_store())


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app()(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
