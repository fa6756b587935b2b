"""The reconcile pass through the real store (moto) against the Canvas simulator on 127.0.0.1:
silent aborts, lost events, stuck imports, the first pass, the races, failures and the token."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from local.canvas_simulator import CanvasSimulator
from sis_imports.core.admission import Admission
from sis_imports.adapters.canvas_api import CanvasApi
from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES
from sis_imports.core.reconcile import event_time
from sis_imports.usecases.reconcile_pass import LIST_OVERLAP_SECONDS, Instance, Reconciler
from sis_imports.adapters.store import BatchStore
from tests.aws_env import TABLE_NAME
from tests.factories import NOW, ROOT_ACCOUNT_UUID, iso

TOKEN = "reconciler-canvas-token-7~SECRETvalueNEVERinLOGS"


class Clock:
    """One clock for Canvas and us: Canvas's times and our reads agree, as NTP makes them."""

    def __init__(self):
        self.now = NOW.replace(microsecond=0) - timedelta(hours=3)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class World:
    """Canvas (the simulator) delivering its Live Events to our ingest core, our store, our reconciler."""

    def __init__(self, aws, clock: Clock, token: str = TOKEN, hostname: str = "oxana.instructure.com"):
        from sis_imports.usecases.ingest import SisBatchIngest

        self.aws, self.clock = aws, clock
        self.store = BatchStore(boto3.client("dynamodb"), TABLE_NAME, clock=clock.epoch)
        self.ingest = SisBatchIngest(self.store, Admission.of(ROOT_ACCOUNT_UUID), clock=clock.epoch)
        self.canvas = CanvasSimulator(token=TOKEN, root_account_uuid=ROOT_ACCOUNT_UUID, clock=clock,
                                      on_event=self.deliver, hostname=hostname)
        self.canvas.start()
        self.api = CanvasApi(self.canvas.base_url, lambda: token, timeout=5, sleep=lambda s: None)
        self.instance = Instance(self.canvas.base_url, self.api)
        self.reconciler = Reconciler(self.store, [self.instance], allowed_root_accounts=frozenset({ROOT_ACCOUNT_UUID}),
                                     lookback_hours=48, stuck_minutes=dict(DEFAULT_STUCK_MINUTES), clock=clock.epoch)
        self.held: list[dict] = []
        self.hold = False

    def deliver(self, event: dict) -> None:
        if self.hold:
            self.held.append(event)
        else:
            self.ingest.ingest(event)

    def release(self) -> None:
        held, self.held = self.held, []
        for event in held:
            self.ingest.ingest(event)

    def reconcile(self) -> dict:
        (summary,) = self.reconciler.run()["instances"]
        return summary

    def alerts(self, notifier) -> list[dict]:
        self.aws.pump_stream(notifier)
        return [a["message"] for a in self.aws.alerts()]

    def state(self, sis_id: int) -> str | None:
        batch = self.store.get(ROOT_ACCOUNT_UUID, str(sis_id))
        return batch.workflow_state.value if batch else None


@pytest.fixture
def world(aws):
    clock = Clock()
    w = World(aws, clock)
    yield w
    w.canvas.stop()


@pytest.fixture
def notifier(handlers_fresh):
    return handlers_fresh["notifier"].handler


def started(world: World, *, lose: tuple[str, ...] = ()) -> int:
    """An import that got as far as importing, its events delivered unless lost."""
    sis_id = world.canvas.create_import(lose=lose)
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing", lose="importing" in lose)
    world.clock.tick(60)
    return sis_id


def test_the_first_pass_records_imports_that_ended_before_it_without_alerting(world, notifier):
    world.hold = True  # a deployment that never heard of last week's imports
    done = started(world)
    world.canvas.advance(done, "failed_with_messages")
    world.held.clear()
    world.hold = False
    tracked = started(world)  # one we are tracking, still running
    summary = world.reconcile()
    assert summary["first_pass"] and summary["ok"]
    assert world.state(done) == "failed_with_messages"
    assert world.alerts(notifier) == []  # last week's failure pages nobody
    world.clock.tick(60)
    world.canvas.advance(tracked, "failed", lose=True)  # its end event lost
    world.clock.tick(60)
    summary = world.reconcile()
    assert not summary["first_pass"]
    (alert,) = world.alerts(notifier)
    assert (alert["sis_batch_id"], alert["workflow_state"], alert["detected_by"]) == (str(tracked), "failed",
                                                                                       "sis_import_api")


def test_a_silent_abort_alerts_within_one_pass(world, notifier):
    world.reconcile()  # the first pass, nothing yet
    sis_id = started(world)
    world.canvas.abort(sis_id, "change_threshold")  # Canvas sends no event for aborted
    world.clock.tick(30)
    summary = world.reconcile()
    assert summary["changes"] == [{"sis_batch_id": str(sis_id), "from": "importing", "to": "aborted"}]
    (alert,) = world.alerts(notifier)
    assert (alert["workflow_state"], alert["outcome"], alert["detected_by"]) == ("aborted", "failure",
                                                                                 "sis_import_api")
    assert alert["history"][-1]["event_name"] == "sis_import_api"


def test_abort_all_pending_leaves_updated_at_older_than_our_last_event_and_still_wins(world, notifier):
    world.reconcile()
    sis_id = world.canvas.create_import()
    world.clock.tick(600)
    world.canvas.abort_all_pending()  # updated_at stays at creation, older than our `created` event? equal
    assert world.canvas.sis_import(sis_id)["updated_at"] <= world.canvas.sis_import(sis_id)["created_at"]
    world.clock.tick(30)
    world.reconcile()
    assert world.state(sis_id) == "aborted"
    assert [a["workflow_state"] for a in world.alerts(notifier)] == ["aborted"]


def test_lost_events_end_in_canvass_real_end_state(world, notifier):
    world.reconcile()
    sis_id = world.canvas.create_import(lose=("initializing", "created", "importing", "imported_with_messages"))
    world.clock.tick(30)
    world.canvas.advance(sis_id, "importing", lose=True)
    world.clock.tick(30)
    world.canvas.advance(sis_id, "imported_with_messages", lose=True)
    world.clock.tick(30)
    summary = world.reconcile()
    assert summary["missed"] == 1 and world.state(sis_id) == "imported_with_messages"
    (alert,) = world.alerts(notifier)
    assert (alert["workflow_state"], alert["outcome"]) == ("imported_with_messages", "warning")


def test_a_stuck_import_alerts_once_per_state_and_ends_normally(world, notifier):
    world.reconcile()
    sis_id = world.canvas.create_import(strand=True)  # left in initializing, as Canvas does
    world.clock.tick(30 * 60)
    assert world.reconcile()["stuck"] == 0
    world.clock.tick(31 * 60)
    assert world.reconcile()["stuck"] == 1
    for _ in range(3):
        world.clock.tick(300)
        assert world.reconcile()["stuck"] == 0  # one alert per batch and state, not one per pass
    (alert,) = world.alerts(notifier)
    assert (alert["type"], alert["workflow_state"], alert["outcome"]) == ("sis_import_stuck", "initializing", "stuck")
    world.canvas.abort(sis_id)
    world.clock.tick(30)
    world.reconcile()
    assert [a["workflow_state"] for a in world.alerts(notifier)] == ["aborted"]


def test_a_long_import_in_cleanup_and_three_queued_behind_it_are_not_stuck_a_stranded_one_is(world, notifier):
    world.clock.tick(-6 * 3600)  # room for a long afternoon before now
    world.reconcile()
    stranded = world.canvas.create_import(strand=True)  # never runs, holds nobody up
    world.clock.tick(60)
    long = world.canvas.create_import(batch_mode=True, batch_mode_term_id="1")
    world.clock.tick(60)
    assert world.canvas.start_next() == long
    queued = []
    for _ in range(3):
        world.clock.tick(10 * 60)
        queued.append(world.canvas.create_import())  # uploads wait in created behind it
    world.clock.tick(2 * 3600 - 30 * 60)
    world.canvas.advance(long, "cleanup_batch")  # after 2 h of importing; no Live Event
    world.clock.tick(120)
    summary = world.reconcile()
    assert summary["changes"] == [{"sis_batch_id": str(long), "from": "importing", "to": "cleanup_batch"}]
    assert (summary["stuck"], summary["queued"]) == (1, 3)
    (alert,) = world.alerts(notifier)  # the stranded one only: 2 h in initializing
    assert (alert["type"], alert["sis_batch_id"], alert["workflow_state"]) == (
        "sis_import_stuck", str(stranded), "initializing")
    world.clock.tick(50 * 60)  # cleanup goes on, within its hour counted from when it began
    summary = world.reconcile()
    assert (summary["stuck"], summary["queued"]) == (0, 3)
    world.canvas.advance(long, "imported")
    for sis_id in queued:  # the queue moves on: each starts when the one ahead ends
        world.clock.tick(30)
        assert world.canvas.start_next() == sis_id
        world.clock.tick(20 * 60)
        assert world.reconcile()["stuck"] == 0
        world.canvas.advance(sis_id, "imported")
    world.clock.tick(60)
    assert world.reconcile()["stuck"] == 0
    alerts = world.alerts(notifier)
    assert [(a["sis_batch_id"], a["workflow_state"]) for a in alerts] == [
        (str(n), "imported") for n in (long, *queued)]
    assert all(a["type"] != "sis_import_stuck" for a in alerts)
    assert world.state(stranded) == "initializing"  # and no second alert for it


def test_a_hung_queue_is_reported_once_per_import_counted_from_when_the_one_ahead_ended(world, notifier):
    world.clock.tick(-6 * 3600)
    world.reconcile()
    long = world.canvas.create_import()
    world.canvas.start_next()
    world.clock.tick(60)
    queued = world.canvas.create_import()
    world.clock.tick(3 * 3600)
    world.canvas.advance(long, "imported")  # and Canvas's job never starts the next one
    world.clock.tick(59 * 60)
    assert world.reconcile()["stuck"] == 0  # 4 h since its upload, 59 min since the queue could move
    world.clock.tick(2 * 60)
    assert world.reconcile()["stuck"] == 1
    world.clock.tick(3600)
    assert world.reconcile()["stuck"] == 0
    stuck = [a for a in world.alerts(notifier) if a["type"] == "sis_import_stuck"]
    assert [(a["sis_batch_id"], a["workflow_state"]) for a in stuck] == [(str(queued), "created")]


def test_a_live_event_for_a_later_state_between_the_read_and_the_write_wins(world, notifier, monkeypatch):
    world.reconcile()
    sis_id = world.canvas.create_import(lose=("created",))
    world.hold = True
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing")
    listing = world.api.sis_imports_created_since

    def read_then_race(*args, **kwargs):
        answers = list(listing(*args, **kwargs))  # Canvas read: importing
        world.clock.tick(2)
        world.canvas.advance(sis_id, "imported")  # the import ends after the read...
        world.release()  # ...and its live events land before the reconciler writes
        return iter(answers)

    monkeypatch.setattr(world.api, "sis_imports_created_since", read_then_race)
    world.reconcile()
    assert world.state(sis_id) == "imported"  # the API's older answer joined the history only
    (alert,) = world.alerts(notifier)
    assert (alert["workflow_state"], alert["detected_by"]) == ("imported", "live_event")


def test_a_second_pass_changes_nothing_and_writes_nothing(world, notifier):
    world.reconcile()
    for outcome in ("imported", "failed"):
        sis_id = started(world)
        world.canvas.advance(sis_id, outcome)
    world.canvas.abort(started(world))
    open_one = started(world)
    world.clock.tick(60)
    first = world.reconcile()
    assert first["corrected"] == 1  # the abort
    calls: list[str] = []
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", lambda model, **kw: calls.append(model.name))
    world.store._client = boto3.client("dynamodb")  # a client that reports its calls
    world.clock.tick(300)
    second = world.reconcile()
    assert (second["corrected"], second["stuck"], second["changes"]) == (0, 0, [])
    # The marker (any figures owed), one query of the (keys-only) open-batches index and one read of those
    # items, and one write: the pass's high-water mark (the next pass lists from it); no batch written.
    assert calls == ["GetItem", "Query", "BatchGetItem", "UpdateItem"]
    assert world.state(open_one) == "importing"


def test_a_failed_pass_changes_nothing_and_is_counted(aws, notifier, captured_logs):
    clock = Clock()
    world = World(aws, clock, token="a-wrong-token-SECRET")
    try:
        world.hold = True
        sis_id = started(world)
        world.canvas.abort(sis_id)
        summary = world.reconcile()
        assert not summary["ok"] and "CanvasUnauthorized" in summary["error"]
        assert aws.scan() == []
        assert "reconcile pass failed" in captured_logs.getvalue()
        assert "a-wrong-token-SECRET" not in captured_logs.getvalue() + json.dumps(summary)
    finally:
        world.canvas.stop()


def test_throttling_is_waited_out_and_the_token_never_logged(world, notifier, captured_logs):
    world.canvas.throttle_next(2)
    summary = world.reconcile()
    assert summary["ok"] and summary["throttled"] == 2 and summary["requests"] >= 4
    assert TOKEN not in captured_logs.getvalue() and TOKEN.split("~")[1] not in captured_logs.getvalue()


def test_an_instance_of_another_root_account_is_refused(world):
    world.reconciler._allowed = frozenset({"SomeOtherUuid"})
    summary = world.reconcile()
    assert not summary["ok"] and "not in SIS_ROOT_ACCOUNTS" in summary["error"]


def test_the_handler_builds_from_the_environment(aws, monkeypatch):
    from sis_imports import wiring

    secret = boto3.client("secretsmanager").create_secret(Name="canvas-api-token", SecretString=TOKEN)
    with CanvasSimulator(token=TOKEN, root_account_uuid=ROOT_ACCOUNT_UUID) as canvas:
        monkeypatch.setenv("CANVAS_INSTANCES", json.dumps([{"url": canvas.base_url, "token_secret": secret["ARN"]}]))
        monkeypatch.setenv("STUCK_MINUTES", "importing=30")
        reconciler = wiring.reconciler()
        (summary,) = reconciler.run()["instances"]
        assert summary["ok"] and summary["root_account_uuid"] == ROOT_ACCOUNT_UUID
    monkeypatch.setenv("CANVAS_INSTANCES", "not json")
    with pytest.raises(wiring.ConfigError, match="CANVAS_INSTANCES"):
        wiring.reconciler()
    monkeypatch.setenv("CANVAS_INSTANCES", "[]")
    monkeypatch.setenv("STUCK_MINUTES", "failed=5")
    with pytest.raises(wiring.ConfigError, match="end state"):
        wiring.reconciler()
    assert iso(NOW)  # the clock of these tests is relative to now


def test_a_cold_container_reads_before_it_writes_and_lists_from_the_last_pass(world):
    """Issue 18: a container that remembers nothing asks our table (BatchGetItem, two attributes) instead of
    trying one conditional write per import Canvas lists, and lists from the last pass's high-water mark."""
    world.reconcile()
    for n in range(150):
        sis_id = started(world)
        world.canvas.advance(sis_id, "imported" if n % 3 else "failed")
    world.clock.tick(600)
    first = world.reconcile()
    assert first["corrected"] == 0  # every end came as a Live Event
    first_start = world.clock.epoch()

    def cold_pass() -> tuple[dict, list[str]]:
        cold = Reconciler(world.store, [Instance(world.canvas.base_url, world.api)],
                          allowed_root_accounts=frozenset({ROOT_ACCOUNT_UUID}), lookback_hours=48,
                          stuck_minutes=dict(DEFAULT_STUCK_MINUTES), clock=world.clock.epoch)
        calls: list[str] = []
        session = boto3.Session()
        session.events.register("before-call.dynamodb", lambda model, **kw: calls.append(model.name))
        world.store._client = session.client("dynamodb")
        (summary,) = cold.run()["instances"]
        return summary, [c for c in calls if c in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")] + [
            f"{calls.count('BatchGetItem')} BatchGetItem"]

    world.clock.tick(300)
    # No high-water mark (a marker from before it existed): the whole window is listed, and compared first.
    world.aws.dynamodb.update_item(TableName=TABLE_NAME, Key=world.store.key(ROOT_ACCOUNT_UUID, "#reconciler"),
                                   UpdateExpression="REMOVE listed_through")
    summary, writes = cold_pass()
    assert (summary["corrected"], summary["changes"], summary["seen"]) == (0, [], 150)
    assert writes == ["UpdateItem", "2 BatchGetItem"]  # the high-water mark alone; 150 ended, 100 keys a request
    marked = world.clock.epoch()
    world.clock.tick(300)
    summary, writes = cold_pass()
    # Listed from the last pass's start less the overlap, not 48 hours back: nothing was created since.
    assert summary["listed_from"] == event_time(marked - LIST_OVERLAP_SECONDS) and summary["seen"] == 0
    assert writes == ["UpdateItem", "0 BatchGetItem"] and first_start < marked


def test_an_import_created_before_the_high_water_mark_is_still_followed(world):
    """The listing starts at the last pass; what was open then is in the open-batches index and is fetched by id,
    so its silent end (an abort) is still found."""
    world.reconcile()
    sis_id = started(world, lose=("initializing", "created", "importing"))  # we never heard of it
    world.reconcile()  # listed: written open
    world.clock.tick(3 * 3600)
    world.reconcile()
    world.canvas.abort(sis_id)
    world.clock.tick(300)
    summary = world.reconcile()
    assert summary["listed_from"] > iso(NOW - timedelta(hours=10))  # not the 48-hour window
    assert world.state(sis_id) == "aborted"


def test_the_schedule_names_one_instance_per_invocation_and_an_unknown_one_is_refused(world):
    """Issue 18's fan-out: the event names the instance; the pass reads that one alone."""
    other = Instance("https://other.example.edu", world.api)  # never asked: its pass would fail loudly
    world.reconciler.instances.append(other)
    (summary,) = world.reconciler.run(only=world.canvas.base_url + "/")["instances"]
    assert summary["ok"] and summary["url"] == world.canvas.base_url
    (refused,) = world.reconciler.run(only="https://elsewhere.example.edu")["instances"]
    assert not refused["ok"] and refused["error"] == "not one of CANVAS_INSTANCES"
    assert [s["url"] for s in world.reconciler.run()["instances"]] == [world.canvas.base_url, other.url]


def test_a_pass_says_how_many_batches_were_open_in_the_table_when_it_began(world):
    """`open` in the pass's summary (its `reconcile pass` log line) is what the ImportsOpen metric counts, and
    is there without the detailed metrics: the batches not in an end state in our table as the pass began."""
    lost = started(world)
    world.canvas.advance(lost, "imported", lose=True)  # Canvas ended it; our table still has it importing
    ended = started(world)  # Canvas runs one import at a time: this one after the first
    world.canvas.advance(ended, "imported")  # its Live Event ends it in the table
    waiting = world.canvas.create_import()  # created, as its Live Events said
    world.clock.tick(60)
    summary = world.reconcile()
    assert summary["open"] == 2  # lost and waiting: counted before the pass put `lost` right
    assert (world.state(lost), world.state(ended), world.state(waiting)) == ("imported", "imported", "created")
    assert world.reconcile()["open"] == 1
