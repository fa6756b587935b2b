"""`make run`'s stack in a subprocess on a free port: signed HTTPS, SQS and EventBridge events in,
batch views and the notifications file out. Every wait is bounded; every process is stopped."""

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
# Straight to 127.0.0.1 whatever HTTP_PROXY says (local.run and local.send do the same).
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with OPENER.open(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    try:
        with OPENER.open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class LocalRun:
    """`python -m local.run` with its own port, state directory and notifications file."""

    def __init__(self, state: Path, **env: str):
        self.port = free_port()
        self.state = state
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PORT": str(self.port), "LOCAL_STATE_DIR": str(state),
                    "NOTIFICATIONS_FILE": str(state / "notifications.jsonl"), "SIS_AUTH": "jwt", **env}
        for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "TOPIC_ARN", "SIS_JWKS_URL", "SIS_JWT_ISSUERS"):
            self.env.pop(name, None)
        self.log_path = state / "run.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def answers(self) -> bool:
        """True once the HTTP port answers: the server serves only after the whole stack is up."""
        assert self.process.poll() is None, f"local.run exited early:\n{self.log()}"
        try:
            OPENER.open(f"{self.base}/ready", timeout=1)
        except urllib.error.HTTPError as exc:
            return exc.code == 404 and exc.headers.get("server", "").startswith("canvas-sis-local")
        except OSError:
            return False
        return False

    def wait_ready(self) -> LocalRun:
        wait_until(self.answers, 30, "the local run to serve")
        return self

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    return self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            return self.process.returncode
        finally:
            self._log.close()

    def send(self, events, via: str = "https", expect_ok: bool = True) -> list[str]:
        path = self.state / f"send-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(events))
        out = subprocess.run([sys.executable, "-m", "local.send", str(path), "--via", via], cwd=ROOT,
                             env=self.env, capture_output=True, text=True, timeout=30)
        if expect_ok:
            assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout.strip().splitlines()

    def notifications(self) -> list[dict]:
        path = self.state / "notifications.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    run = LocalRun(tmp_path_factory.mktemp("local-run"))
    try:
        yield run.wait_ready()
    finally:
        run.stop()


def test_the_pipeline_end_to_end(local_run):
    # A whole import over signed HTTPS, then the two Canvas examples.
    answers = local_run.send(failed_import("7001"))
    answers += local_run.send(json.loads((EXAMPLES / "sis_batch_created.json").read_text()))
    answers += local_run.send(json.loads((EXAMPLES / "sis_batch_updated.json").read_text()))
    assert len(answers) == 6
    assert all("-> 200 " in line and '"status":"applied"' in line for line in answers), answers

    # One import split over the three paths (HTTPS, SQS, EventBridge), its end sent again over SQS,
    # and an invalid message among the valid ones on the queue.
    split = failed_import("7002", start=at(failed_import("7001")[0]["metadata"]["event_time"], 3600))
    local_run.send(split[:2], "https")
    local_run.send([split[2]], "sqs")
    local_run.send([split[3]], "eventbridge")
    local_run.send(["not a Canvas event", split[3], split[1]], "sqs")
    # A later restore of that import: restoring over EventBridge, its end over HTTPS.
    end = split[3]["metadata"]["event_time"]
    local_run.send([canvas_event("restoring", at(end, 600), "7002")], "eventbridge")
    wait_until(lambda: get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/7002")[1].get("workflow_state")
               == "restoring", 15, "restoring to be applied")
    answers = local_run.send([canvas_event("partially_restored", at(end, 660), "7002")], "https")
    assert '"status":"applied"' in answers[0], answers

    wait_until(lambda: len(local_run.notifications()) >= 3, 15, "three alerts")
    time.sleep(1.5)  # a fourth alert would be a duplicate: give it time to show up
    lines = local_run.notifications()
    got = sorted((n["message"]["sis_batch_id"], n["message"]["workflow_state"]) for n in lines)
    assert got == [("7001", "failed_with_messages"), ("7002", "failed_with_messages"), ("7002", "partially_restored")]
    by_state = {(n["message"]["sis_batch_id"], n["message"]["workflow_state"]): n for n in lines}
    first = by_state[("7001", "failed_with_messages")]
    assert first["subject"] == "SIS import 7001 failed_with_messages on oxana.instructure.com"
    assert first["attributes"] == {"workflow_state": "failed_with_messages", "outcome": "failure",
                                   "root_account_uuid": ROOT_ACCOUNT_UUID, "account_id": "1"}
    assert first["message"]["previous_state"] == "importing"
    restore = by_state[("7002", "partially_restored")]
    assert restore["subject"].startswith("SIS restore of import 7002 partially_restored")
    assert restore["attributes"]["outcome"] == "warning"

    status, view = get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/7001")
    assert (status, view["workflow_state"], view["terminal"], view["outcome"]) == (
        200, "failed_with_messages", True, "failure")
    assert [h["workflow_state"] for h in view["history"]] == [
        "initializing", "created", "importing", "failed_with_messages"]
    status, view = get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/7002")
    assert (status, view["workflow_state"], view["terminal"], view["outcome"]) == (
        200, "partially_restored", True, "warning")
    assert [h["workflow_state"] for h in view["history"]] == [
        "initializing", "created", "importing", "failed_with_messages", "restoring", "partially_restored"]
    status, view = get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/1440004")
    assert (status, view["workflow_state"], view["terminal"]) == (200, "created", False)
    assert get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/404404")[0] == 404

    # The access token in metadata.url reaches neither the alerts, the views nor the console.
    token_value = ACCESS_TOKEN.split("~", 1)[1]
    assert token_value not in (local_run.state / "notifications.jsonl").read_text()
    assert token_value not in json.dumps(get(f"{local_run.base}/batches/{ROOT_ACCOUNT_UUID}/7001")[1])
    assert token_value not in local_run.log()
    assert "[sqs] message" in local_run.log()  # the invalid message was reported, not applied


def test_unsigned_json_is_refused_in_the_default_jwt_mode(local_run):
    assert post(f"{local_run.base}/events", json.dumps(failed_import("7003")[0]).encode()) == 401


def test_routes_that_api_gateway_would_not_match_are_404(local_run):
    assert get(f"{local_run.base}/nothing")[0] == 404
    assert get(f"{local_run.base}/events") == (404, {"message": "Not Found"})
    assert get(f"{local_run.base}/.well-known/jwks.json")[1]["keys"][0]["alg"] == "RS256"


def test_a_second_run_on_the_same_port_stops_with_a_clear_error(local_run, tmp_path):
    env = {**local_run.env, "LOCAL_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"port {local_run.port} is already in use (is `make run` already running?). "
                                  f"Stop it, or choose another: make run PORT={local_run.port + 1}")
    assert "Traceback" not in out.stderr + out.stdout


def test_a_second_run_on_the_same_state_directory_stops_with_a_clear_error(local_run):
    env = {**local_run.env, "PORT": str(free_port())}
    out = subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert f"another local run (pid {local_run.process.pid}" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


@pytest.mark.parametrize("mode", ["token", "none"])
def test_the_other_auth_modes(tmp_path, mode):
    run = LocalRun(tmp_path, SIS_AUTH=mode)
    try:
        run.wait_ready()
        assert run.send(failed_import("8001"))[-1].endswith('"workflow_state":"failed_with_messages"}')
        unsigned = json.dumps(failed_import("8002")[0]).encode()
        state = json.loads((tmp_path / "run.json").read_text())
        if mode == "token":
            assert f"/events?token={state['token']}" in run.log()  # the webhook URL in the banner
            assert post(f"{run.base}/events", unsigned) == 401
            assert post(f"{run.base}/events?token=wrong", unsigned) == 401
            assert (tmp_path / "run.json").stat().st_mode & 0o077 == 0  # it holds the token
        else:
            assert "AUTHENTICATION IS OFF" in run.log()
            assert post(f"{run.base}/events", unsigned) == 200
        wait_until(lambda: run.notifications(), 15, "the alert")
    finally:
        assert run.stop() == 0


def test_send_without_a_run_says_so(tmp_path):
    event = tmp_path / "event.json"
    event.write_text((EXAMPLES / "sis_batch_created.json").read_text())
    out = subprocess.run([sys.executable, "-m", "local.send", str(event)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "LOCAL_STATE_DIR": str(tmp_path)}, timeout=30)
    assert out.returncode != 0
    assert "no local run found" in out.stderr and "Traceback" not in out.stderr


def test_ctrl_c_stops_cleanly(local_run):
    assert local_run.stop() == 0
    assert local_run.log().rstrip().endswith("stopped.")
    assert not (local_run.state / "run.json").exists()
