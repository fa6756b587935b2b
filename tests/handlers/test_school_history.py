"""The school's own history through the real store (moto), the Canvas simulator on 127.0.0.1, the reconciler
and the notifier: issue 17's story with one clock for Canvas and us, moved by the test.

24 hourly imports of about 340 enrollments that a new deployment finds (no Live Event reached it), an
`imported` one that deletes 4,800 enrollments, three silent hours, then an import again.
"""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from local.lambda_context import LambdaContext
from sis_imports.adapters.alert_details import CanvasDetails
from sis_imports.adapters.publisher import AlertPublisher
from sis_imports.core.alert_text import email_text
from sis_imports.core.unusual import shape_of
from sis_imports.usecases.notify import Notifier
from sis_imports.usecases.school_history import HistoryOptions, SchoolHistory
from sis_imports.usecases.unusual_ends import UnusualEnds
from tests.aws_env import TABLE_NAME
from tests.factories import ROOT_ACCOUNT_UUID
from tests.handlers.test_reconciler import TOKEN, Clock, World

HOUR = 3600


@pytest.fixture
def world(aws):
    clock = Clock()
    clock.now -= timedelta(hours=30)
    w = World(aws, clock, hostname="127.0.0.1")
    w.reconciler._history = SchoolHistory(w.store, HistoryOptions())
    w.notifier = Notifier(AlertPublisher(boto3.client("sns"), aws.topic_arn),
                          details=CanvasDetails([(w.canvas.base_url, lambda: TOKEN)]),
                          unusual=UnusualEnds(w.store, sensitivity=5, min_history=10))
    yield w
    w.canvas.stop()


def alerts(world: World) -> list[dict]:
    world.aws.pump_stream(lambda event, context: world.notifier.handle(event, context))
    return [a["message"] for a in world.aws.alerts()]


def run_import(world: World, enrollments: int, deleted: int = 0) -> int:
    sis_id = world.canvas.create_import(batch_mode=True, batch_mode_term_id="T1")
    world.clock.tick(60)
    world.canvas.advance(sis_id, "importing")
    world.clock.tick(240)
    world.canvas.advance(sis_id, "cleanup_batch")
    counts = {"users": 170, "courses": 12, "sections": 12, "terms": 1, "enrollments": enrollments}
    deletions = {"batch_enrollments_deleted": deleted} if deleted else {}  # Canvas leaves a zero out
    world.canvas.advance(sis_id, "imported", counts={**counts, **deletions})
    return sis_id


def hourly_history(world: World, n: int = 24) -> None:
    world.hold = True  # found by the first pass, as a new deployment finds them
    for i in range(n):
        run_import(world, 330 + (i * 7) % 21, deleted=(i * 5) % 13)
        world.clock.tick(HOUR - 300)
    world.held.clear()
    world.hold = False


def test_the_issue_story_unusual_then_missing_then_resumed(world):
    hourly_history(world)
    first = world.reconcile()
    assert first["first_pass"] and first["baseline_ends"] == 24 and first["gaps"] == 0
    assert alerts(world) == []  # what the first pass finds is the baseline

    sis_id = run_import(world, 341, deleted=4800)
    (end,) = alerts(world)
    assert end["sis_batch_id"] == str(sis_id) and end["unusual"] is True
    # Canvas's statistics count the deletions among the state changes (5,336 of them): the deletions explain
    # them, so the end says one thing.
    (anomaly,) = end["anomalies"]
    assert anomaly["figure"] == "enrollments_deleted" and anomaly["value"] == 4800
    assert anomaly["sentence"] == "deleted 4,800 enrollments; usually 0–12 over the last 24 imports"
    text = email_text(end)
    assert text.startswith("Unusual against this school's own imports, though Canvas calls it a success:\n"
                           "  - deleted 4,800 enrollments; usually 0–12 over the last 24 imports\n")
    assert world.store.get(ROOT_ACCOUNT_UUID, str(sis_id)).unusual == ("enrollments_deleted",)
    # Recorded into its baseline by the notifier, before any pass: a long import, created before the last pass
    # began, is never listed again, and its end would otherwise be missing from the school's history.
    kept = world.store.baseline(ROOT_ACCOUNT_UUID, end["details"]["import_shape"]).ends
    assert [e.sis_batch_id for e in kept][-1] == str(sis_id) and kept[-1].figures["enrollments_deleted"] == 4800

    owed = []
    for _ in range(18):  # three silent hours, a pass every 10 minutes
        world.clock.tick(600)
        world.reconcile()
        owed += alerts(world)
    (missing,) = owed
    assert (missing["type"], missing["outcome"]) == ("sis_import_missing", "missing")
    assert missing["usual_interval_seconds"] == HOUR and "learnt from the last 25 imports" in missing["rhythm"]

    back = run_import(world, 335)
    world.clock.tick(600)
    world.reconcile()
    world.clock.tick(600)
    world.reconcile()
    messages = alerts(world)
    assert [(m["type"], m.get("unusual")) for m in messages if m["type"] == "sis_import_finished"] == [
        ("sis_import_finished", False)]  # a routine end again: compared, not flagged
    (resumed,) = [m for m in messages if m["type"] == "sis_import_missing"]
    assert resumed["outcome"] == "resumed" and resumed["sis_batch_id"] == str(back)


def test_too_little_history_makes_no_claim_and_says_how_much(world):
    hourly_history(world, 4)
    world.reconcile()
    run_import(world, 341, deleted=4800)
    (end,) = alerts(world)
    assert end["unusual"] is False and end["anomalies"] == []
    assert end["anomaly_check"] == "too little history: 4 earlier successful imports of this kind, 10 needed"


def test_a_rhythm_write_that_owes_nothing_alerts_nothing_and_a_retry_owes_the_same(world):
    hourly_history(world, 12)
    world.reconcile()
    world.clock.tick(4 * HOUR)
    world.reconcile()
    records = world.aws.new_stream_records()
    rhythm = [r for r in records if r["dynamodb"]["Keys"]["sis_batch_id"]["S"] == "#rhythm"]
    assert rhythm, "the rhythm item is streamed"
    world.notifier.handle({"Records": rhythm}, LambdaContext(function_name="notifier"))
    world.notifier.handle({"Records": rhythm}, LambdaContext(function_name="notifier"))  # Lambda delivers again
    published = [a["message"] for a in world.aws.alerts()]
    assert [m["outcome"] for m in published] == ["missing", "missing"]
    assert published[0]["alert_id"] == published[1]["alert_id"]  # the same id: a subscriber can tell a repeat


def test_the_schools_history_does_not_expire_with_the_batches(world):
    """A batch expires retention_days (30 by default) after its last event (DynamoDB TTL on expires_at); the
    baselines and the rhythm, learnt over weeks of imports, carry no expiry: each keeps its own length."""
    from sis_imports.core.table import TTL_ATTRIBUTE

    hourly_history(world, 12)
    world.reconcile()
    items = world.aws.scan()
    history = [i for i in items if i["sis_batch_id"]["S"].startswith(("#baseline#", "#rhythm"))]
    batches = [i for i in items if "workflow_state" in i]
    assert {i["sis_batch_id"]["S"].split("#")[1] for i in history} == {"baseline", "rhythm"} and len(batches) == 12
    assert all(TTL_ATTRIBUTE in b for b in batches)
    assert [i for i in history if TTL_ATTRIBUTE in i] == []


def test_a_baseline_written_as_text_lines_is_judged_against_and_rewritten_packed(world):
    # A deployed table holds baselines in the earlier format: the ends as text lines, their figures named.
    sis_id = run_import(world, 341, deleted=4800)
    shape = shape_of(world.canvas.sis_import(sis_id))
    ended = int(world.clock.epoch()) - 86_400
    lines = [f"{100 + i} {ended + HOUR * i} {(i * 5) % 13} {330 + (i * 7) % 21} 240" for i in range(12)]
    key = {"root_account_uuid": {"S": ROOT_ACCOUNT_UUID}, "sis_batch_id": {"S": "#baseline#" + shape}}
    client = boto3.client("dynamodb")
    client.put_item(TableName=TABLE_NAME, Item={
        **key, "kind": {"S": "baseline"}, "shape": {"S": shape}, "version": {"N": "12"},
        "figures": {"L": [{"S": n} for n in ("enrollments_deleted", "changes", "duration_seconds")]},
        "ends": {"L": [{"S": line} for line in lines]}})

    (end,) = alerts(world)
    (anomaly,) = end["anomalies"]
    assert anomaly["sentence"] == "deleted 4,800 enrollments; usually 0–12 over the last 12 imports"
    stored = client.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)["Item"]
    assert set(stored) == {"root_account_uuid", "sis_batch_id", "ends", "version"} and "B" in stored["ends"]
    assert stored["version"] == {"N": "13"}
    kept = world.store.baseline(ROOT_ACCOUNT_UUID, shape).ends
    assert [e.sis_batch_id for e in kept] == [str(100 + i) for i in range(12)] + [str(sis_id)]
    assert kept[0].figures == {"enrollments_deleted": 0, "changes": 330, "duration_seconds": 240}


# --- an end whose figures Canvas did not give when it alerted ------------------------------------------------

def marker(world: World) -> dict:
    return world.store.pass_marker(ROOT_ACCOUNT_UUID) or {}


def test_figures_unread_at_alert_time_are_read_at_the_next_pass_and_an_unusual_end_alerts_again(world,
                                                                                                  captured_logs):
    hourly_history(world)
    world.reconcile()
    alerts(world)
    sis_id = run_import(world, 341, deleted=4800)
    world.canvas.throttle_next(3)  # the notifier's read and both retries
    (end,) = alerts(world)
    assert end["details"] is None and end["unusual"] is False and "follow_up" not in end
    assert end["anomaly_check"] == "no figures: Canvas's details of this import were not read"
    assert marker(world)["figures_owed"] == [str(sis_id)]

    world.clock.tick(300)
    summary = world.reconcile()
    assert summary["figures_rechecked"] == 1 and "figures_owed" not in marker(world)
    world.aws.pump_stream(lambda event, context: world.notifier.handle(event, context))
    (published,) = world.aws.alerts()
    again = published["message"]
    assert (again["type"], again["sis_batch_id"], again["workflow_state"]) == (
        "sis_import_finished", str(sis_id), "imported")
    assert again["follow_up"] is True and again["unusual"] is True and again["alert_id"] != end["alert_id"]
    (anomaly,) = again["anomalies"]
    assert anomaly["sentence"] == "deleted 4,800 enrollments; usually 0–12 over the last 24 imports"
    assert again["details"]["counts"]["enrollments"] == 341
    assert world.store.get(ROOT_ACCOUNT_UUID, str(sis_id)).unusual == ("enrollments_deleted",)
    assert published["subject"].startswith("Follow-up: SIS import") and published["subject"].endswith("(unusual)")
    assert published["attributes"]["unusual"] == "true"  # what the default email filter lets through
    assert published["attributes"]["alert_id"] == again["alert_id"]
    text = email_text(again)
    assert text.startswith("Follow-up: Canvas's figures for this end could not be read when it was alerted;")
    assert "deleted 4,800 enrollments" in text

    world.clock.tick(300)
    assert world.reconcile()["figures_rechecked"] == 0 and alerts(world) == []  # asked once, alerted once


def test_a_routine_end_read_later_is_recorded_and_alerts_nothing_more(world):
    hourly_history(world)
    world.reconcile()
    alerts(world)
    sis_id = run_import(world, 335, deleted=4)
    world.canvas.throttle_next(3)
    (end,) = alerts(world)
    assert end["details"] is None
    world.clock.tick(300)
    assert world.reconcile()["figures_rechecked"] == 1
    assert alerts(world) == []  # compared, and nothing unusual: no second alert
    assert world.store.get(ROOT_ACCOUNT_UUID, str(sis_id)).unusual == ()


def test_figures_canvas_keeps_refusing_are_asked_for_three_times_then_given_up_with_a_warning(world, captured_logs):
    hourly_history(world)
    world.reconcile()
    alerts(world)
    run_import(world, 341, deleted=4800)
    world.canvas.throttle_next(3)
    assert [a["details"] for a in alerts(world)] == [None]
    rechecked = []
    for _ in range(5):
        world.clock.tick(300)
        rechecked.append(world.reconcile()["figures_rechecked"])
        if rechecked[-1]:
            world.canvas.throttle_next(3)  # the recheck's read and its retries
        assert alerts(world) == []
    assert rechecked == [1, 1, 1, 0, 0] and "figures_owed" not in marker(world)
    assert "an end's figures are still unread; asked again at the next pass" in captured_logs.getvalue()
    assert "an end's figures could not be read; it stays unchecked" in captured_logs.getvalue()


def test_an_end_owed_again_while_the_pass_asks_for_it_is_not_lost(world):
    """The pass takes the owed ends off the marker before it asks for them: the notifier's next owing of the
    same end (its recheck, unread again) lands after, and the pass after that asks again."""
    hourly_history(world)
    world.reconcile()
    alerts(world)
    sis_id = run_import(world, 341, deleted=4800)
    world.canvas.throttle_next(3)
    alerts(world)
    world.clock.tick(300)
    world.reconcile()
    world.canvas.throttle_next(3)
    assert alerts(world) == [] and marker(world)["figures_owed"] == [str(sis_id)]
    world.clock.tick(300)
    world.reconcile()
    (again,) = alerts(world)
    assert again["follow_up"] is True and again["sis_batch_id"] == str(sis_id)


def test_an_end_whose_host_has_no_instance_is_not_owed(world):
    hourly_history(world)
    world.reconcile()
    alerts(world)
    world.notifier = Notifier(AlertPublisher(boto3.client("sns"), world.aws.topic_arn),
                              details=CanvasDetails([("https://other.instructure.com", lambda: TOKEN)]),
                              unusual=UnusualEnds(world.store, sensitivity=5, min_history=10))
    run_import(world, 341, deleted=4800)
    (end,) = alerts(world)
    assert end["details"] is None and "no Canvas instance is configured for 127.0.0.1" in end["details_unavailable"]
    assert "figures_owed" not in marker(world)  # its figures cannot come: nothing to ask for again


def test_a_pass_asks_for_twenty_owed_ends_at_most_and_the_next_for_the_rest(world):
    hourly_history(world, 4)
    world.reconcile()
    owed = [str(9000 + n) for n in range(21)]  # gone from the table (expired): taken off, nothing to ask
    for sis_batch_id in owed:
        assert world.store.owe_figures(ROOT_ACCOUNT_UUID, sis_batch_id)
    world.clock.tick(300)
    world.reconcile()
    (left,) = marker(world)["figures_owed"]
    assert left in owed
    world.clock.tick(300)
    world.reconcile()
    assert "figures_owed" not in marker(world)
