"""The reconciler in `make run`: the Canvas simulator, `make simulate` and `make reconcile` against the
running stack (subprocesses, 127.0.0.1 only), and `make run` reconciling another Canvas given by
CANVAS_API_URL on a timer. Every wait is bounded; every process is stopped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from local.canvas_simulator import UPLOADER_URL_TOKEN, CanvasSimulator
from tests.e2e.test_local_run import OPENER, ROOT, LocalRun, free_port, get, wait_until

pytestmark = pytest.mark.e2e
SCENARIO = re.compile(r"^\s+\d\. (normal|failure|silent abort|stuck|lost events|long import|queued)\s+"
                      r"imports? ([\d, ]+):", re.M)


def command(run: LocalRun, module: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`make simulate` / `make reconcile`: found through the run's state file, as `make send` is."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=run.env, capture_output=True,
                          text=True, timeout=timeout)


def reconcile_json(run: LocalRun) -> dict:
    out = command(run, "local.reconcile", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def alerts_for(run: LocalRun, root: str, sis_batch_id: str) -> list[dict]:
    return [n for n in run.notifications()
            if n["message"].get("root_account_uuid") == root and n["message"].get("sis_batch_id") == sis_batch_id]


def post(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers or {})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    run = LocalRun(tmp_path_factory.mktemp("reconcile-run"))
    try:
        yield run.wait_ready()
    finally:
        assert run.stop() == 0


def test_make_simulate_alerts_what_live_events_cannot_tell(sim_run):
    state = json.loads((sim_run.state / "run.json").read_text())
    root, simulator_url = state["root_account_uuid"], state["simulator_url"]
    assert simulator_url.startswith("http://127.0.0.1:") and root
    log = sim_run.log()
    assert f"simulator at {simulator_url}" in log and "every 3600 s (RECONCILE_SECONDS)" in log
    assert "first pass" in log  # the run reconciled once at start, before anything happened

    out = command(sim_run, "local.simulate")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = dict(SCENARIO.findall(out.stdout))
    assert set(ids) == {"normal", "failure", "silent abort", "stuck", "lost events", "long import", "queued"}, (
        out.stdout)
    assert "expect: alerted within one pass as aborted, outcome failure, detected_by sis_import_api" in out.stdout
    assert out.stdout.count(": as expected") == 8, out.stdout  # the seven scenarios, then the school
    assert "queued behind a running import (not stuck): 3" in out.stdout

    # What the notifications file shows, read here rather than taken from make simulate's word.
    def one(name: str) -> dict:
        found = alerts_for(sim_run, root, ids[name])
        assert len(found) == 1, (name, found)
        return found[0]

    aborted = one("silent abort")
    assert (aborted["message"]["type"], aborted["message"]["workflow_state"], aborted["message"]["outcome"],
            aborted["message"]["detected_by"]) == ("sis_import_finished", "aborted", "failure", "sis_import_api")
    assert aborted["message"]["previous_state"] == "importing"
    assert aborted["attributes"]["outcome"] == "failure"
    stuck = one("stuck")
    assert (stuck["message"]["type"], stuck["message"]["workflow_state"], stuck["attributes"]["outcome"]) == (
        "sis_import_stuck", "initializing", "stuck")
    lost = one("lost events")
    assert (lost["message"]["workflow_state"], lost["message"]["outcome"], lost["message"]["detected_by"]) == (
        "imported_with_messages", "warning", "sis_import_api")
    normal, failed = one("normal"), one("failure")
    assert (normal["message"]["workflow_state"], normal["message"]["detected_by"]) == ("imported", "live_event")
    assert (failed["message"]["workflow_state"], failed["message"]["detected_by"]) == (
        "failed_with_messages", "live_event")
    # The why, read from Canvas (the simulator) when the alert went out: counts and first errors, and
    # for the abort the threshold warning; the email text says it too.
    assert failed["message"]["details"]["error_count"] >= 1 and failed["message"]["details"]["errors"]
    assert "First errors:" in failed["email"]
    assert "exceeds the set threshold" in aborted["message"]["details"]["abort_reason"]
    assert "Aborted because:" in aborted["email"]

    # Stuck means stuck: the import 2 h into its run that reached cleanup_batch, and the three uploads
    # waiting behind it for longer than created's hour, got no stuck alert; each alerted once when it
    # ended, after the one ahead of it (one import at a time).
    queued = ids["queued"].split(", ")
    assert len(queued) == 3
    ends = []
    for sis_batch_id in [ids["long import"], *queued]:
        (alert,) = alerts_for(sim_run, root, sis_batch_id)
        assert (alert["message"]["type"], alert["message"]["workflow_state"], alert["message"]["detected_by"]) == (
            "sis_import_finished", "imported", "live_event"), alert
        status, view = get(f"{sim_run.base}/batches/{root}/{sis_batch_id}")
        states = [h["workflow_state"] for h in view["history"]]
        assert states[-2:] == ["importing", "imported"] or states[-3:] == ["importing", "cleanup_batch", "imported"]
        ends.append(view["history"][-1]["event_time"])
    assert ends == sorted(ends)
    status, view = get(f"{sim_run.base}/batches/{root}/{ids['long import']}")
    assert [h["workflow_state"] for h in view["history"]][-2:] == ["cleanup_batch", "imported"]  # read by the pass

    # The batch view tells where each state came from: the lost import is known only from the API.
    status, view = get(f"{sim_run.base}/batches/{root}/{ids['lost events']}")
    assert status == 200 and [h["event_name"] for h in view["history"]] == ["sis_import_api"], view
    status, view = get(f"{sim_run.base}/batches/{root}/{ids['silent abort']}")
    assert [h["event_name"] for h in view["history"]][-1] == "sis_import_api"

    # A second pass changes nothing and alerts nothing.
    before = len(sim_run.notifications())
    summary = reconcile_json(sim_run)
    # make simulate's school (tests/e2e/test_school_story.py) is read too from its story on: nothing changes there either.
    [instance] = [i for i in summary["instances"] if i["root_account_uuid"] == root]
    [school] = [i for i in summary["instances"] if i["root_account_uuid"] == state["school_root_account_uuid"]]
    assert school["ok"] and school["changes"] == [] and school["gaps"] == 0, school
    assert instance["ok"] and instance["root_account_uuid"] == root and not instance["first_pass"], instance
    assert (instance["changes"], instance["corrected"], instance["missed"], instance["stuck"]) == ([], 0, 0, 0)
    # It lists only what was created since the last pass began, less 15 minutes (the high-water mark), not 48 h.
    listed_from = datetime.fromisoformat(instance["listed_from"].replace("Z", "+00:00"))
    assert datetime.now(timezone.utc) - listed_from < timedelta(minutes=30) and instance["queued"] == 0
    out = command(sim_run, "local.reconcile")
    assert out.returncode == 0 and "no change" in out.stdout and "seen " in out.stdout, out.stdout + out.stderr
    time.sleep(2)  # an alert owed to either pass would be in the file by now
    assert len(sim_run.notifications()) == before

    # The simulator's events carry an API token in metadata.url, as Canvas's do: stored nowhere.
    assert UPLOADER_URL_TOKEN not in (sim_run.state / "notifications.jsonl").read_text()
    assert UPLOADER_URL_TOKEN not in sim_run.log()


def test_the_control_routes_answer_only_with_the_runs_key(sim_run):
    state = json.loads((sim_run.state / "run.json").read_text())
    assert (sim_run.state / "run.json").stat().st_mode & 0o077 == 0  # it holds the control key
    reconcile = f"{sim_run.base}/_local/reconcile"
    assert post(reconcile) == 404 and post(reconcile, {"X-Local-Control": "wrong"}) == 404
    assert post(reconcile, {"X-Local-Control": state["control_key"]}) == 200
    simulator = state["simulator_url"]
    assert get(f"{simulator}/_simulator/status")[0] == 404
    request = urllib.request.Request(f"{simulator}/_simulator/status",
                                     headers={"X-Simulator-Control": state["control_key"]})
    with OPENER.open(request, timeout=10) as response:
        assert json.loads(response.read())["root_account_uuid"] == state["root_account_uuid"]
    assert get(f"{simulator}/api/v1/accounts/self")[0] == 401  # the Canvas API wants its token


def test_make_run_reconciles_another_canvas_given_by_url_on_its_timer(tmp_path):
    token = "e2e-canvas-api-token"
    with CanvasSimulator(token=token, seed=11) as canvas:
        earlier = canvas.create_import()
        canvas.run(earlier, "failed")  # ended before the first pass: recorded, never alerted
        run = LocalRun(tmp_path, CANVAS_API_URL=canvas.base_url, CANVAS_API_TOKEN=token, RECONCILE_SECONDS="1")
        try:
            run.wait_ready()
            assert f"{canvas.base_url} (CANVAS_API_URL), no simulator" in run.log()
            assert "every 1 s (RECONCILE_SECONDS)" in run.log()
            assert token not in run.log() and token not in (tmp_path / "run.json").read_text()
            wait_until(lambda: "first pass" in run.log(), 30, "the first pass")

            out = command(run, "local.simulate")
            assert out.returncode == 2 and "has no simulator" in out.stderr, out.stdout + out.stderr

            # An import that fails with no event delivered at all: the timer's next pass alerts it.
            later = canvas.create_import()
            canvas.run(later, "failed_with_messages")
            found = wait_until(lambda: alerts_for(run, canvas.root_account_uuid, str(later)), 30,
                               "the alert of the import that failed unheard")
            assert [(n["message"]["workflow_state"], n["message"]["detected_by"]) for n in found] == [
                ("failed_with_messages", "sis_import_api")]
            summary = reconcile_json(run)
            assert summary["instances"][0]["root_account_uuid"] == canvas.root_account_uuid  # from accounts/self
            assert summary["instances"][0]["ok"] and summary["instances"][0]["changes"] == []
            time.sleep(2)
            assert [n["message"]["sis_batch_id"] for n in run.notifications()] == [str(later)]
            status, view = get(f"{run.base}/batches/{canvas.root_account_uuid}/{earlier}")
            assert status == 200 and view["workflow_state"] == "failed"  # recorded by the first pass
        finally:
            assert run.stop() == 0


@pytest.mark.parametrize("env, message", [
    ({"CANVAS_API_URL": "https://school.example.edu"}, "CANVAS_API_URL needs CANVAS_API_TOKEN"),
    ({"CANVAS_API_TOKEN": "t"}, "CANVAS_API_TOKEN is set without CANVAS_API_URL"),
    ({"CANVAS_API_URL": "school.example.edu", "CANVAS_API_TOKEN": "t"}, "CANVAS_API_URL must be a Canvas base URL"),
    ({"RECONCILE_SECONDS": "0"}, "RECONCILE_SECONDS must be a number of seconds above 0"),
])
def test_reconcile_settings_that_make_no_sense_stop_the_run(tmp_path, env, message):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CANVAS_API_URL", "CANVAS_API_TOKEN", "RECONCILE_SECONDS")}
    out = subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env={**clean, "LOCAL_STATE_DIR": str(tmp_path), "PORT": str(free_port()), **env})
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_reconcile_and_simulate_without_a_run_say_so(tmp_path):
    for module in ("local.reconcile", "local.simulate"):
        out = subprocess.run([sys.executable, "-m", module], cwd=ROOT, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "LOCAL_STATE_DIR": str(tmp_path)})
        assert out.returncode != 0 and "no local run found" in out.stderr and "Traceback" not in out.stderr
