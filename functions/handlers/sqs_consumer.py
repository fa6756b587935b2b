"""Canvas's SQS transport: each message body is one Live Event (unsigned JSON); a bad message fails
alone and reaches the dead-letter queue (usecases/ingest_sqs.py)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.ingest_sqs import SqsConsumer

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> SqsConsumer:
    return SqsConsumer(wiring.sis_batch_ingest())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event, context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
