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
every Nth request, with a probability (seeded), or the next N on demand; other answers carry
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
`at` is an ISO-8601 time (backdating an import, say). `on_event` is called with the simulator's
lock held: it must not block (the local run queues the event for a delivery thread).
"""

from __future__ import annotations

import json
import random
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

NOT_STARTED = ("initializing", "created")
NOT_COMPLETED = (*NOT_STARTED, "importing", "cleanup_batch")
IMPORT_ENDS = ("imported", "imported_with_messages", "failed", "failed_with_messages")
RESTORE_ENDS = ("restored", "partially_restored")
STATES = (*NOT_COMPLETED, *IMPORT_ENDS, "aborted", "restoring", *RESTORE_ENDS)
RUNNING = ("importing", "cleanup_batch")  # one at a time per root account (a singleton job)
SILENT = ("aborted", "cleanup_batch")  # written with update_all: no callbacks, no Live Event
NEXT: dict[str, tuple[str, ...]] = {"initializing": ("created",), "created": ("importing",),
                                    "importing": ("cleanup_batch", *IMPORT_ENDS), "cleanup_batch": IMPORT_ENDS,
                                    **dict.fromkeys((*IMPORT_ENDS, *RESTORE_ENDS), ("restoring",)),
                                    "restoring": RESTORE_ENDS}
COUNT_KEYS = ("accounts", "terms", "abstract_courses", "courses", "sections", "xlists", "users", "user_observers",
              "enrollments", "groups", "group_categories", "group_memberships", "grade_publishing_results",
              "batch_courses_deleted", "batch_sections_deleted", "batch_enrollments_deleted", "admins",
              "change_sis_ids", "logins")
STAT_TYPES = ("Account", "EnrollmentTerm", "AbstractCourse", "Course", "CourseSection", "GroupCategory", "Group",
              "Pseudonym", "CommunicationChannel", "Enrollment", "GroupMembership", "UserObserver", "AccountUser")
HWM, LEAK_PER_SECOND = 600.0, 10.0  # Canvas's leaky bucket defaults
# Canvas sends the URL of the creating request whole; API tokens in its query are real (a fake one here).
UPLOADER_URL_TOKEN = "1398~SIMULATEDuploaderTOKENinTHEurlQ7wLx2Vn9Rk4Tz8Hs3Jd6Mf1Bp5Gc0Ya"
MAX_LISTED = 24
CONTROL_PREFIX = "/_simulator/"
CONTROL_HEADER = "X-Simulator-Control"
MAX_CONTROL_BODY = 64 * 1024
ABORTS = ("api", "all_pending", "change_threshold")


def event_time(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def api_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(raw: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))  # a '+' unescaped in a query is a space
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class SimImport:
    id: int
    created_at: datetime  # full precision (what created_since compares); the JSON shows seconds
    options: dict[str, Any]
    workflow_state: str = "initializing"
    updated_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    progress: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[list[Any]] = field(default_factory=list)  # [file, message]; a file can be null
    warnings: list[list[Any]] = field(default_factory=list)
    errors_attachment: dict[str, Any] | None = None
    request_id: str = ""
    lose: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "created_at": api_time(self.created_at), "started_at": api_time(self.started_at),
            "ended_at": api_time(self.ended_at), "updated_at": api_time(self.updated_at), "progress": self.progress,
            "workflow_state": self.workflow_state, "data": json.loads(json.dumps(self.data)), **self.options,
        }
        for key, rows, word in (("processing_errors", self.errors, "errors"),
                                ("processing_warnings", self.warnings, "warnings")):
            if rows:
                out[key] = [list(r) for r in rows[:MAX_LISTED]]
                if len(rows) > MAX_LISTED:
                    out[key].append([f"and {len(rows) - MAX_LISTED} more {word} that were not included",
                                     "Download the error file to see all errors."])
        if self.errors_attachment:
            out["errors_attachment"] = dict(self.errors_attachment)
        return out


class CanvasSimulator:
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
            if self._throttles():
                self.throttled += 1
                reason = "Forbidden" if self.throttle_status == 403 else "Too Many Requests"
                return (self.throttle_status, {"Content-Type": "text/plain; charset=utf-8", "X-Rate-Limit-Remaining":
                        "0.0"}, f"{self.throttle_status} {reason} (Rate Limit Exceeded)\n".encode())
            cost = round(self._rng.uniform(0.02, 0.6), 4)
            self._bucket = max(0.0, self._bucket - (time.monotonic() - self._bucket_at) * LEAK_PER_SECOND) + cost
            self._bucket_at = time.monotonic()
            status, extra, payload = self._route(method, target, headers)
            out = {"Content-Type": "application/json; charset=utf-8", "X-Request-Cost": f"{cost}",
                   "X-Rate-Limit-Remaining": f"{HWM - self._bucket:.4f}", **extra}
            return status, out, json.dumps(payload).encode()

    def _throttles(self) -> bool:
        if self._force_throttle > 0:
            self._force_throttle -= 1
            return True
        if self.throttle_every and self.requests % self.throttle_every == 0:
            return True
        return bool(self.throttle_probability) and self._rng.random() < self.throttle_probability

    def _route(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if self.unpermitted_token and auth == f"Bearer {self.unpermitted_token}":  # valid, lacks import_sis
            message = "user not authorized to perform that action"  # Canvas: 401, no WWW-Authenticate
            return 401, {}, {"status": "unauthorized", "errors": [{"message": message}]}
        if auth != f"Bearer {self.token}":
            message = "Invalid access token." if auth else "user authorization required"
            return 401, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}, {
                "status": "unauthenticated", "errors": [{"message": message}]}
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

    # -- driving imports ----------------------------------------------------------------------

    def create_import(self, *, strand: bool = False, lose: Iterable[str] = (), at: datetime | None = None,
                      import_type: str = "instructure_csv", **options: Any) -> int:
        """A new import, announced (sis_batch_created), then `created` in the same request and
        millisecond, unless `strand` leaves it in initializing for good. `options`: batch_mode,
        batch_mode_term_id, change_threshold, diffing_data_set_identifier, skip_deletes, ..."""
        at = at or self.clock()
        with self._lock:
            self._next_id += 1
            sis = SimImport(self._next_id, at, {
                "batch_mode": False, "batch_mode_term_id": None, "multi_term_batch_mode": False,
                "override_sis_stickiness": False, "add_sis_stickiness": False, "clear_sis_stickiness": False,
                "diffing_data_set_identifier": None, "diffing_remaster": False, "diffed_against_import_id": None,
                "diffing_drop_status": None, "skip_deletes": False, "change_threshold": None,
                "diff_row_count_threshold": None, **options}, updated_at=at, data={"import_type": import_type},
                request_id=self._hex(8, 4, 4, 4, 12), lose=set(lose))
            self.imports[sis.id] = sis
        self._announce(sis, "initializing", at)
        if not strand:
            self.advance(sis.id, "created", at=at)
        return sis.id

    def advance(self, sis_id: int, state: str, *, at: datetime | None = None, lose: bool = False,
                counts: dict[str, int] | None = None, errors: Iterable[Any] | None = None,
                warnings: Iterable[Any] | None = None) -> None:
        """One state change, as Canvas makes it (ValueError for one it cannot make); announced
        unless silent (cleanup_batch) or `lose`."""
        at = at or self.clock()
        with self._lock:
            sis = self.imports[sis_id]
            if state not in NEXT.get(sis.workflow_state, ()):
                raise ValueError(f"import {sis_id} cannot go from {sis.workflow_state} to {state}")
            if state == "importing" and (running := self.running()) is not None:
                raise ValueError(f"import {sis_id} cannot start: import {running} is "
                                 f"{self.imports[running].workflow_state} and Canvas runs one import per root "
                                 "account at a time")
            sis.workflow_state, sis.updated_at = state, at
            if state == "importing":
                sis.started_at, sis.progress = at, 0
            elif state == "cleanup_batch":
                sis.progress = 90
            elif state in IMPORT_ENDS:
                self._finish(sis, state, at, counts, errors, warnings)
        if state not in SILENT:
            self._announce(sis, state, at, lose=lose)

    def running(self) -> int | None:
        """The import that holds the root account's one running slot (importing or cleanup_batch)."""
        if not self.one_import_at_a_time:
            return None
        with self._lock:
            return next((i.id for i in self.imports.values() if i.workflow_state in RUNNING), None)

    def start_next(self, *, at: datetime | None = None) -> int | None:
        """What Canvas's job does when nothing runs: the oldest `created` import starts importing
        (`initializing` ones never run and hold nobody up). None when one runs or none waits."""
        with self._lock:
            if self.running() is not None:
                return None
            waiting = sorted((i for i in self.imports.values() if i.workflow_state == "created"),
                             key=lambda i: (i.created_at, i.id))
            if not waiting:
                return None
            self.advance(waiting[0].id, "importing", at=at)
            return waiting[0].id

    def run(self, sis_id: int, outcome: str = "imported", **details: Any) -> None:
        """importing, then (batch mode) cleanup_batch, then `outcome`; `details` go to the end."""
        self.advance(sis_id, "importing")
        if self.imports[sis_id].options.get("batch_mode"):
            self.advance(sis_id, "cleanup_batch")
        self.advance(sis_id, outcome, **details)

    def abort(self, sis_id: int, how: str = "api", *, at: datetime | None = None, deletes: int = 250) -> None:
        """Silently (no Live Event). `api`: PUT .../abort, any unfinished import, updated_at set, no
        ended_at. `all_pending`: as abort_all_pending, initializing/created only, progress 100,
        updated_at untouched. `change_threshold`: batch mode refusing, in cleanup_batch (after the
        whole import has run; from importing it passes through cleanup_batch first, silently as
        ever), to delete `deletes` enrollments: ended_at, counts and statistics as a run's, and the
        why is a warning with no file."""
        at = at or self.clock()
        with self._lock:
            sis = self.imports[sis_id]
            allowed = {"api": NOT_COMPLETED, "all_pending": NOT_STARTED,
                       "change_threshold": ("importing", "cleanup_batch")}[how]
            if sis.workflow_state not in allowed:
                raise ValueError(f"import {sis_id} in {sis.workflow_state} cannot be aborted by {how}")
            if how == "change_threshold":
                threshold = sis.options.get("change_threshold") or 10
                sis.options.update(batch_mode=True, change_threshold=threshold)
                if sis.workflow_state == "importing":
                    self.advance(sis_id, "cleanup_batch", at=at)
                warning = [None, f"{deletes} enrollments would be deleted and exceeds the set threshold of "
                                 f"{threshold}%"]
                self._finish(sis, "aborted", at, None, (), [warning])
            sis.workflow_state = "aborted"
            if how == "all_pending":
                sis.progress = 100
                return
            sis.updated_at = at

    def abort_all_pending(self, *, at: datetime | None = None) -> list[int]:
        with self._lock:
            pending = [i.id for i in self.imports.values() if i.workflow_state in NOT_STARTED]
            for sis_id in pending:
                self.abort(sis_id, "all_pending", at=at)
            return pending

    def restore(self, sis_id: int, *, partial: bool = False, finish: bool = True) -> None:
        """PUT .../restore_states: restoring, then (unless not `finish`) restored or partially_restored."""
        self.advance(sis_id, "restoring")
        if finish:
            self.advance(sis_id, "partially_restored" if partial else "restored")

    def lose(self, sis_id: int, *states: str) -> None:
        """The events of `states` for this import will be dropped inside Canvas, never delivered."""
        with self._lock:
            self.imports[sis_id].lose.update(states)

    def sis_import(self, sis_id: int) -> dict[str, Any]:
        with self._lock:
            return self.imports[sis_id].as_json()

    # -- internals ----------------------------------------------------------------------------

    def _hex(self, *sizes: int) -> str:
        return "-".join("".join(self._rng.choice("0123456789abcdef") for _ in range(n)) for n in sizes)

    def _finish(self, sis: SimImport, state: str, at: datetime, counts: dict[str, int] | None,
                errors: Iterable[Any] | None, warnings: Iterable[Any] | None) -> None:
        sis.ended_at = at
        sis.progress = 100 if state != "failed" else sis.progress
        default_errors = [["enrollments.csv", "Unknown course id CRS-404 referenced in enrollment"]]
        default_warnings = [["users.csv", "user u-17 has already claimed login jdoe, skipping"]]
        sis.errors += [list(e) for e in (errors if errors is not None else
                                         default_errors if state == "failed_with_messages" else ())]
        sis.warnings += [list(w) for w in (warnings if warnings is not None else
                                           default_warnings if state == "imported_with_messages" else ())]
        n = {k: 0 for k in COUNT_KEYS}
        if state != "failed":
            n.update(users=self._rng.randint(5, 400), courses=self._rng.randint(1, 40), terms=1)
            n.update(sections=n["courses"], enrollments=n["users"] * 2)
        n.update(counts or {}, error_count=len(sis.errors), warning_count=len(sis.warnings))
        created = {"Course": n["courses"], "CourseSection": n["sections"], "Pseudonym": n["users"],
                   "Enrollment": n["enrollments"], "EnrollmentTerm": n["terms"]}
        deleted = {"Course": n["batch_courses_deleted"], "CourseSection": n["batch_sections_deleted"],
                   "Enrollment": n["batch_enrollments_deleted"]}
        stats = {t: {"created": created.get(t, 0), "concluded": 0, "deleted": deleted.get(t, 0), "restored": 0}
                 for t in STAT_TYPES}
        total = sum(v for s in stats.values() for v in s.values())
        supplied = [k for k, key in (("term", "terms"), ("course", "courses"), ("section", "sections"),
                                     ("user", "users"), ("enrollment", "enrollments")) if n[key]]
        sis.data.update(supplied_batches=supplied, counts=n, statistics={"total_state_changes": total, **stats})
        if sis.errors or sis.warnings:
            self._attachment_id += 1
            name = f"sis_errors_attachment_{sis.id}.csv"
            sis.errors_attachment = {
                "id": self._attachment_id, "uuid": self._hex(40), "display_name": name, "filename": name,
                "content-type": "text/csv", "size": 80 * (len(sis.errors) + len(sis.warnings)),
                "url": f"https://{self.hostname}/files/{self._attachment_id}/download?download_frd=1&verifier="
                       f"{self._hex(40)}",
                "created_at": api_time(at), "updated_at": api_time(at), "locked": False, "hidden": False}

    def _announce(self, sis: SimImport, state: str, at: datetime, *, lose: bool = False) -> None:
        name = "sis_batch_created" if state == "initializing" else "sis_batch_updated"
        metadata: dict[str, Any] = {
            "root_account_uuid": self.root_account_uuid, "root_account_id": self.root_account_id,
            "root_account_lti_guid": f"{self.root_account_uuid}:canvas-lms"}
        if state in NOT_STARTED:  # the creating API request
            metadata.update({
                "user_login": "sis-uploader", "user_account_id": self.root_account_id, "user_sis_id": None,
                "user_id": "10000000000042", "time_zone": "America/Chicago", "developer_key_id": "10000000000007",
                "context_type": "Account", "context_id": self.root_account_id, "context_sis_source_id": None,
                "context_account_id": self.root_account_id, "context_role": "AccountAdmin",
                "request_id": sis.request_id, "session_id": None, "hostname": self.hostname, "http_method": "POST",
                "user_agent": "sis-uploader/1.0 python-requests/2.34", "client_ip": "192.0.2.10",
                "url": f"https://{self.hostname}/api/v1/accounts/self/sis_imports.json?access_token="
                       f"{UPLOADER_URL_TOKEN}&import_type={sis.data['import_type']}&extension=csv",
                "referrer": None})
        metadata.update({"producer": "canvas", "event_name": name, "event_time": event_time(at)})
        if state not in NOT_STARTED:  # a background job
            metadata.update(job_id=str(10000000000000 + self._rng.randint(1, 999999)),
                            job_tag="SisBatch#restore_states" if state in ("restoring", *RESTORE_ENDS)
                            else "SisBatch#process")
        if self.compact_events:
            metadata = {k: v for k, v in metadata.items() if v is not None}
        body = {"sis_batch_id": str(sis.id), "account_id": "1", "workflow_state": state}
        event = {"metadata": metadata, "body": body}
        with self._lock:
            lost = lose or state in sis.lose
            (self.lost if lost else self.events).append(event)
        if not lost and self.on_event is not None:
            self.on_event(event)
