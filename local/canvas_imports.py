"""The imports of the local Canvas simulator and their lives: created, run, aborted, restored, each
change announced as the Live Event Canvas would send (or lost), as read in canvas-lms
(app/models/sis_batch.rb). local/canvas_simulator.py serves them over the SIS Import API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

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
    unheard: bool = False  # from before anyone listened (history): its events reach no one and count as none

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


class ImportLives:
    """What Canvas does to imports; CanvasSimulator holds the state (imports, events, clock, lock)."""

    # -- driving imports ----------------------------------------------------------------------

    def create_import(self, *, strand: bool = False, lose: Iterable[str] = (), at: datetime | None = None,
                      import_type: str = "instructure_csv", unheard: bool = False, **options: Any) -> int:
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
                request_id=self._hex(8, 4, 4, 4, 12), lose=set(lose), unheard=unheard)
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

    # -- a school on an hourly rhythm (issue 17's story) ----------------------------------------

    def school_import(self, at: datetime, *, deleted: int = 0, unheard: bool = False, throttle_reads: int = 0) -> int:
        """One of the school's hourly imports, as its SIS uploads it: batch mode for the term, terms,
        courses, sections, users and enrollments (about 340, a little variance), created at `at`, run at
        once (a minute's wait, 2-4 minutes' work, cleanup_batch) to `imported`, deleting `deleted`
        enrollments. Its Live Events are timed then; `unheard`: none at all (history). Its first
        `throttle_reads` reads by id answer 403 Rate Limit Exceeded (the notifier's, when it ends)."""
        sis_id = self.create_import(at=at, unheard=unheard, batch_mode=True, batch_mode_term_id="1")
        if throttle_reads:
            with self._lock:
                self._throttle_reads[sis_id] = throttle_reads
        started = at + timedelta(seconds=self._rng.randint(30, 90))
        ended = started + timedelta(seconds=self._rng.randint(120, 240))
        self.advance(sis_id, "importing", at=started)
        self.advance(sis_id, "cleanup_batch", at=ended - timedelta(seconds=10))
        enrollments = self._rng.randint(325, 355)
        counts = {"terms": 1, "courses": 12, "sections": 14, "users": enrollments // 2, "enrollments": enrollments}
        if deleted:
            counts["batch_enrollments_deleted"] = deleted  # Canvas leaves a zero out
        self.advance(sis_id, "imported", at=ended, counts=counts)
        return sis_id

    def last_created(self) -> datetime | None:
        with self._lock:
            return max((i.created_at for i in self.imports.values()), default=None)

    def history(self, imports: int = 24, *, last_at: datetime, every: timedelta = timedelta(hours=1)) -> list[int]:
        """`imports` of the school's imports, `every` apart (a minute or two of jitter) up to `last_at`,
        ended long before anyone listened: no Live Event, as a new deployment finds a school. A few
        delete a handful of enrollments (students who left), most none."""
        ids = []
        for n in range(imports):
            at = last_at - every * (imports - 1 - n) + timedelta(seconds=self._rng.randint(-90, 90) if n < imports - 1
                                                                   else 0)
            deleted = self._rng.choice((0, 0, 0, 0, 1, 2, 3, 5))
            ids.append(self.school_import(at, deleted=deleted, unheard=True))
        return ids

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
        if sis.unheard:
            return
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
