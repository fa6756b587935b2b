"""API Gateway HTTP API (payload v2) in and out."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 256 * 1024


class BadRequest(Exception):
    pass


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: bytes
    query: dict[str, str] = field(default_factory=dict)
    path_parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> HttpRequest:
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("the body is not valid base64") from None
        else:
            body = raw.encode("utf-8", errors="surrogatepass")
        http = (event.get("requestContext") or {}).get("http") or {}
        return cls(
            method=str(http.get("method", "")).upper(),
            path=str(event.get("rawPath") or http.get("path") or ""),
            body=body,
            query=dict(event.get("queryStringParameters") or {}),
            path_parameters=dict(event.get("pathParameters") or {}),
        )


def response(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(payload, separators=(",", ":")),
    }
