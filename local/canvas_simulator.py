"""A small Canvas on 127.0.0.1: the part of the SIS Import API the reconciler reads, and the Live
Events its imports announce, as read in instructure/canvas-lms (app/models/sis_batch.rb,
app/controllers/sis_imports_api_controller.rb, app/middleware/request_throttle.rb) and the API docs.

  GET /api/v1/accounts/self (or /1)                  {"id": 1, "uuid": root_account_uuid, ...}
  GET /api/v1/accounts/self/sis_imports              {"sis_imports": [...]}, newest created_at first,
      created_since / created_before (strict, on created_at only), workflow_state[] (dropped when
      every value is invalid), per_page (default 10, max 100), page; Link rel="current", "next",
      "prev", "first" (no "last": Canvas counts no total)
  GET /api/v1/accounts/self/sis_imports/importing    importing and cleanup_batch only
  GET /api/v1/accounts/self/sis_imports/:id          one import, or 404

`Authorization: Bearer <token>` or 401. Throttling as Canvas does it: 403 text/plain
`403 Forbidden (Rate Limit Exceeded)` with `X-Rate-Limit-Remaining: 0.0` (and no X-Request-Cost),
every Nth request, with a probability (seeded), or the next N on demand, only ever to a good token; other answers carry
X-Request-Cost and the leaky bucket's X-Rate-Limit-Remaining.

Imports are driven from Python (create_import, advance, run, abort, restore, ...). Every change
Canvas announces (all but aborted and cleanup_batch) becomes a Live Event handed to `on_event`,
unless it was told to lose it; the events of background jobs (importing and later) name no host.
Times come from `clock`, never from today's date. As in Canvas, one import of the root account
runs at a time (importing or cleanup_batch): later uploads wait in `created`, and `start_next`
starts the oldest of them, as Canvas's job does when the one ahead ends (`one_import_at_a_time=False`
lifts the rule, for tests of overlapping timing only).

With a `control_key`, the same driving is open over HTTP (`make simulate` uses it), under
/_simulator/, which is no Canvas route: every request needs `X-Simulator-Control: <control_key>`
(else 404, as for any unknown route), JSON in and out, no Canvas token, never throttled:

  GET  /_simulator/status                    uuid, host, counts of imports and events (pending: not yet delivered)
  POST /_simulator/imports                   {"strand", "lose": [states], "at", "import_type", "options": {}}
  GET  /_simulator/imports/:id
  POST /_simulator/imports/:id/advance       {"state", "at", "lose", "counts", "errors", "warnings"}
  POST /_simulator/imports/:id/run           {"outcome", "counts", "errors", "warnings"}
  POST /_simulator/imports/:id/abort         {"how": api | all_pending | change_threshold, "at", "deletes"}
  POST /_simulator/imports/:id/restore       {"partial", "finish"}
  POST /_simulator/start_next                {"at"}: the oldest `created` import starts importing
  POST /_simulator/imports/:id/lose          {"states": [...]}
  POST /_simulator/abort_all_pending         {"at"}
  POST /_simulator/throttle                  {"count"}: the next `count` API requests answer 403
  POST /_simulator/history                   {"imports", "at", "every_minutes"}: the school's past hourly
                                             imports, ended, no Live Event (a new deployment finds them)
  POST /_simulator/school_import             {"at", "deleted", "throttle_reads"}: one of the school's imports,
                                             run to imported (its first reads by id throttled)
`at` is an ISO-8601 time (backdating an import, say). `on_event` is called with the simulator's
lock held: it must not block (the local run queues the event for a delivery thread).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.canvas_imports import (  # noqa: F401 (CONTROL_HEADER, UPLOADER_URL_TOKEN, event_time: imported from here)
    ABORTS, CONTROL_HEADER, CONTROL_PREFIX, HWM, LEAK_PER_SECOND, MAX_CONTROL_BODY, STATES, UPLOADER_URL_TOKEN,
    ImportLives, SimImport, _parse_time, event_time)


class CanvasSimulator(ImportLives):
    def __init__(self, *, token: str = "simulated-canvas-api-token", root_account_uuid: str | None = None,
                 root_account_id: str = "10000000000001", account_name: str = "Simulated University",
                 hostname: str = "canvas.test", clock: Callable[[], datetime] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None, throttle_every: int = 0,
                 throttle_probability: float = 0.0, throttle_status: int = 403, seed: int = 0,
                 compact_events: bool = False, first_id: int = 1000, unpermitted_token: str | None = None,
                 control_key: str | None = None, answer_delay: float = 0.0, one_import_at_a_time: bool = True):
        self._rng = random.Random(seed)
        # Up to this many seconds per API answer, split at random around the moment Canvas reads its
        # data: a slow Canvas, for tests of what happens while a reconcile pass waits for it.
        self.answer_delay = answer_delay
        self.one_import_at_a_time = one_import_at_a_time
        self.control_key = control_key
        self.pending_events: Callable[[], int] = lambda: 0  # events handed to on_event, not yet delivered
        self.token, self.unpermitted_token = token, unpermitted_token
        self.root_account_uuid = root_account_uuid or "".join(
            self._rng.choice(string.ascii_letters + string.digits) for _ in range(40))
        self.root_account_id, self.account_name, self.hostname = root_account_id, account_name, hostname
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.on_event = on_event
        self.throttle_every, self.throttle_probability = throttle_every, throttle_probability
        self.throttle_status, self.compact_events = throttle_status, compact_events
        self.imports: dict[int, SimImport] = {}
        self.events: list[dict[str, Any]] = []  # handed to on_event, in order
        self.lost: list[dict[str, Any]] = []  # announced by Canvas, never delivered
        self.requests = self.throttled = 0
        self._next_id, self._attachment_id = first_id, 5000
        self._force_throttle = 0
        self._throttle_reads: dict[int, int] = {}  # import id -> how many more reads of it by id answer 403
        self._bucket, self._bucket_at = 0.0, time.monotonic()
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- the server ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(min(length, MAX_CONTROL_BODY)) if length > 0 else b""
                status, headers, body = simulator.handle(self.command, self.path, dict(self.headers.items()), data)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="canvas-simulator").start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> CanvasSimulator:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def throttle_next(self, count: int = 1) -> None:
        with self._lock:
            self._force_throttle += count

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """One request as Canvas answers it: (status, headers, body). The HTTP server calls this."""
        path = urlsplit(target).path
        if path == CONTROL_PREFIX.rstrip("/") or path.startswith(CONTROL_PREFIX):
            status, payload = self._control(method, path, headers, body)
            return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()
        if self.answer_delay > 0:
            with self._lock:
                total = self._rng.uniform(0, self.answer_delay)
                before = self._rng.uniform(0, total)
            time.sleep(before)
            try:
                return self._answer(method, target, headers)
            finally:
                time.sleep(total - before)
        return self._answer(method, target, headers)

    def _answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests += 1
            # The quota is the token's (Canvas's throttling.md): a request without a good token
            # answers 401, never a throttled 403.
            refused = self._unauthorized(headers)
            if not refused and self._throttles(target):
                self.throttled += 1
                reason = "Forbidden" if self.throttle_status == 403 else "Too Many Requests"
                return (self.throttle_status, {"Content-Type": "text/plain; charset=utf-8", "X-Rate-Limit-Remaining":
                        "0.0"}, f"{self.throttle_status} {reason} (Rate Limit Exceeded)\n".encode())
            cost = round(self._rng.uniform(0.02, 0.6), 4)
            self._bucket = max(0.0, self._bucket - (time.monotonic() - self._bucket_at) * LEAK_PER_SECOND) + cost
            self._bucket_at = time.monotonic()
            status, extra, payload = refused or self._route(method, target, headers)
            out = {"Content-Type": "application/json; charset=utf-8", "X-Request-Cost": f"{cost}",
                   "X-Rate-Limit-Remaining": f"{HWM - self._bucket:.4f}", **extra}
            return status, out, json.dumps(payload).encode()

    def _throttles(self, target: str) -> bool:
        read = re.fullmatch(r"/api/v1/accounts/(?:self|1)/sis_imports/(\d+)/?", urlsplit(target).path)
        if read and self._throttle_reads.get(int(read.group(1)), 0) > 0:
            self._throttle_reads[int(read.group(1))] -= 1
            return True
        if self._force_throttle > 0:
            self._force_throttle -= 1
            return True
        if self.throttle_every and self.requests % self.throttle_every == 0:
            return True
        return bool(self.throttle_probability) and self._rng.random() < self.throttle_probability

    def _unauthorized(self, headers: dict[str, str]) -> tuple[int, dict[str, str], Any] | None:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if self.unpermitted_token and auth == f"Bearer {self.unpermitted_token}":  # valid, lacks import_sis
            message = "user not authorized to perform that action"  # Canvas: 401, no WWW-Authenticate
            return 401, {}, {"status": "unauthorized", "errors": [{"message": message}]}
        if auth != f"Bearer {self.token}":
            message = "Invalid access token." if auth else "user authorization required"
            return 401, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}, {
                "status": "unauthenticated", "errors": [{"message": message}]}
        return None

    def _route(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        url = urlsplit(target)
        parts = url.path.rstrip("/").split("/")
        query = parse_qsl(url.query, keep_blank_values=True)
        if method != "GET" or parts[:4] != ["", "api", "v1", "accounts"] or parts[4:5] not in (["self"], ["1"]):
            return self._not_found()
        if len(parts) == 5:
            return 200, {}, {"id": 1, "name": self.account_name, "uuid": self.root_account_uuid, "workflow_state":
                             "active", "parent_account_id": None, "root_account_id": None, "sis_account_id": None,
                             "default_time_zone": "America/Chicago", "lti_guid": f"{self.root_account_uuid}:canvas-lms"}
        if parts[5] != "sis_imports" or len(parts) > 7:
            return self._not_found()
        if len(parts) == 7 and parts[6] != "importing":
            found = self.imports.get(int(parts[6])) if parts[6].isdigit() else None
            return (200, {}, found.as_json()) if found else self._not_found()
        rows = sorted(self.imports.values(), key=lambda i: (i.created_at, i.id), reverse=True)
        if len(parts) == 7:
            rows = [r for r in rows if r.workflow_state in ("importing", "cleanup_batch")]
        return self._page(rows, query, url.path, headers)

    def _page(self, rows: list[SimImport], query: list[tuple[str, str]], path: str,
              headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        last = dict(query)  # a repeated parameter: its last value
        if since := _parse_time(last.get("created_since", "")):  # an unreadable time is ignored, as Canvas does
            rows = [r for r in rows if r.created_at > since]
        if before := _parse_time(last.get("created_before", "")):
            rows = [r for r in rows if r.created_at < before]
        wanted = [v for k, v in query if k in ("workflow_state[]", "workflow_state") and v in STATES]
        if wanted:  # all values invalid: Canvas drops the filter silently
            rows = [r for r in rows if r.workflow_state in wanted]
        per_page = min(max(int(last["per_page"]) if last.get("per_page", "").isdigit() else 10, 1), 100)
        page = max(int(last["page"]) if last.get("page", "").isdigit() else 1, 1)
        chunk = rows[(page - 1) * per_page: page * per_page + 1]  # one more: is there a next page?
        host = {k.lower(): v for k, v in headers.items()}.get("host") or self.base_url.split("//", 1)[1]
        kept = [(k, v) for k, v in query if k not in ("page", "per_page")]

        def link(number: int, rel: str) -> str:
            return f'<http://{host}{path}?{urlencode([*kept, ("page", number), ("per_page", per_page)])}>; rel="{rel}"'

        links = [link(page, "current")]
        if len(chunk) > per_page:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links.append(link(1, "first"))
        return 200, {"Link": ",".join(links)}, {"sis_imports": [r.as_json() for r in chunk[:per_page]]}

    @staticmethod
    def _not_found() -> tuple[int, dict[str, str], Any]:
        return 404, {}, {"errors": [{"message": "The specified resource does not exist."}]}

    # -- driving imports over HTTP (make simulate) ---------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"root_account_uuid": self.root_account_uuid, "hostname": self.hostname,
                    "imports": len(self.imports), "events_announced": len(self.events) + len(self.lost),
                    "events_lost": len(self.lost), "events_pending": self.pending_events(),
                    "requests": self.requests, "throttled": self.throttled, "now": event_time(self.clock())}

    def _control(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        given = {k.lower(): v for k, v in headers.items()}.get(CONTROL_HEADER.lower(), "")
        if not self.control_key or not secrets.compare_digest(given.encode(), self.control_key.encode()):
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}
        try:
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
            return self._drive(method, path[len(CONTROL_PREFIX):].strip("/").split("/"), args)
        except KeyError as exc:
            return 404, {"error": f"no such import: {exc.args[0]}"}
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}

    def _drive(self, method: str, parts: list[str], args: dict[str, Any]) -> tuple[int, Any]:
        def at() -> datetime | None:
            if args.get("at") in (None, ""):
                return None
            moment = _parse_time(str(args["at"]))
            if moment is None:
                raise ValueError(f"`at` is not an ISO-8601 time: {args['at']!r}")
            return moment

        def details() -> dict[str, Any]:
            return {k: args[k] for k in ("counts", "errors", "warnings") if args.get(k) is not None}

        route = (method, parts[0] if parts else "", len(parts))
        if route == ("GET", "status", 1):
            return 200, self.status()
        if route == ("POST", "throttle", 1):
            self.throttle_next(int(args.get("count", 1)))
            return 200, self.status()
        if route == ("POST", "abort_all_pending", 1):
            return 200, {"aborted": self.abort_all_pending(at=at())}
        if route == ("POST", "history", 1):
            last_at = at()
            if last_at is None:
                raise ValueError("`at` (the last import's creation time) is required")
            every, imports = float(args.get("every_minutes") or 60), int(args.get("imports", 24))
            if not 0 < every <= 7 * 24 * 60:
                raise ValueError("`every_minutes` must be above 0 and at most a week")
            if not 1 <= imports <= 200:
                raise ValueError("`imports` must be 1 to 200")
            return 201, {"ids": self.history(imports, last_at=last_at,
                                             every=timedelta(minutes=every))}
        if route == ("POST", "school_import", 1):
            sis_id = self.school_import(at() or self.clock(), deleted=int(args.get("deleted") or 0),
                                        throttle_reads=int(args.get("throttle_reads") or 0))
            return 201, {"id": sis_id, "sis_import": self.sis_import(sis_id)}
        if route == ("POST", "start_next", 1):
            started = self.start_next(at=at())
            return 200, {"id": started, "sis_import": None if started is None else self.sis_import(started)}
        if route == ("POST", "imports", 1):
            options = args.get("options") or {}
            if not isinstance(options, dict):
                raise ValueError("`options` must be an object")
            sis_id = self.create_import(strand=bool(args.get("strand")), lose=list(args.get("lose") or ()), at=at(),
                                        import_type=str(args.get("import_type") or "instructure_csv"), **options)
            return 201, {"id": sis_id, "sis_import": self.sis_import(sis_id)}
        if parts[0] != "imports" or len(parts) not in (2, 3) or not parts[1].isdigit():
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}
        sis_id = int(parts[1])
        with self._lock:
            if sis_id not in self.imports:
                raise KeyError(sis_id)
        action = parts[2] if len(parts) == 3 else None
        if method == "GET" and action is None:
            pass
        elif method != "POST" or action is None:
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}
        elif action == "advance":
            self.advance(sis_id, str(args["state"]) if "state" in args else "", at=at(), lose=bool(args.get("lose")),
                         **details())
        elif action == "run":
            self.run(sis_id, str(args.get("outcome") or "imported"), **details())
        elif action == "abort":
            if str(args.get("how") or "api") not in ABORTS:
                raise ValueError(f"`how` is one of {', '.join(ABORTS)}")
            self.abort(sis_id, str(args.get("how") or "api"), at=at(), deletes=int(args.get("deletes", 250)))
        elif action == "restore":
            self.restore(sis_id, partial=bool(args.get("partial")), finish=args.get("finish", True) is not False)
        elif action == "lose":
            self.lose(sis_id, *map(str, args.get("states") or ()))
        else:
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}
        return 200, {"id": sis_id, "sis_import": self.sis_import(sis_id)}
