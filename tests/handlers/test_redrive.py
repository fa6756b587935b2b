"""ops.redrive: dead letters go back where they came from."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from ops.redrive import redrive_canvas, redrive_eventbridge
from tests.factories import T0, at, canvas_event


def test_canvas_dead_letters_are_moved_back_by_a_message_move_task():
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="canvas-live-events-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.send_message(QueueUrl=url, MessageBody="{}")
        assert "1 message(s)" in redrive_canvas(sqs, arn, dry_run=True)
        # moto has no message move tasks: check the request we make with botocore's Stubber.
        with Stubber(sqs) as stub:
            stub.add_response("get_queue_url", {"QueueUrl": url})
            stub.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "1"}})
            stub.add_response("start_message_move_task", {"TaskHandle": "handle-123"}, {"SourceArn": arn})
            assert "moving about 1" in redrive_canvas(sqs, arn, dry_run=False)
            stub.assert_no_pending_responses()


def test_eventbridge_dead_letters_are_put_back_on_the_bus_and_deleted():
    with mock_aws():
        sqs, events = boto3.client("sqs"), boto3.client("events")
        events.create_event_bus(Name="canvas-sis")
        catch = sqs.create_queue(QueueName="catch")["QueueUrl"]
        catch_arn = sqs.get_queue_attributes(QueueUrl=catch, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName="canvas-sis", EventPattern=json.dumps({"source": ["canvas.live-events"]}))
        events.put_targets(Rule="all", EventBusName="canvas-sis", Targets=[{"Id": "q", "Arn": catch_arn}])
        dlq = sqs.create_queue(QueueName="eventbridge-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        event = canvas_event("failed", at(T0, 60))
        target_dlq_body = {"source": "canvas.live-events", "detail-type": "sis_batch_updated", "detail": event}
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(target_dlq_body))
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"requestPayload": target_dlq_body}))

        assert redrive_eventbridge(sqs, events, dlq_arn, "canvas-sis", dry_run=False).startswith("eventbridge: 2 ")
        assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
        delivered = sqs.receive_message(QueueUrl=catch, MaxNumberOfMessages=10)["Messages"]
        assert [json.loads(m["Body"])["detail"] for m in delivered] == [event, event]


def test_which_alerts_puts_parked_alerts_back_on_the_retry_queue_and_leaves_the_rest(monkeypatch, capsys):
    import ops.redrive as redrive

    with mock_aws():
        sqs = boto3.client("sqs")

        def queue(name):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        failures_url, failures_arn = queue("notifier-failures")
        retry_url, _ = queue("alert-retries")
        _, retry_dlq_arn = queue("alert-retries-dlq")
        alert = {"targets": ["topic", "chat"], "subject": "SIS import 1 failed",
                 "message": {"alert_id": "a1", "sis_batch_id": "1"}, "attributes": {"outcome": "failure"}}
        sqs.send_message(QueueUrl=failures_url, MessageBody=json.dumps({"reason": "age limit", "alert": alert}))
        sqs.send_message(QueueUrl=failures_url, MessageBody=json.dumps({"reason": "KeyError", "record": {}}))
        sqs.send_message(QueueUrl=failures_url, MessageBody=json.dumps({"DDBStreamBatchInfo": {}}))
        monkeypatch.setattr(redrive, "stack_outputs", lambda cloudformation, stack: {
            "NotifierFailureQueueArn": failures_arn, "AlertRetryQueueUrl": retry_url,
            "AlertRetryDlqArn": retry_dlq_arn})
        assert redrive.main(["--stack", "s", "--which", "alerts"]) == 0
        out = capsys.readouterr().out
        assert "1 parked alert(s) put back on the retry queue; 2 other message(s)" in out
        (moved,) = sqs.receive_message(QueueUrl=retry_url)["Messages"]
        assert json.loads(moved["Body"]) == alert  # the retry queue's own format: AlertRetry publishes it as is


def test_which_alerts_on_a_stack_without_the_retry_queue_output_says_so(monkeypatch, capsys):
    import ops.redrive as redrive

    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        monkeypatch.setattr(redrive, "stack_outputs", lambda cloudformation, stack: {
            "NotifierFailureQueueArn": arn, "AlertRetryDlqArn": arn})
        redrive.main(["--which", "alerts"])
        assert "no output AlertRetryQueueUrl" in capsys.readouterr().out
