"""The Canvas simulator behaves like Canvas's SIS Import API (as Canvas's source and API docs tell
it) and announces its imports' changes as Live Events shaped like Canvas's: one import per root
account at a time, job events without a host, the threshold abort in cleanup. Most tests call
`handle` directly; one goes over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from local.canvas_simulator import CanvasSimulator
from tests.factories import CREATED_EXAMPLE

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=timezone.utc)
TOKEN = "simulator-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Host": "canvas.test:443"}
EVENT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOB_KEYS = {"root_account_uuid", "root_account_id", "root_account_lti_guid", "producer", "event_name", "event_time",
            "job_id", "job_tag"}


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sim(clock):
    events: list[dict] = []
    simulator = CanvasSimulator(token=TOKEN, clock=clock, on_event=events.append, seed=7)
    simulator.delivered = events
    return simulator


def get(sim: CanvasSimulator, target: str, headers: dict | None = None):
    status, out, body = sim.handle("GET", target, AUTH if headers is None else headers)
    return status, out, json.loads(body) if out["Content-Type"].startswith("application/json") else body.decode()


def ids(payload: dict) -> list[int]:
    return [i["id"] for i in payload["sis_imports"]]


# -- the API ------------------------------------------------------------------------------------

def test_created_since_and_before_are_strict_on_created_at_at_full_precision(sim, clock):
    at_t0 = sim.create_import()  # 12:00:00.000
    clock.tick(milliseconds=400)
    sub_second = sim.create_import()  # 12:00:00.400, shown as 12:00:00Z
    clock.tick(seconds=1)
    later = sim.create_import()  # 12:00:01.400
    assert sim.sis_import(sub_second)["created_at"] == "2031-05-04T12:00:00Z"
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?created_since=2031-05-04T12:00:00Z")
    assert ids(page) == [later, sub_second]  # strictly after: the import at exactly 12:00:00 is out
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?created_before=2031-05-04T12:00:01.400Z")
    assert ids(page) == [sub_second, at_t0]
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?created_since=2031-05-04T12:00:01%2B00:00")
    assert ids(page) == [later]


def test_created_since_never_looks_at_updated_at(sim, clock):
    old = sim.create_import()
    clock.tick(hours=1)
    sim.run(old, "imported")  # updated an hour later
    _, _, page = get(sim, "/api/v1/accounts/1/sis_imports?created_since=2031-05-04T12:30:00Z")
    assert page == {"sis_imports": []}


def test_per_page_and_link_paging_newest_first(sim, clock):
    made = []
    for _ in range(25):
        made.append(sim.create_import())
        clock.tick(seconds=3)
    status, headers, page = get(sim, "/api/v1/accounts/self/sis_imports")
    assert status == 200 and len(page["sis_imports"]) == 10  # default per_page
    assert ids(page) == sorted(made, reverse=True)[:10]
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', headers["Link"]))
    assert set(links) == {"current", "next", "first"}  # never "last": Canvas counts no total
    assert links["next"].startswith("http://canvas.test:443/api/v1/accounts/self/sis_imports?")

    seen, target, pages = [], "/api/v1/accounts/self/sis_imports?created_since=2031-05-04T00:00:00Z&per_page=7", 0
    while target:
        status, headers, page = get(sim, target)
        pages += 1
        seen += ids(page)
        nxt = re.search(r'<([^>]+)>; rel="next"', headers["Link"])
        target = urlsplit(nxt.group(1))._replace(scheme="", netloc="").geturl() if nxt else None
        if nxt:
            assert "created_since=2031-05-04T00%3A00%3A00Z" in nxt.group(1)  # the query travels on
    assert seen == sorted(made, reverse=True) and pages == 4
    assert 'rel="prev"' in headers["Link"]
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?per_page=500")
    assert len(page["sis_imports"]) == 25  # capped at 100, which is more than there are
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?per_page=100&page=2")
    assert page == {"sis_imports": []}


def test_workflow_state_filter_is_dropped_when_every_value_is_invalid(sim):
    done = sim.create_import()
    sim.run(done, "imported")
    pending = sim.create_import()
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?workflow_state[]=imported")
    assert ids(page) == [done]
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports?workflow_state[]=finished&workflow_state[]=bogus")
    assert ids(page) == [pending, done]


def test_importing_lists_only_importing_and_cleanup_batch(sim):
    created = sim.create_import()
    running = sim.create_import()
    sim.advance(running, "importing")
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports/importing")
    assert ids(page) == [running]
    sim.advance(running, "imported")
    cleaning = sim.create_import(batch_mode=True)
    sim.abort(created)
    sim.advance(cleaning, "importing")
    sim.advance(cleaning, "cleanup_batch")
    _, _, page = get(sim, "/api/v1/accounts/self/sis_imports/importing")
    assert ids(page) == [cleaning]


def test_one_import_runs_at_a_time_and_the_next_waits_in_created(sim, clock):
    stranded = sim.create_import(strand=True)  # never runs, holds nobody up
    clock.tick(minutes=1)
    long = sim.create_import(batch_mode=True)
    clock.tick(minutes=1)
    queued = [sim.create_import() for _ in range(3)]
    assert sim.start_next() == long
    clock.tick(hours=2)
    sim.advance(long, "cleanup_batch")  # still holds the slot
    for waiting in queued:
        with pytest.raises(ValueError, match=f"import {long} is cleanup_batch and Canvas runs one import per root"):
            sim.advance(waiting, "importing")
        assert sim.sis_import(waiting)["workflow_state"] == "created"
    assert sim.start_next() is None
    clock.tick(minutes=10)
    sim.advance(long, "imported")
    assert sim.start_next() == queued[0]  # the oldest upload first
    assert sim.sis_import(queued[0])["started_at"] == "2031-05-04T14:12:00Z"
    with pytest.raises(ValueError, match="one import per root account"):
        sim.advance(queued[2], "importing")  # not before the one ahead ends
    sim.abort(queued[0])  # an API abort frees the slot too
    assert sim.start_next() == queued[1]
    assert sim.sis_import(stranded)["workflow_state"] == "initializing"


def test_the_rule_can_be_lifted_for_tests_of_overlapping_timing(clock):
    sim = CanvasSimulator(token=TOKEN, clock=clock, one_import_at_a_time=False)
    first, second = sim.create_import(), sim.create_import()
    sim.advance(first, "importing")
    sim.advance(second, "importing")
    assert {sim.sis_import(n)["workflow_state"] for n in (first, second)} == {"importing"}


def test_account_self_by_id_unknown_ids_and_tokens(sim):
    status, headers, account = get(sim, "/api/v1/accounts/self")
    assert status == 200 and account["id"] == 1 and account["uuid"] == sim.root_account_uuid
    assert len(sim.root_account_uuid) == 40
    assert get(sim, "/api/v1/accounts/1")[2] == account
    assert get(sim, "/api/v1/accounts/self/sis_imports/424242")[0] == 404
    assert get(sim, "/api/v1/accounts/77/sis_imports")[0] == 404
    status, headers, body = get(sim, "/api/v1/accounts/self", {"Authorization": "Bearer nope"})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and "X-Request-Cost" in headers
    assert get(sim, "/api/v1/accounts/self", {})[0] == 401


def test_throttling_like_canvas_and_deterministic(clock):
    sim = CanvasSimulator(token=TOKEN, clock=clock, throttle_every=3)
    answers = [get(sim, "/api/v1/accounts/self") for _ in range(6)]
    assert [a[0] for a in answers] == [200, 200, 403, 200, 200, 403]
    status, headers, body = answers[2]
    assert body == "403 Forbidden (Rate Limit Exceeded)\n" and headers["X-Rate-Limit-Remaining"] == "0.0"
    assert "X-Request-Cost" not in headers  # request_throttle.rb leaves it out of a throttled answer
    for status, headers, _ in answers[:2]:
        assert float(headers["X-Request-Cost"]) > 0 and 0 < float(headers["X-Rate-Limit-Remaining"]) <= 600
    assert sim.requests == 6 and sim.throttled == 2

    def run(seed):
        s = CanvasSimulator(token=TOKEN, clock=clock, throttle_probability=0.3, seed=seed)
        return [get(s, "/api/v1/accounts/self")[0] for _ in range(40)]

    assert run(5) == run(5) and 403 in run(5)
    # The quota is the token's: without a good token the answer is 401, never a throttled 403.
    always = CanvasSimulator(token=TOKEN, clock=clock, throttle_every=1)
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert [get(always, "/api/v1/accounts/self", headers)[0] for _ in range(5)] == [401] * 5
    assert get(always, "/api/v1/accounts/self")[0] == 403
    # An import's first reads by id throttled, and no other request: what the notifier asks when it ends.
    school = CanvasSimulator(token=TOKEN, clock=clock)
    sis_id = school.school_import(clock(), throttle_reads=2)
    assert get(school, "/api/v1/accounts/self/sis_imports")[0] == 200
    assert [get(school, f"/api/v1/accounts/self/sis_imports/{sis_id}")[0] for _ in range(3)] == [403, 403, 200]
    forced = CanvasSimulator(token=TOKEN, clock=clock, throttle_status=429)
    forced.throttle_next(1)
    assert get(forced, "/api/v1/accounts/self")[0] == 429 and get(forced, "/api/v1/accounts/self")[0] == 200


def test_over_http_on_loopback(clock):
    with CanvasSimulator(token=TOKEN, clock=clock) as sim:
        sim.create_import()
        request = urllib.request.Request(f"{sim.base_url}/api/v1/accounts/self/sis_imports?per_page=1",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["sis_imports"][0]["workflow_state"] == "created"
            assert f"<{sim.base_url}/api/v1/accounts/self/sis_imports?" in answer.headers["Link"]
            assert answer.headers["X-Request-Cost"] and answer.headers["X-Rate-Limit-Remaining"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{sim.base_url}/api/v1/accounts/self", timeout=5)
        assert refused.value.code == 401


# -- the SisImport JSON -------------------------------------------------------------------------

ALWAYS = {"id", "created_at", "started_at", "ended_at", "updated_at", "progress", "workflow_state", "data",
          "batch_mode", "batch_mode_term_id", "multi_term_batch_mode", "override_sis_stickiness",
          "add_sis_stickiness", "clear_sis_stickiness", "diffing_data_set_identifier", "diffing_remaster",
          "diffed_against_import_id", "diffing_drop_status", "skip_deletes", "change_threshold",
          "diff_row_count_threshold"}


def test_sis_import_json_through_a_failure(sim, clock):
    n = sim.create_import()
    created = sim.sis_import(n)
    assert set(created) == ALWAYS  # no processing_errors/warnings/errors_attachment while empty
    assert created["data"] == {"import_type": "instructure_csv"} and created["started_at"] is None
    clock.tick(seconds=5)
    sim.advance(n, "importing")
    clock.tick(seconds=90)
    sim.advance(n, "failed_with_messages", errors=[["enrollments.csv", f"bad row {i}"] for i in range(30)])
    failed = sim.sis_import(n)
    assert failed["started_at"] == "2031-05-04T12:00:05Z" and failed["ended_at"] == "2031-05-04T12:01:35Z"
    assert failed["progress"] == 100 and failed["data"]["counts"]["error_count"] == 30
    assert {"accounts", "terms", "courses", "sections", "users", "enrollments", "warning_count"} <= set(
        failed["data"]["counts"])
    assert failed["data"]["statistics"]["Enrollment"].keys() == {"created", "concluded", "deleted", "restored"}
    assert len(failed["processing_errors"]) == 25 and failed["processing_errors"][24] == [
        "and 6 more errors that were not included", "Download the error file to see all errors."]
    assert "processing_warnings" not in failed
    assert "verifier=" in failed["errors_attachment"]["url"]


def test_a_silent_abort_all_pending_leaves_updated_at(sim, clock):
    stranded = sim.create_import(strand=True)
    queued = sim.create_import()
    before = sim.sis_import(stranded)["updated_at"]
    delivered = len(sim.delivered)
    clock.tick(hours=3)
    assert sorted(sim.abort_all_pending()) == [stranded, queued]
    aborted = sim.sis_import(stranded)
    assert aborted["workflow_state"] == "aborted" and aborted["progress"] == 100
    assert aborted["updated_at"] == before and aborted["ended_at"] is None
    assert len(sim.delivered) == delivered and not sim.lost  # no Live Event at all


def test_api_abort_and_change_threshold_abort(sim, clock):
    running = sim.create_import()
    sim.advance(running, "importing")
    clock.tick(minutes=2)
    sim.abort(running)  # PUT .../abort: updated_at set, no ended_at
    assert sim.sis_import(running)["updated_at"] == "2031-05-04T12:02:00Z"
    assert sim.sis_import(running)["ended_at"] is None

    batch = sim.create_import(batch_mode=True, change_threshold=5)
    sim.advance(batch, "importing")
    clock.tick(minutes=50)
    sim.advance(batch, "cleanup_batch")  # the whole import has run; cleanup refuses to delete
    clock.tick(seconds=20)
    sim.abort(batch, "change_threshold", deletes=412)
    aborted = sim.sis_import(batch)
    assert aborted["workflow_state"] == "aborted" and aborted["data"]["counts"]["error_count"] == 0
    assert aborted["processing_warnings"] == [
        [None, "412 enrollments would be deleted and exceeds the set threshold of 5%"]]
    assert aborted["data"]["counts"]["warning_count"] == 1 and aborted["data"]["counts"]["users"] > 0
    assert aborted["data"]["counts"]["batch_enrollments_deleted"] == 0  # it refused
    assert aborted["data"]["statistics"]["Enrollment"]["created"] == aborted["data"]["counts"]["enrollments"]
    assert (aborted["started_at"], aborted["ended_at"], aborted["updated_at"]) == (
        "2031-05-04T12:02:00Z", "2031-05-04T12:52:20Z", "2031-05-04T12:52:20Z")
    assert aborted["progress"] == 100 and "verifier=" in aborted["errors_attachment"]["url"]
    with pytest.raises(ValueError):
        sim.abort(batch)  # already ended
    assert all(e["body"]["workflow_state"] not in ("aborted", "cleanup_batch") for e in sim.delivered)

    direct = sim.create_import(batch_mode=True, change_threshold=5)
    sim.advance(direct, "importing")
    clock.tick(minutes=5)
    sim.abort(direct, "change_threshold")  # from importing: through cleanup_batch, silently
    assert sim.sis_import(direct)["ended_at"] == "2031-05-04T12:57:20Z"
    assert sim.sis_import(direct)["processing_warnings"][0][0] is None
    assert sim.running() is None
    with pytest.raises(ValueError, match="cannot be aborted by change_threshold"):
        sim.abort(sim.create_import(), "change_threshold")  # not before it has run


def test_rows_with_no_file_are_null_in_the_json(sim):
    n = sim.create_import(multi_term_batch_mode=True)
    sim.advance(n, "importing")
    sim.advance(n, "failed_with_messages", errors=[[None, "Terms not found: T-9"], ["users.csv", "bad row"]])
    assert sim.sis_import(n)["processing_errors"] == [[None, "Terms not found: T-9"], ["users.csv", "bad row"]]
    _, _, body = sim.handle("GET", f"/api/v1/accounts/self/sis_imports/{n}", AUTH)
    assert b'[null, "Terms not found: T-9"]' in body


# -- the Live Events ----------------------------------------------------------------------------

def states(events) -> list[str]:
    return [e["body"]["workflow_state"] for e in events]


def test_every_announced_change_is_an_event_and_silent_ones_are_not(sim, clock):
    n = sim.create_import(batch_mode=True)
    clock.tick(seconds=4, milliseconds=321)
    sim.run(n, "imported_with_messages")  # importing, cleanup_batch (silent), the end
    clock.tick(days=1)
    sim.restore(n, partial=True)
    assert states(sim.delivered) == ["initializing", "created", "importing", "imported_with_messages", "restoring",
                                     "partially_restored"]
    created, updated = sim.delivered[0], sim.delivered[1]
    assert created["metadata"]["event_name"] == "sis_batch_created"
    assert {e["metadata"]["event_name"] for e in sim.delivered[1:]} == {"sis_batch_updated"}
    assert created["metadata"]["event_time"] == updated["metadata"]["event_time"] == "2031-05-04T12:00:00.000Z"
    assert sim.delivered[2]["metadata"]["event_time"] == "2031-05-04T12:00:04.321Z"
    for event in sim.delivered:
        assert EVENT_TIME.match(event["metadata"]["event_time"])
        assert event["body"] == {"sis_batch_id": str(n), "account_id": "1",
                                 "workflow_state": event["body"]["workflow_state"]}
        assert event["metadata"]["root_account_uuid"] == sim.root_account_uuid
    # the creating request's context, key for key as Canvas's example; jobs carry none of it
    assert set(created["metadata"]) == set(updated["metadata"]) == set(CREATED_EXAMPLE["metadata"])
    assert created["metadata"]["request_id"] == updated["metadata"]["request_id"]
    assert "access_token=" in created["metadata"]["url"]  # as Canvas sends it: redaction has work to do
    for event in sim.delivered[2:]:
        assert set(event["metadata"]) == JOB_KEYS


def test_a_lost_event_is_not_delivered_and_a_strand_stays_initializing(sim):
    n = sim.create_import(lose={"imported"})
    sim.run(n, "imported")
    assert states(sim.delivered) == ["initializing", "created", "importing"]
    assert states(sim.lost) == ["imported"] and sim.sis_import(n)["workflow_state"] == "imported"
    m = sim.create_import()
    sim.advance(m, "importing", lose=True)
    sim.lose(m, "failed")
    sim.advance(m, "failed")
    assert states(sim.lost) == ["imported", "importing", "failed"]

    stranded = sim.create_import(strand=True)
    assert sim.sis_import(stranded)["workflow_state"] == "initializing"
    assert states(sim.delivered)[-1] == "initializing"


def test_impossible_changes_are_refused(sim):
    n = sim.create_import(strand=True)
    with pytest.raises(ValueError, match="initializing to importing"):
        sim.advance(n, "importing")
    sim.advance(n, "created")
    with pytest.raises(ValueError):
        sim.restore(n)
    with pytest.raises(ValueError):
        sim.advance(n, "aborted")  # aborts go through abort(): they are silent


def test_compact_events_leave_nulls_out(clock):
    events = []
    sim = CanvasSimulator(clock=clock, on_event=events.append, compact_events=True)
    sim.create_import()
    assert None not in events[0]["metadata"].values() and "user_sis_id" not in events[0]["metadata"]


def test_the_control_routes_drive_the_queue_and_the_threshold_abort(clock):
    sim = CanvasSimulator(token=TOKEN, clock=clock, control_key="k")

    def drive(path: str, body: dict | None = None) -> tuple[int, dict]:
        status, _, out = sim.handle("POST", f"/_simulator/{path}", {"X-Simulator-Control": "k"},
                                    json.dumps(body or {}).encode())
        return status, json.loads(out)

    long = drive("imports", {"options": {"batch_mode": True, "change_threshold": 10}, "at": "2031-05-04T09:00:00Z"})[1]
    waiting = drive("imports", {"at": "2031-05-04T10:30:00Z"})[1]
    assert drive("start_next", {"at": "2031-05-04T09:05:00Z"})[1]["id"] == long["id"]
    status, refused = drive(f"imports/{waiting['id']}/advance", {"state": "importing"})
    assert status == 400 and "one import per root account" in refused["error"]
    assert drive("start_next") == (200, {"id": None, "sis_import": None})
    drive(f"imports/{long['id']}/advance", {"state": "cleanup_batch"})
    status, out = drive(f"imports/{long['id']}/abort", {"how": "change_threshold", "deletes": 99})
    assert status == 200 and out["sis_import"]["ended_at"] == "2031-05-04T12:00:00Z"
    assert out["sis_import"]["started_at"] == "2031-05-04T09:05:00Z"
    assert out["sis_import"]["processing_warnings"] == [
        [None, "99 enrollments would be deleted and exceeds the set threshold of 10%"]]
    assert drive("start_next")[1]["sis_import"]["workflow_state"] == "importing"


def test_the_schools_history_is_hourly_ended_unheard_and_of_one_shape(sim, clock):
    from sis_imports.core.unusual import figures_of, shape_of

    last = clock.now - timedelta(hours=4)
    history = sim.history(24, last_at=last)
    assert sim.delivered == [] and sim.lost == []  # before anyone listened: no event, none lost either
    imports = [sim.sis_import(n) for n in history]
    created = [datetime.fromisoformat(i["created_at"].replace("Z", "+00:00")) for i in imports]
    assert created[-1] == last and created == sorted(created)
    assert all(abs((b - a) - timedelta(hours=1)) <= timedelta(minutes=3) for a, b in zip(created, created[1:]))
    assert {i["workflow_state"] for i in imports} == {"imported"} and len({shape_of(i) for i in imports}) == 1
    figures = [figures_of(i) for i in imports]
    assert all(320 <= i["data"]["counts"]["enrollments"] <= 360 for i in imports)
    assert max(f["enrollments_deleted"] for f in figures) < 50  # a handful at most: under the figure's floor
    assert all(0 < f["duration_seconds"] < 300 for f in figures)

    status, _, body = sim.handle("GET", "/api/v1/accounts/self/sis_imports?per_page=100", AUTH)
    assert status == 200 and len(json.loads(body)["sis_imports"]) == 24  # the API lists them as any others


def test_a_school_import_is_announced_timed_then_and_its_deletions_counted(sim, clock):
    from sis_imports.core.unusual import figures_of, shape_of

    earlier = sim.history(2, last_at=clock.now - timedelta(hours=5))
    at = clock.now - timedelta(hours=3)
    sis_id = sim.school_import(at, deleted=4800)
    one = sim.sis_import(sis_id)
    assert shape_of(one) == shape_of(sim.sis_import(earlier[0]))
    assert figures_of(one)["enrollments_deleted"] == 4800 and one["data"]["counts"]["batch_enrollments_deleted"] == 4800
    assert states(sim.delivered) == ["initializing", "created", "importing", "imported"]  # cleanup_batch: silent
    times = [e["metadata"]["event_time"] for e in sim.delivered]
    assert times[0] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z") and times == sorted(times)
    assert times[-1] < clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_the_school_control_routes_and_what_they_refuse(clock):
    sim = CanvasSimulator(token=TOKEN, clock=clock, control_key="k")

    def drive(path: str, body: dict) -> tuple[int, dict]:
        status, _, out = sim.handle("POST", f"/_simulator/{path}", {"X-Simulator-Control": "k"},
                                    json.dumps(body).encode())
        return status, json.loads(out)

    status, out = drive("history", {"imports": 3, "at": "2031-05-04T08:00:00Z", "every_minutes": 1440})
    assert status == 201 and len(out["ids"]) == 3
    assert sim.sis_import(out["ids"][0])["created_at"].startswith("2031-05-02T")  # a day apart, give or take
    assert drive("history", {"imports": 3}) == (400, {"error": "`at` (the last import's creation time) is required"})
    assert drive("history", {"at": "2031-05-04T08:00:00Z", "imports": 0})[1] == {"error": "`imports` must be 1 to 200"}
    assert drive("history", {"at": "2031-05-04T08:00:00Z", "every_minutes": -5})[0] == 400
    status, out = drive("school_import", {"deleted": 7})
    assert status == 201 and out["sis_import"]["data"]["counts"]["batch_enrollments_deleted"] == 7
    assert out["sis_import"]["created_at"] == "2031-05-04T12:00:00Z"  # now, by the simulator's clock
