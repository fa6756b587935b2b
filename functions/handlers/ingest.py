"""POST /events: Canvas's HTTPS Live Events webhook (API Gateway HTTP API, payload v2)."""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from sis_imports import wiring
from sis_imports.admission import NotAllowed
from sis_imports.auth import AuthUnavailable, NotJson, Unauthorized
from sis_imports.events import InvalidEvent
from sis_imports.http import MAX_BODY_BYTES, BadRequest, HttpRequest, response
from sis_imports.ingest import SisBatchIngest
from sis_imports.observability import count, count_rejected, logger, metrics


class IngestApi:
    def __init__(self, authenticator: Any, ingest: SisBatchIngest):
        self._authenticator = authenticator
        self._ingest = ingest

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            request = HttpRequest.from_event(event)
        except BadRequest as exc:
            return self._reject(400, "bad_request", {"error": str(exc)})
        if request.method != "POST":
            return self._reject(405, "method", {"error": "use POST"})
        if len(request.body) > MAX_BODY_BYTES:
            return self._reject(413, "too_large", {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
        try:
            raw = self._authenticator.authenticate(request)
        except Unauthorized as exc:
            return self._reject(401, "unauthorized", {"error": "unauthorized", "reason": str(exc)})
        except NotJson as exc:
            return self._reject(400, "not_json", {"error": str(exc)})
        except AuthUnavailable:
            count("IngestFailures")
            logger.exception("authentication could not be checked")
            return response(503, {"error": "authentication is temporarily unavailable; retry later"})
        try:
            outcome = self._ingest.ingest(raw)
        except InvalidEvent as exc:
            return self._reject(
                400, "invalid", {"error": "invalid event", "fields": [asdict(e) for e in exc.errors]}
            )
        except NotAllowed as exc:  # counted and logged by the core, as on every ingress
            return response(403, {"error": "forbidden", "field": exc.field, "reason": exc.reason})
        except Exception:
            # Our side failed (DynamoDB throttled or down): 5xx makes Canvas retry.
            count("IngestFailures")
            logger.exception("the event could not be stored")
            return response(503, {"error": "the event could not be stored; retry later"})
        return response(200, {"status": outcome.status, **outcome.detail})

    @staticmethod
    def _reject(status: int, reason: str, payload: dict[str, Any]) -> dict[str, Any]:
        count_rejected(reason)
        logger.info("event rejected", extra={"reason": reason, "status": status, "detail": payload})
        return response(status, payload)


@cache
def app() -> IngestApi:
    return IngestApi(wiring.authenticator(), wiring.sis_batch_ingest())


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app()(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
