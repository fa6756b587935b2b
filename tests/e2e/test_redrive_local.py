"""`make redrive` against `make run` (a subprocess on a free port): without --stack it finds the local
run by its state file, shows what waits, moves nothing without --yes, and with --yes puts a dead letter
back on the local Canvas queue (whose consumer then stores its batch) and a parked alert back on the
retry queue (whose function publishes it). Every wait is bounded; every process is stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_local_run import ROOT, LocalRun, get, wait_until
from tests.factories import ROOT_ACCOUNT_UUID, canvas_event, failed_import, iso

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    local = LocalRun(tmp_path_factory.mktemp("redrive-run"))
    try:
        yield local.wait_ready()
    finally:
        assert local.stop() == 0


@pytest.fixture(scope="module")
def sqs(run):
    import boto3

    state = json.loads((run.state / "run.json").read_text())
    return boto3.client("sqs", endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def redrive(run: LocalRun, *args: str) -> subprocess.CompletedProcess:
    # stdin is no terminal here: nobody is asked, and only --yes moves.
    return subprocess.run([sys.executable, "-m", "ops.redrive", *args], cwd=ROOT, env=run.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def total(sqs, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_a_canvas_dead_letter_goes_back_only_with_yes(run, sqs):
    dlq = sqs.get_queue_url(QueueName="canvas-live-events-local-dlq")["QueueUrl"]
    event = canvas_event("failed", iso(datetime.now(timezone.utc) - timedelta(minutes=5)), "8801")
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event))
    batch = f"{run.base}/batches/{ROOT_ACCOUNT_UUID}/8801"

    out = redrive(run, "--which", "canvas")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "canvas: canvas-live-events-local-dlq holds 1 message(s) (1 waiting, 0 in flight, 0 delayed); " \
           "with --yes: back to canvas-live-events-local" in out.stdout
    assert "nothing moved: add --yes" in out.stdout
    assert total(sqs, dlq) == 1 and get(batch)[0] == 404

    out = redrive(run, "--which", "canvas", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "canvas: 1 message(s) moved back to canvas-live-events-local" in out.stdout
    assert "canvas-live-events-local-dlq now holds 0 message(s)" in out.stdout
    status, item = wait_until(lambda: (lambda answer: answer if answer[0] == 200 else None)(get(batch)), 20,
                              "the redriven event's batch")
    assert item["sis_batch_id"] == "8801" and item["workflow_state"] == "failed"
    assert total(sqs, dlq) == 0


def test_a_parked_alert_goes_back_to_the_retry_queue_and_is_published(run, sqs):
    # A real alert's content (a failed import's), parked as the notifier parks one, under its own alert_id.
    run.send(failed_import("8802", iso(datetime.now(timezone.utc) - timedelta(minutes=10))))
    sent = wait_until(lambda: [n for n in run.notifications() if n["message"].get("sis_batch_id") == "8802"], 20,
                      "the failed import's alert")[0]
    alert = {"targets": ["topic"], "subject": sent["subject"], "message": {**sent["message"], "alert_id": "parked-1"},
             "attributes": sent["attributes"]}
    failures = sqs.get_queue_url(QueueName="canvas-sis-notifier-failures-local")["QueueUrl"]
    sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({"reason": "age limit", "alert": alert}))
    sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({"reason": "KeyError", "record": {}}))

    out = redrive(run, "--which", "alerts")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "alerts: canvas-sis-notifier-failures-local holds 2 message(s) (2 waiting, 0 in flight, 0 delayed)" \
        in out.stdout and "nothing moved" in out.stdout
    assert total(sqs, failures) == 2

    out = redrive(run, "--which", "alerts", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "alerts: 1 parked alert(s) put back on the retry queue; 1 other message(s)" in out.stdout
    wait_until(lambda: [n for n in run.notifications() if n["message"].get("alert_id") == "parked-1"], 30,
               "the parked alert, published by the retry function")
    assert total(sqs, failures) == 1


def test_eventbridge_locally_says_what_there_is_and_moves_nothing(run):
    out = redrive(run, "--which", "eventbridge", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines() == [
        "eventbridge: the local run has no EventBridge dead-letter queue (an event its function refuses is said in "
        "the console)", "nothing to move (local run)"]
