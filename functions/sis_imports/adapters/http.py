"""API Gateway HTTP API (payload v2) in and out, and a deadline for outbound requests."""

from __future__ import annotations

import base64
import binascii
import json
import socket
import threading
import time
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


# -- outbound: a deadline for a whole request ---------------------------------------------------

class DeadlineExceeded(TimeoutError):
    """The whole request (connect, headers and body) took longer than its deadline."""


class Deadline:
    """A limit on a whole request, not on each socket read.

    A socket timeout starts again with every byte: a server that sends one byte a second never
    trips it. At the deadline a timer thread shuts the watched sockets down, which ends any read
    blocked on them at once; the caller then sees `expired` and reports a timeout.
    """

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError(f"a deadline must be a number of seconds above 0, not {seconds!r}")
        self.seconds = float(seconds)
        self.expired = False
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._started = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return max(0.0, self.seconds - (time.monotonic() - self._started))

    def watch(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass  # already closed: nothing is waiting on it


def get(url: str, *, deadline: float, max_bytes: int, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET `url`: (status, body), the whole exchange within `deadline` seconds (DeadlineExceeded
    otherwise), the body at most `max_bytes` (ValueError beyond). Other failures raise OSError.
    Redirects are not followed."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with Deadline(deadline) as limit:
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=deadline, context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=deadline)
        try:
            connection.connect()
            limit.watch(connection.sock)
            connection.request("GET", target, headers={"Accept": "application/json", **(headers or {})})
            answer = connection.getresponse()
            body = answer.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as exc:
            if limit.expired:
                raise DeadlineExceeded(f"no whole answer within {deadline:g} s") from None
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"a broken answer ({type(exc).__name__})") from exc
        finally:
            connection.close()
        if limit.expired:  # the shutdown can look like the end of a body sent without a length
            raise DeadlineExceeded(f"no whole answer within {deadline:g} s")
    if len(body) > max_bytes:
        raise ValueError(f"the answer is larger than {max_bytes} bytes")
    return answer.status, body

