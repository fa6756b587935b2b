"""ops.redrive: dead letters go back where they came from, only when asked to, after an exact count
that receives nothing. Deployed stacks are played by moto in-process (their outputs stubbed); the
command line's refusals run in a subprocess with no AWS credentials or region anywhere."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

import ops.redrive as redrive
from tests.factories import T0, at, canvas_event

ROOT = Path(__file__).resolve().parents[2]


def make_queue(sqs, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def receive_all(sqs, url: str) -> list[dict]:
    """Every message a queue will give now (distinct ids), in bounded receives; visible again after."""
    got: dict[str, dict] = {}
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        got.update({m["MessageId"]: m for m in messages})
    for message in got.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(got.values())


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the operator's answer typed in."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture
def stack(monkeypatch):
    """A deployed stack's queues and bus on moto; its outputs as the stack would give them."""
    with mock_aws():
        sqs, events = boto3.client("sqs"), boto3.client("events")
        canvas_url, canvas_arn = make_queue(sqs, "canvas-live-events-prod")
        dlq_url, dlq_arn = make_queue(sqs, "canvas-live-events-prod-dlq")
        retry_url, _ = make_queue(sqs, "canvas-sis-alert-retries-prod")
        retry_dlq_url, retry_dlq_arn = make_queue(sqs, "canvas-sis-alert-retries-prod-dlq")
        failures_url, failures_arn = make_queue(sqs, "canvas-sis-notifier-failures-prod")
        eb_dlq_url, eb_dlq_arn = make_queue(sqs, "canvas-sis-eventbridge-dlq-prod")
        events.create_event_bus(Name="canvas-sis")
        catch_url, catch_arn = make_queue(sqs, "catch")
        events.put_rule(Name="all", EventBusName="canvas-sis",
                        EventPattern=json.dumps({"source": ["canvas.live-events"]}))
        events.put_targets(Rule="all", EventBusName="canvas-sis", Targets=[{"Id": "q", "Arn": catch_arn}])
        outputs = {"CanvasQueueDlqArn": dlq_arn, "AlertRetryDlqArn": retry_dlq_arn, "AlertRetryQueueUrl": retry_url,
                   "NotifierFailureQueueArn": failures_arn, "EventBridgeDlqArn": eb_dlq_arn,
                   "EventBusName": "canvas-sis"}
        asked = []
        monkeypatch.setattr(redrive, "stack_outputs", lambda cloudformation, name: asked.append(name) or outputs)
        # moto has no message move tasks: the request itself is checked with botocore's Stubber below.
        tasks = []
        monkeypatch.setattr(redrive, "start_move_task", lambda client, arn: tasks.append(arn) or "handle-0123456789abcdef")
        yield type("Stack", (), dict(sqs=sqs, outputs=outputs, tasks=tasks, asked=asked, dlq_url=dlq_url,
                                     dlq_arn=dlq_arn, retry_url=retry_url, retry_dlq_arn=retry_dlq_arn,
                                     failures_url=failures_url, eb_dlq_url=eb_dlq_url, catch_url=catch_url,
                                     canvas_url=canvas_url))


def test_a_move_task_names_only_its_source_so_sqs_moves_each_message_back_where_it_came_from():
    sqs = boto3.client("sqs", region_name="us-east-1")
    arn = "arn:aws:sqs:us-east-1:123456789012:canvas-live-events-prod-dlq"
    with Stubber(sqs) as stub:
        stub.add_response("start_message_move_task", {"TaskHandle": "handle-123"}, {"SourceArn": arn})
        assert redrive.start_move_task(sqs, arn) == "handle-123"
        stub.assert_no_pending_responses()


def test_the_count_is_exact_from_attributes_and_nothing_moves_without_yes(stack, capsys, not_a_terminal):
    sqs = stack.sqs
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}", DelaySeconds=600)
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=1, VisibilityTimeout=600)  # one in flight

    assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "canvas"]) == 0
    out = capsys.readouterr().out
    assert "canvas: canvas-live-events-prod-dlq holds 3 message(s) (1 waiting, 1 in flight, 1 delayed)" in out
    assert "nothing moved: add --yes" in out
    assert stack.tasks == [] and stack.asked == ["CanvasSisImports-prod"]
    assert len(receive_all(sqs, stack.dlq_url)) == 1  # the waiting one is still receivable: the count hid nothing

    assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "canvas", "--dry-run"]) == 0
    assert "dry run: nothing moved" in capsys.readouterr().out and stack.tasks == []

    assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "canvas", "--yes"]) == 0
    assert stack.tasks == [stack.dlq_arn]
    assert "SQS message move task handle-0123456789abcdef started" in capsys.readouterr().out


@pytest.mark.parametrize(("answer", "moves"), [("yes\n", True), ("YES \n", True), ("no\n", False), ("", False),
                                               ("y\n", False)])
def test_at_a_terminal_only_a_typed_yes_moves(stack, capsys, monkeypatch, answer, moves):
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}")
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "canvas"]) == 0
    out = capsys.readouterr().out
    assert "Type yes to move" in out
    assert stack.tasks == ([stack.dlq_arn] if moves else [])
    assert ("nothing moved" in out) is not moves


def test_eventbridge_dry_run_counts_all_25_and_leaves_all_25_receivable(stack, capsys, not_a_terminal):
    sqs = stack.sqs
    for number in range(25):
        event = canvas_event("failed", at(T0, 60), str(9000 + number))
        sqs.send_message(QueueUrl=stack.eb_dlq_url, MessageBody=json.dumps(
            {"source": "canvas.live-events", "detail-type": "sis_batch_updated", "detail": event}))

    for args in (["--dry-run"], []):  # the dry run, and a run without --yes: both only count
        assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "eventbridge", *args]) == 0
        out = capsys.readouterr().out
        assert "eventbridge: canvas-sis-eventbridge-dlq-prod holds 25 message(s) (25 waiting, 0 in flight, " \
               "0 delayed)" in out
    assert len(receive_all(sqs, stack.eb_dlq_url)) == 25
    assert receive_all(sqs, stack.catch_url) == []  # nothing was put on the bus


def test_eventbridge_dead_letters_are_put_back_on_the_bus_and_deleted_and_a_non_event_stays(stack, capsys):
    sqs = stack.sqs
    event = canvas_event("failed", at(T0, 60))
    target_dlq_body = {"source": "canvas.live-events", "detail-type": "sis_batch_updated", "detail": event}
    for _ in range(12):  # more than one receive's worth
        sqs.send_message(QueueUrl=stack.eb_dlq_url, MessageBody=json.dumps(target_dlq_body))
    sqs.send_message(QueueUrl=stack.eb_dlq_url, MessageBody=json.dumps({"requestPayload": target_dlq_body}))
    sqs.send_message(QueueUrl=stack.eb_dlq_url, MessageBody="not an event")

    assert redrive.main(["--stack", "CanvasSisImports-prod", "--which", "eventbridge", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "eventbridge: 13 event(s) put back on canvas-sis; 1 message(s) that are not an event left" in out
    (left,) = receive_all(sqs, stack.eb_dlq_url)  # visible again at once, not after the visibility timeout
    assert left["Body"] == "not an event"
    delivered = receive_all(sqs, stack.catch_url)
    assert [json.loads(m["Body"])["detail"] for m in delivered] == [event] * 13


def test_an_event_the_bus_refuses_stays_and_the_run_fails_in_one_line(stack, capsys, monkeypatch):
    sqs = stack.sqs
    body = {"source": "canvas.live-events", "detail-type": "sis_batch_updated", "detail": canvas_event("failed", T0)}
    sqs.send_message(QueueUrl=stack.eb_dlq_url, MessageBody=json.dumps(body))
    events = boto3.client("events")
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]})
        summary = None
        with pytest.raises(redrive.RedriveError) as raised:
            summary = redrive.redrive_eventbridge(sqs, events, stack.outputs["EventBridgeDlqArn"], "canvas-sis",
                                                  dry_run=False)
    assert summary is None
    assert "the bus refused 1 (InternalFailure): they stay in canvas-sis-eventbridge-dlq-prod" in str(raised.value)
    assert len(receive_all(sqs, stack.eb_dlq_url)) == 1


def test_which_alerts_puts_parked_alerts_back_on_the_retry_queue_and_leaves_the_rest(stack, capsys, not_a_terminal):
    sqs = stack.sqs
    alert = {"targets": ["topic", "chat"], "subject": "SIS import 1 failed",
             "message": {"alert_id": "a1", "sis_batch_id": "1"}, "attributes": {"outcome": "failure"}}
    sqs.send_message(QueueUrl=stack.failures_url, MessageBody=json.dumps({"reason": "age limit", "alert": alert}))
    sqs.send_message(QueueUrl=stack.failures_url, MessageBody=json.dumps({"reason": "KeyError", "record": {}}))
    sqs.send_message(QueueUrl=stack.failures_url, MessageBody=json.dumps({"DDBStreamBatchInfo": {}}))

    assert redrive.main(["--stack", "s", "--which", "alerts"]) == 0
    out = capsys.readouterr().out
    assert "alerts: canvas-sis-notifier-failures-prod holds 3 message(s) (3 waiting, 0 in flight, 0 delayed)" in out
    assert "alerts: canvas-sis-alert-retries-prod-dlq is empty" in out
    assert receive_all(sqs, stack.retry_url) == [] and len(receive_all(sqs, stack.failures_url)) == 3

    assert redrive.main(["--stack", "s", "--which", "alerts", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "1 parked alert(s) put back on the retry queue; 2 other message(s)" in out
    (moved,) = receive_all(sqs, stack.retry_url)
    assert json.loads(moved["Body"]) == alert  # the retry queue's own format: AlertRetry publishes it as is
    assert stack.tasks == []  # the retry queue's dead-letter queue was empty: no move task for it
    left = receive_all(sqs, stack.failures_url)  # visible again at once
    assert sorted(json.loads(m["Body"]).get("reason", "") for m in left) == ["", "KeyError"]


def test_alerts_sns_refused_for_a_day_go_back_by_a_move_task(stack, capsys):
    stack.sqs.send_message(QueueUrl=stack.outputs["AlertRetryQueueUrl"].replace("retries-prod", "retries-prod-dlq"),
                           MessageBody="{}")
    assert redrive.main(["--stack", "s", "--which", "alerts", "--yes"]) == 0
    assert stack.tasks == [stack.retry_dlq_arn]


def test_which_alerts_on_a_stack_without_the_retry_queue_output_says_so(stack, capsys):
    del stack.outputs["AlertRetryQueueUrl"]
    assert redrive.main(["--stack", "s", "--which", "alerts"]) == 0
    assert "no output AlertRetryQueueUrl" in capsys.readouterr().out


def test_with_nothing_waiting_it_says_so_and_asks_nothing(stack, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    assert redrive.main(["--stack", "s"]) == 0
    out = capsys.readouterr().out
    assert "nothing to move (s)" in out and "Type yes" not in out
    assert stack.tasks == []


def test_a_stack_that_does_not_exist_is_one_line_and_exit_1(capsys):
    with mock_aws():
        assert redrive.main(["--stack", "CanvasSisImports-nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("make redrive: AWS refused DescribeStacks: ValidationError")


@pytest.mark.parametrize("args", [["--yes", "--dry-run"], ["--which", "everything"], ["--stack", " "], ["extra"]])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exited:
        redrive.main(args)
    assert exited.value.code == 2
    assert "usage: make redrive" in capsys.readouterr().err


def test_local_move_back_keeps_body_and_attributes():
    with mock_aws():
        sqs = boto3.client("sqs")
        source_url, _ = make_queue(sqs, "source")
        dlq_url, _ = make_queue(sqs, "source-dlq")
        for number in range(23):  # more than two receives' worth
            sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{number}",
                             MessageAttributes={"n": {"DataType": "Number", "StringValue": str(number)}})
        assert redrive.move_back(sqs, dlq_url, source_url, expected=23) == 23
        moved = receive_all(sqs, source_url)
        assert sorted(m["Body"] for m in moved) == sorted(f"m{n}" for n in range(23))
        assert all(m["Body"] == f"m{m['MessageAttributes']['n']['StringValue']}" for m in moved)
        assert receive_all(sqs, dlq_url) == []


def test_local_move_back_is_bounded_by_the_count_it_was_given():
    with mock_aws():
        sqs = boto3.client("sqs")
        source_url, _ = make_queue(sqs, "source")
        dlq_url, _ = make_queue(sqs, "source-dlq")
        for number in range(70):
            sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{number}")
        # Counted 0 (messages arriving since): a margin of 5 receives of 10, then it stops, never endless.
        assert redrive.move_back(sqs, dlq_url, source_url, expected=0) == 50
        assert len(receive_all(sqs, dlq_url)) == 20


# The command line, as `make redrive` runs it.

def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.redrive", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def no_aws(tmp_path) -> dict[str, str]:
    """No AWS anywhere: no variables, no config or credentials file, no instance metadata; no local run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", LOCAL_STATE_DIR=str(tmp_path))
    return env


def test_no_args_and_no_local_run_is_one_line_exit_1(no_aws):
    out = cli(env=no_aws)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("make redrive: no local run found") and "--stack" in out.stderr


def test_a_stack_without_credentials_is_one_line_exit_1(no_aws):
    out = cli("--stack", "CanvasSisImports-prod", "--yes", env={**no_aws, "AWS_REGION": "us-east-1"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("make redrive: no AWS credentials found") and "CanvasSisImports-prod" in out.stderr


def test_a_stack_without_a_region_is_one_line_exit_1(no_aws):
    out = cli("--stack", "CanvasSisImports-prod", env={**no_aws, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                                                       "AWS_SECRET_ACCESS_KEY": "not-a-real-secret"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("make redrive: no AWS region")
    assert "not-a-real-secret" not in out.stderr


def test_help_says_the_exit_codes_and_that_there_is_no_default_stack(no_aws):
    out = cli("--help", env=no_aws)
    assert out.returncode == 0
    assert "Exit: 0 done" in out.stdout and "1 it cannot" in out.stdout and "2 usage error" in out.stdout
    assert "There is no default stack" in out.stdout and "--yes" in out.stdout
