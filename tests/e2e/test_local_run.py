"""`make run`'s stack in a subprocess on a free port: signed HTTPS, SQS and EventBridge events in,
batch views and the notifications file out."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.factories import ACCESS_TOKEN, ROOT_ACCOUNT_UUID, at, canvas_event, failed_import

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("local-run")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "LOCAL_STATE_DIR": str(state),
           "NOTIFICATIONS_FILE": str(state / "notifications.jsonl"), "SIS_AUTH": "jwt"}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "TOPIC_ARN", "SIS_JWKS_URL"):
        env.pop(name, None)
    log = (state / "run.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (state / "run.json").exists() or process.poll() is not None, 60, "the local run to start")
        assert process.poll() is None, (state / "run.log").read_text()
        yield {"port": port, "state": state, "env": env, "process": process, "base": f"http://127.0.0.1:{port}"}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def send(local_run, events, via: str) -> list[str]:
    path = local_run["state"] / f"send-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(events))
    out = subprocess.run([sys.executable, "-m", "local.send", str(path), "--via", via], cwd=ROOT,
                         env=local_run["env"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def notifications(local_run) -> list[dict]:
    path = local_run["state"] / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_pipeline_end_to_end(local_run):
    base = local_run["base"]
    # A whole import over signed HTTPS, then the two Canvas examples.
    answers = send(local_run, failed_import("7001"), "https")
    answers += send(local_run, json.loads((EXAMPLES / "sis_batch_created.json").read_text()), "https")
    answers += send(local_run, json.loads((EXAMPLES / "sis_batch_updated.json").read_text()), "https")
    assert all("-> 200 " in line and '"status":"applied"' in line for line in answers), answers

    # One import split over the three paths, with a duplicate end over a second path.
    split = failed_import("7002")
    send(local_run, split[:2], "https")
    send(local_run, [split[2]], "sqs")
    send(local_run, [split[3]], "eventbridge")
    send(local_run, [split[3], split[1]], "sqs")
    # A restore cycle, in order, over EventBridge.
    restore = [canvas_event("restoring", at(split[3]["metadata"]["event_time"], 600), "7002"),
               canvas_event("partially_restored", at(split[3]["metadata"]["event_time"], 660), "7002")]
    send(local_run, restore, "eventbridge")

    lines = wait_until(lambda: len(notifications(local_run)) >= 3 and notifications(local_run), 30, "three alerts")
    time.sleep(1.5)  # a fourth alert would be a duplicate: give it time to show up
    lines = notifications(local_run)
    got = sorted((n["message"]["sis_batch_id"], n["message"]["workflow_state"]) for n in lines)
    assert got == [("7001", "failed_with_messages"), ("7002", "failed_with_messages"), ("7002", "partially_restored")]
    first = next(n for n in lines if n["message"]["sis_batch_id"] == "7001")
    assert first["subject"] == "SIS import 7001 failed_with_messages on oxana.instructure.com"
    assert first["attributes"] == {"workflow_state": "failed_with_messages", "outcome": "failure",
                                   "root_account_uuid": ROOT_ACCOUNT_UUID, "account_id": "1"}
    assert ACCESS_TOKEN not in (local_run["state"] / "notifications.jsonl").read_text()

    status, view = get(f"{base}/batches/{ROOT_ACCOUNT_UUID}/7002")
    assert status == 200
    assert (view["workflow_state"], view["terminal"], view["outcome"]) == ("partially_restored", True, "warning")
    assert [h["workflow_state"] for h in view["history"]] == [
        "initializing", "created", "importing", "failed_with_messages", "restoring", "partially_restored"]
    status, view = get(f"{base}/batches/{ROOT_ACCOUNT_UUID}/1440004")
    assert (status, view["workflow_state"], view["terminal"]) == (200, "created", False)
    assert get(f"{base}/batches/{ROOT_ACCOUNT_UUID}/404404")[0] == 404


def test_unsigned_json_is_refused_in_the_default_jwt_mode(local_run):
    request = urllib.request.Request(f"{local_run['base']}/events", method="POST",
                                     data=json.dumps(failed_import("7003")[0]).encode())
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)
    assert exc.value.code == 401


def test_a_second_run_on_the_same_port_stops_with_a_clear_error(local_run, tmp_path):
    env = {**local_run["env"], "LOCAL_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert f"port {local_run['port']} is already in use" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_ctrl_c_stops_cleanly(local_run):
    process = local_run["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert "stopped." in (local_run["state"] / "run.log").read_text()
