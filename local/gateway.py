"""API Gateway's HTTP API (payload format 2.0) in front of the real handlers, on 127.0.0.1.

Each request becomes the event API Gateway would send the function, and the function's answer
becomes the HTTP response, by the same rules: an unmatched route is `404 {"message":"Not Found"}`,
a function that raises is `500 {"message":"Internal Server Error"}`.

Besides, local-only control routes that no deployment has (`POST /_local/reconcile`: one reconcile
pass now, for `make reconcile`): answered only with the run's control key in `X-Local-Control`
(kept in its 0600 state file), else 404 like any unknown route.
"""

from __future__ import annotations

import base64
import hmac
import json
import sys
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from local.invoke import Handler, invoke

EVENTS_ROUTE = "POST /events"
BATCH_ROUTE = "GET /batches/{root_account_uuid}/{sis_batch_id}"
LIST_ROUTE = "GET /batches/{root_account_uuid}"
JWKS_PATH = "/.well-known/jwks.json"
RECONCILE_CONTROL = "POST /_local/reconcile"  # local only: no such route is deployed
CONTROL_HEADER = "X-Local-Control"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API's request payload quota
ACCOUNT_ID = "123456789012"  # moto's default account


def match(method: str, path: str) -> tuple[str, dict[str, str] | None] | None:
    """The route key and path parameters for a request, or None when no route matches."""
    if method == "POST" and path == "/events":
        return EVENTS_ROUTE, None
    parts = path.split("/")
    if method == "GET" and len(parts) == 4 and parts[:2] == ["", "batches"] and parts[2] and parts[3]:
        # API Gateway hands path parameters over URL-decoded.
        return BATCH_ROUTE, {"root_account_uuid": unquote(parts[2]), "sis_batch_id": unquote(parts[3])}
    if method == "GET" and len(parts) == 3 and parts[:2] == ["", "batches"] and parts[2]:
        return LIST_ROUTE, {"root_account_uuid": unquote(parts[2])}
    return None


def http_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: dict[str, str] | None,
    *,
    port: int,
    request_id: str,
) -> dict[str, Any]:
    """The payload v2 event API Gateway sends a function for one request."""
    url = urlsplit(target)
    # Repeated headers and query parameters are joined with commas; cookies travel apart.
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": f"127.0.0.1:{port}",
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": formatdate(now, usegmt=True),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = text
    return event


def to_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A function's answer as status, headers and body, by payload v2's rules."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # A bare value: API Gateway answers 200 with it as JSON.
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return int(result["statusCode"]), headers, data


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalGateway
    server_version = "canvas-sis-local"
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY on each accepted connection: the status line and headers go out in one write and
    # the body in a second, and with Nagle's algorithm on, that second write waits for the client's
    # delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str | None = None) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if request_id:
            self.send_header("apigw-requestid", request_id)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, request_id: str | None = None) -> None:
        self._send(status, [("content-type", "application/json")], json.dumps(payload).encode(), request_id)

    def _body(self) -> bytes | None:
        """The request body, or None when it exceeds the payload quota (already answered)."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks, size = [], 0
            while True:
                length = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                size += length
                if size > MAX_PAYLOAD_BYTES:
                    self.close_connection = True
                    self._json(413, {"message": "Request Entity Too Large"})
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._json(413, {"message": "Request Entity Too Large"})
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if body is None:
            return
        if self.command == "GET" and path == JWKS_PATH and self.server.jwks is not None:
            return self._json(200, self.server.jwks)
        control = self.server.controls.get(f"{self.command} {path}")
        if control is not None and self.server.control_key and hmac.compare_digest(
                (self.headers.get(CONTROL_HEADER) or "").encode(), self.server.control_key.encode()):
            try:
                status, payload = control(body)
            except Exception as exc:
                print(f"[http] {self.command} {path}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
            return self._json(status, payload)
        matched = match(self.command, path)
        handler = self.server.routes.get(matched[0]) if matched else None
        if matched is None or handler is None:
            return self._json(404, {"message": "Not Found"})
        route_key, path_parameters = matched
        request_id = str(uuid.uuid4())
        event = http_event(self.command, self.path, list(self.headers.items()), body, route_key, path_parameters,
                           port=self.server.server_address[1], request_id=request_id)
        try:
            result = invoke(handler, event, self.server.function_names.get(route_key, "local"))
            status, headers, data = to_response(result)
        except Exception as exc:  # what API Gateway answers when the function fails
            print(f"[http] {route_key}: the function raised {type(exc).__name__}", file=sys.stderr, flush=True)
            return self._json(500, {"message": "Internal Server Error"}, request_id)
        self._send(status, headers, data, request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle  # noqa: N815

    def log_message(self, fmt: str, *args: Any) -> None:
        # The path only: the query string can hold the shared token.
        status = args[1] if len(args) > 1 else ""
        sys.stderr.write(f"[http] {self.command} {urlsplit(self.path).path} -> {status}\n")


class LocalGateway(ThreadingHTTPServer):
    """Bound at once (so a busy port is known before anything else starts); routes are set once ready.

    Requests that arrive before `serve_forever` wait in the listen backlog, which is long enough for
    a burst of concurrent senders (socketserver's default of 5 reset some of 16 at once).
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.routes: dict[str, Handler] = {}
        self.function_names: dict[str, str] = {}
        self.jwks: dict[str, Any] | None = None
        self.controls: dict[str, Callable[[bytes], tuple[int, Any]]] = {}  # local-only routes (module doc)
        self.control_key: str | None = None
