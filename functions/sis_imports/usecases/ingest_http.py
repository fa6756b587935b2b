"""POST /events: Canvas's HTTPS Live Events webhook, from request to answer (status codes say who retries)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..adapters.auth import AuthUnavailable, NotJson, Unauthorized
from ..adapters.http import MAX_BODY_BYTES, BadRequest, HttpRequest, response
from ..adapters.observability import count, count_rejected, logger
from ..core.admission import NotAllowed
from ..core.events import InvalidEvent
from .ingest import SisBatchIngest


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
