"""`make run`'s stream poller retries as the stack's event source mapping is configured (the numbers
of sis_imports/core/delivery.py, which infra/alerts.py uses): until a record's age limit, with no retry
count, splitting a failing batch in half. And the whole local run through a 60 s outage of SNS and
SQS sends together: no alert is lost, none comes twice."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from local.outage import OUTAGE_CONTROL
from local.pollers import StreamPoller
from sis_imports.core.delivery import STREAM_BATCH_SIZE, STREAM_MAX_RECORD_AGE_SECONDS
from tests.e2e.test_local_parts import FakeStreams
from tests.e2e.test_local_run import OPENER, LocalRun, wait_until
from tests.factories import T0, at, canvas_event, failed_import

pytestmark = pytest.mark.e2e


def record(n: int, created: float) -> dict:
    return {"eventID": str(n), "eventName": "MODIFY",
            "dynamodb": {"SequenceNumber": f"{n:03d}", "ApproximateCreationDateTime": created}}


class FakeSqs:
    def __init__(self):
        self.sent = []

    def send_message(self, QueueUrl, MessageBody):
        self.sent.append((QueueUrl, json.loads(MessageBody)))


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_failing_record_is_retried_past_any_count_until_its_age_limit_then_described():
    clock = Clock(1_000_000.0)
    calls = []

    def notifier(event, context):  # 001 goes through; 002 always fails (SNS and the retry queue down)
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(numbers)
        return {"batchItemFailures": [{"itemIdentifier": n} for n in numbers if n >= "002"]}

    sqs = FakeSqs()
    streams = FakeStreams([record(1, clock.now), record(2, clock.now), record(3, clock.now)])
    poller = StreamPoller(threading.Event(), "arn:stream", notifier, streams=streams,
                          failures_url="failures", sqs=sqs, clock=clock)
    poller.stop.set()  # no back-off wait between attempts
    for _ in range(50):  # far past the old count of 10
        clock.now += 60
        poller.poll()
    assert [r["dynamodb"]["SequenceNumber"] for r in poller.pending] == ["002", "003"]
    assert calls[0] == ["001", "002", "003"] and calls[-1] == ["002", "003"] and len(calls) == 50
    assert sqs.sent == []
    clock.now = 1_000_000.0 + STREAM_MAX_RECORD_AGE_SECONDS  # at the limit: still retried
    poller.poll()
    assert len(calls) == 51 and sqs.sent == []
    clock.now += 1  # past it: given up, and described as Lambda's on-failure destination would
    assert poller.poll() is False
    assert poller.pending == [] and len(calls) == 51
    ((url, description),) = sqs.sent
    assert url == "failures" and description["requestContext"]["condition"] == "RecordAgeExceeded"
    info = description["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("002", "003", 2)


def test_an_invocation_that_fails_whole_is_retried_on_halves_until_the_bad_record_is_alone():
    now = time.time()
    batches, done = [], []

    def notifier(event, context):  # record 013 makes any invocation with others fail whole (a timeout, say)
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        batches.append(numbers)
        if "013" in numbers and len(numbers) > 1:
            raise RuntimeError("Task timed out")
        done.extend(numbers)
        return {"batchItemFailures": []}

    count = STREAM_BATCH_SIZE + 5
    poller = StreamPoller(threading.Event(), "arn:stream", notifier,
                          streams=FakeStreams([record(n, now) for n in range(1, count + 1)]))
    poller.stop.set()
    for _ in range(20):
        poller.poll()
        if not poller.pending:
            break
    assert done == [f"{n:03d}" for n in range(1, count + 1)]  # each once, in order
    assert ["013"] in batches  # alone at last: the records around it were not held
    assert [len(b) for b in batches[:3]] == [STREAM_BATCH_SIZE, STREAM_BATCH_SIZE // 2, count - 12]
    assert len(batches) <= 2 * 5 + 2  # halving: a handful of invocations, not one per record


def control(run: LocalRun, route: str, body: dict) -> tuple[int, dict]:
    state = json.loads((run.state / "run.json").read_text())
    request = urllib.request.Request(f"{run.base}{route.split(' ', 1)[1]}", data=json.dumps(body).encode(),
                                     method="POST", headers={"content-type": "application/json",
                                                             "X-Local-Control": state["control_key"]})
    with OPENER.open(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_sns_and_sqs_down_together_for_60_seconds_lose_no_alert(tmp_path):
    run = LocalRun(tmp_path, SIS_AUTH="none").wait_ready()
    try:
        started = time.monotonic()
        status, _ = control(run, OUTAGE_CONTROL, {"seconds": 60})
        assert status == 200
        events = []
        for n in range(6):
            events += failed_import(f"880{n}")
        events += [canvas_event("restoring", at(T0, 3600), "8800"), canvas_event("restored", at(T0, 3700), "8800")]
        run.send(events)
        time.sleep(5)
        assert run.notifications() == []  # nothing got out: SNS is down, and so is the retry queue
        expected = {(f"880{n}", "failed_with_messages") for n in range(6)} | {("8800", "restored")}

        def delivered():
            lines = run.notifications()
            return lines if {(m["message"]["sis_batch_id"], m["message"]["workflow_state"])
                             for m in lines} >= expected else None

        lines = wait_until(delivered, 150, "every alert after the outage")
        took = time.monotonic() - started
        time.sleep(3)  # a repeat would come now
        lines = run.notifications()
        print(f"outage of 60 s: {len(lines)} alerts, all out {took:.1f} s after it began")
        assert len(lines) == len(expected)  # none lost, none twice
        assert len({m["message"]["alert_id"] for m in lines}) == len(expected)
        assert took >= 60  # none slipped through during the outage (timed from before it began)
        assert "gave up" not in run.log()
    finally:
        run.stop()
