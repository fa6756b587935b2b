"""`make run`: the deployed pipeline on this machine, with moto as its AWS and the same handlers.

  POST /events                                    -> handlers.ingest   (as API Gateway would call it)
  GET  /batches/{root_account_uuid}/{sis_batch_id} -> handlers.query
  GET  /.well-known/jwks.json                     -> the development key's JWKS
  table stream -> handlers.notifier -> SNS -> a subscriber queue -> the notifications file
  canvas-live-events-local queue -> handlers.sqs_consumer; the local bus -> handlers.eventbridge
"""

from __future__ import annotations

import base64
import errno
import json
import os
import secrets
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))

from local import settings  # noqa: E402
from local.lambda_context import LambdaContext  # noqa: E402

BATCHES = "/batches/"


def http_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The API Gateway HTTP API (payload v2) event for one request."""
    url = urlsplit(target)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {url.path}",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": query or None,
        "requestContext": {
            "http": {"method": method, "path": url.path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "requestId": str(uuid.uuid4()),
            "stage": "$default",
        },
        "body": text or None,
        "isBase64Encoded": is_base64,
    }
    if method == "GET" and url.path.startswith(BATCHES):
        parts = url.path[len(BATCHES):].split("/")
        if len(parts) == 2:
            event["routeKey"] = "GET /batches/{root_account_uuid}/{sis_batch_id}"
            event["pathParameters"] = {"root_account_uuid": parts[0], "sis_batch_id": parts[1]}
    return event


def make_server(port: int, jwks: dict[str, Any] | None) -> ThreadingHTTPServer:
    import handlers.ingest
    import handlers.query

    class Handler(BaseHTTPRequestHandler):
        server_version = "canvas-sis-local"

        def _answer(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _invoke(self, handler: Any) -> None:
            length = int(self.headers.get("content-length") or 0)
            event = http_event(self.command, self.path, dict(self.headers), self.rfile.read(length))
            result = handler(event, LambdaContext(function_name=handler.__module__))
            self._answer(result["statusCode"], result.get("body") or "",
                         (result.get("headers") or {}).get("content-type", "application/json"))

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path == "/events":
                return self._invoke(handlers.ingest.handler)
            self._answer(404, json.dumps({"error": "no such route"}))

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if path == "/.well-known/jwks.json" and jwks is not None:
                return self._answer(200, json.dumps(jwks))
            if path.startswith(BATCHES) and len(path[len(BATCHES):].split("/")) == 2:
                return self._invoke(handlers.query.handler)
            self._answer(404, json.dumps({"error": "no such route"}))

        def log_message(self, fmt: str, *args: Any) -> None:
            # The request line only: a query string can hold the shared token.
            sys.stderr.write(f"[http] {self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else ''}\n")

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> int:
    port = int(os.environ.get("PORT", "3000"))
    auth = (os.environ.get("SIS_AUTH") or "jwt").strip().lower()
    if auth not in ("jwt", "token", "none"):
        print(f"SIS_AUTH must be jwt, token or none, not {auth!r}", file=sys.stderr)
        return 2
    state_dir = settings.state_dir()
    notifications = settings.notifications_file()

    # Claim the port before anything else, so a second run stops at once with a clear reason.
    try:
        probe = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"port {port} is already in use (is `make run` already running?). "
                  f"Stop it, or choose another: make run PORT={port + 1}", file=sys.stderr)
            return 1
        raise
    probe.server_close()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's own request log: noise here

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_url = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="canvas-sis-imports", POWERTOOLS_METRICS_NAMESPACE="CanvasSisImports",
        POWERTOOLS_METRICS_DISABLED="true",  # EMF lines would drown the console; logs stay
        SIS_AUTH=auth,
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)

    from local import resources

    token = secrets.token_urlsafe(24) if auth == "token" else None
    aws = resources.create(token)
    os.environ.update(TABLE_NAME=aws.table_name, TOPIC_ARN=aws.topic_arn, RETENTION_DAYS="90")
    if aws.token_secret_arn:
        os.environ["SIS_TOKEN_SECRET_ARN"] = aws.token_secret_arn

    jwks = None
    key_path = state_dir / "dev-signing-key.pem"
    if auth == "jwt":
        from local.dev_keys import DevKey

        key = DevKey.create(key_path)
        jwks = key.jwks()
        os.environ["SIS_JWKS_URL"] = f"http://127.0.0.1:{port}/.well-known/jwks.json"

    import handlers.eventbridge
    import handlers.notifier
    import handlers.sqs_consumer
    from local.pollers import AlertSubscriber, QueuePoller, StreamPoller

    try:
        server = make_server(port, jwks)
    except OSError as exc:
        print(f"port {port} could not be opened: {exc.strerror}", file=sys.stderr)
        moto.stop()
        return 1
    stop = threading.Event()
    workers = [
        StreamPoller(stop, aws.stream_arn, handlers.notifier.handler),
        QueuePoller("sqs", stop, aws.canvas_queue_url, aws.canvas_queue_arn, handlers.sqs_consumer.handler),
        QueuePoller("eventbridge", stop, aws.eventbridge_queue_url, "", handlers.eventbridge.handler, eventbridge=True),
        AlertSubscriber(stop, aws.subscriber_queue_url, notifications),
    ]
    for worker in workers:
        worker.start()
    state_dir.mkdir(parents=True, exist_ok=True)
    settings.state_file().write_text(json.dumps({
        "pid": os.getpid(), "port": port, "auth": auth, "moto_endpoint": moto_url,
        "canvas_queue_url": aws.canvas_queue_url, "bus_name": aws.bus_name,
        "signing_key": str(key_path) if jwks else None, "token": token,
    }, indent=2))

    base = f"http://127.0.0.1:{port}"
    webhook = f"{base}/events" + (f"?token={token}" if token else "")
    lines = [
        "",
        "Canvas SIS import monitor: local run (AWS emulated by moto; nothing leaves this machine)",
        f"  webhook      POST {webhook}",
        f"  batch view   GET  {base}/batches/<root_account_uuid>/<sis_batch_id>",
        f"  auth         SIS_AUTH={auth}"
        + {"jwt": f" (RS256 JWT; dev key JWKS at {base}/.well-known/jwks.json)",
           "token": " (shared token in the URL above)",
           "none": ""}[auth],
        f"  SQS          {aws.canvas_queue_url}",
        f"  EventBridge  bus {aws.bus_name}",
        f"  alerts       printed here and appended to {notifications}",
        "  send         make send FILE=examples/failed_import.json  [VIA=https|sqs|eventbridge]",
        "  stop         Ctrl-C",
        "",
    ]
    if auth == "none":
        lines[5:5] = ["", "  !!! SIS_AUTH=none: UNSIGNED EVENTS ARE ACCEPTED FROM ANYONE. LOCAL USE ONLY. !!!", ""]
    print("\n".join(lines), flush=True)

    def shutdown(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
        for worker in workers:
            worker.join(timeout=5)
        moto.stop()
        settings.state_file().unlink(missing_ok=True)
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
