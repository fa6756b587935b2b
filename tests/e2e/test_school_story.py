"""Issue 17's story in `make run`, played by `make simulate` on its second simulated Canvas, the school: 24
hourly imports of about 340 enrollments found by the school's first pass, then an `imported` one that
deletes 4,800 enrollments (alerted unusual, naming the figure and the usual range), three hours with no
import (one sis_import_missing alert), then an import (one "resumed" alert), then another deleting 4,800
whose first reads Canvas throttles (alerted without figures, then followed up as unusual after a pass).
What is checked here is read from the notifications file, the table and the simulator, not taken from make
simulate's word. Times are relative to now; every wait is bounded; every process is stopped."""

from __future__ import annotations

import json
import re
import statistics
import urllib.request
from datetime import datetime

import boto3
import pytest

from local.canvas_simulator import CONTROL_HEADER
from local.resources import TABLE_NAME
from sis_imports.core.unusual import baseline_from_item
from tests.e2e.test_local_run import OPENER, LocalRun
from tests.e2e.test_reconcile import command

pytestmark = pytest.mark.e2e
HOUR = 3600


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    run = LocalRun(tmp_path_factory.mktemp("school-run"))
    try:
        run.wait_ready()
        out = command(run, "local.simulate")
        yield run, out
    finally:
        assert run.stop() == 0


def school_import(state: dict, sis_id: str) -> dict:
    request = urllib.request.Request(f"{state['school_url']}/_simulator/imports/{sis_id}",
                                     headers={CONTROL_HEADER: state["control_key"]})
    with OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())["sis_import"]


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_unusual_then_missing_then_resumed_each_alerted_once(story):
    run, out = story
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the school's alerts: as expected" in out.stdout, out.stdout
    state = json.loads((run.state / "run.json").read_text())
    school = state["school_root_account_uuid"]
    assert school and school != state["root_account_uuid"]
    first, last = re.search(r"1\. history\s+imports (\d+)-(\d+):", out.stdout).groups()
    history = [str(n) for n in range(int(first), int(last) + 1)]
    unusual = re.search(r"2\. unusual\s+import (\d+):", out.stdout).group(1)
    resumed = re.search(r"4\. resumed\s+import (\d+):", out.stdout).group(1)
    unread = re.search(r"5\. unread\s+import (\d+):", out.stdout).group(1)
    assert len(history) == 24

    alerts = [a for a in run.notifications() if a["message"]["root_account_uuid"] == school]
    kinds = sorted((a["message"]["type"], a["message"].get("outcome"), a["message"].get("sis_batch_id"))
                   for a in alerts)
    # No other alert for the school: none for its history, one per owed alert, the resuming import's end.
    assert kinds == sorted([("sis_import_finished", "success", unusual), ("sis_import_missing", "missing", None),
                            ("sis_import_missing", "resumed", resumed), ("sis_import_finished", "success", resumed),
                            ("sis_import_finished", "success", unread), ("sis_import_finished", "success", unread)])

    # The unusual end names the figure, its value and the usual range of the school's last 24 ends. Every
    # history import deleted a handful at most, far inside the floor of 50: the usual range is all of them.
    (end,) = [a for a in alerts if a["message"].get("sis_batch_id") == unusual]
    deletions = [school_import(state, n)["data"]["counts"]["batch_enrollments_deleted"] for n in history]
    anomalies = {a["figure"]: a for a in end["message"]["anomalies"]}
    deleted = anomalies["enrollments_deleted"]
    assert (deleted["value"], deleted["usual_low"], deleted["usual_high"], deleted["history"]) == (
        4800, min(deletions), max(deletions), 24)
    span = f"{min(deletions)}" if min(deletions) == max(deletions) else f"{min(deletions)}–{max(deletions)}"
    assert deleted["sentence"] == f"deleted 4,800 enrollments; usually {span} over the last 24 imports"
    assert end["message"]["unusual"] is True and end["attributes"]["unusual"] == "true"
    assert end["subject"].endswith(" (unusual)") and "deleted 4,800 enrollments" in end["email"]

    # Three silent hours after the unusual import, against the rhythm learnt from the 25 creations (hourly, a
    # minute or two of jitter): the usual interval is their median; a gap is owed after the longest usual one
    # (one in twenty left out) plus a quarter of it, at least 30 minutes more: about 1.5 h.
    created = epoch(school_import(state, unusual)["created_at"])
    creations = sorted(epoch(school_import(state, n)["created_at"]) for n in history) + [created]
    intervals = sorted(b - a for a, b in zip(creations, creations[1:]))
    longest = intervals[len(intervals) - 1 - len(intervals) // 20]
    (missing,) = [a["message"] for a in alerts if a["message"].get("outcome") == "missing"]
    assert epoch(missing["last_import_at"]) == created
    assert missing["usual_interval_seconds"] == int(statistics.median(intervals))  # whole seconds
    assert 0.95 * HOUR <= missing["usual_interval_seconds"] <= 1.05 * HOUR
    assert epoch(missing["alert_after"]) - created == int(longest + max(longest / 4, 1800))
    assert missing["rhythm"] == "learnt from the last 25 imports"
    assert missing["hostname"] == "localhost" and "no sis import has been created" in missing["summary"].lower()

    (back,) = [a["message"] for a in alerts if a["message"].get("outcome") == "resumed"]
    came = epoch(school_import(state, resumed)["created_at"])
    assert epoch(back["resumed_at"]) == came and back["gap_seconds"] == int(came - created)
    assert 3 * HOUR - 120 <= back["gap_seconds"] <= 3 * HOUR + 120
    assert back["alert_id"] != missing["alert_id"]

    # A routine end after it all: compared with the history (a claim could be made), not flagged.
    (routine,) = [a["message"] for a in alerts if a["message"].get("sis_batch_id") == resumed
                  and a["message"]["type"] == "sis_import_finished"]
    assert routine["unusual"] is False and routine["anomalies"] == [] and "anomaly_check" not in routine

    # Canvas throttled the notifier's reads of the last import: its end went out without figures, and the
    # pass after it asked again; read then, its figures are unusual: one follow-up alert, an id of its own.
    first, follow = sorted((a for a in alerts if a["message"].get("sis_batch_id") == unread),
                           key=lambda a: bool(a["message"].get("follow_up")))
    assert first["message"]["details"] is None and first["message"]["unusual"] is False
    assert "still rate limited (403) after 3 tries" in first["message"]["details_unavailable"]
    assert first["message"]["anomaly_check"] == "no figures: Canvas's details of this import were not read"
    assert follow["message"]["follow_up"] is True and follow["message"]["unusual"] is True
    assert follow["message"]["alert_id"] != first["message"]["alert_id"]
    assert follow["message"]["details"]["counts"]["enrollments"] > 0
    assert follow["subject"].startswith("Follow-up: ") and follow["attributes"]["unusual"] == "true"
    assert {a["figure"]: a["value"] for a in follow["message"]["anomalies"]}["enrollments_deleted"] == 4800
    assert "the figures of 1 end(s) Canvas did not give when alerted: asked for again" in out.stdout


def test_routine_history_ends_are_recorded_not_flagged(story):
    run, _ = story
    state = json.loads((run.state / "run.json").read_text())
    school = state["school_root_account_uuid"]
    table = boto3.resource("dynamodb", endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local").Table(TABLE_NAME)
    items = table.query(KeyConditionExpression="root_account_uuid = :u",
                        ExpressionAttributeValues={":u": school})["Items"]
    batches = {i["sis_batch_id"]: i for i in items if not i["sis_batch_id"].startswith("#")}
    assert len(batches) == 27  # the 24 found by the first pass, the unusual one, the one that resumed, the unread
    flagged = {k: list(v["unusual"]) for k, v in batches.items() if v.get("unusual")}
    assert len(flagged) == 2 and all("enrollments_deleted" in f for f in flagged.values())
    assert sum(1 for v in batches.values() if v.get("figures_rechecks")) == 1  # the unread one, asked once
    assert sum(1 for v in batches.values() if v.get("baseline")) == 24  # recorded by the first pass, not alerted
    baselines = [i for i in items if i["sis_batch_id"].startswith("#baseline#")]
    (baseline,) = baselines  # one shape
    kept = baseline_from_item(school, baseline["sis_batch_id"].removeprefix("#baseline#"), baseline).ends
    assert len({e.sis_batch_id for e in kept}) == len(kept) == 27  # each successful end kept once


def test_a_second_make_simulate_plays_the_school_once_and_alerts_it_nothing_more(story):
    run, _ = story
    school = json.loads((run.state / "run.json").read_text())["school_root_account_uuid"]
    before = [a for a in run.notifications() if a["message"]["root_account_uuid"] == school]
    out = command(run, "local.simulate")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the school's story was played already in this run" in out.stdout
    assert [a for a in run.notifications() if a["message"]["root_account_uuid"] == school] == before
