"""Ingest -> table -> stream -> notifier -> SNS, on moto: alerts, retries, secrets, other ingress."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from local.lambda_context import LambdaContext
from tests.conftest import http_event
from tests.factories import ACCESS_TOKEN, CREATED_EXAMPLE, T0, at, canvas_event, failed_import



@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def post(handlers, event):
    return handlers["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))


def notifier(handlers):
    return handlers["notifier"].handler


def test_a_failed_import_gives_exactly_one_alert_with_filterable_attributes(aws, none_mode, handlers_fresh):
    for event in failed_import() + failed_import():  # everything twice
        assert post(handlers_fresh, event)["statusCode"] == 200
    aws.pump_stream(notifier(handlers_fresh))
    (alert,) = aws.alerts()
    assert alert["subject"] == "SIS import 1440004 failed_with_messages on oxana.instructure.com"
    assert alert["attributes"] == {
        "workflow_state": "failed_with_messages",
        "outcome": "failure",
        "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
        "account_id": "1",
        "alert_id": alert["message"]["alert_id"],
        "type": "sis_import_finished",
    }
    assert alert["message"]["previous_state"] == "importing"
    assert alert["message"]["duration_seconds"] == 61.5


def test_the_access_token_appears_nowhere(aws, none_mode, handlers_fresh, capsys, captured_logs):
    responses = [post(handlers_fresh, CREATED_EXAMPLE)]
    for state, seconds in (("created", 0), ("importing", 3), ("imported", 30)):
        raw = canvas_event(state, at(CREATED_EXAMPLE["metadata"]["event_time"], seconds), "31048324",
                           request_context=True)
        responses.append(post(handlers_fresh, raw))
    bad = json.loads(json.dumps(CREATED_EXAMPLE))
    bad["body"]["workflow_state"] = "nope"
    responses.append(post(handlers_fresh, bad))
    aws.pump_stream(notifier(handlers_fresh))
    alerts = aws.alerts()
    assert len(alerts) == 1
    stored = json.dumps(aws.scan())
    assert "/api/v1/accounts/self/sis_imports.json\"" in stored  # the url, without its query
    printed, logs = capsys.readouterr(), captured_logs.getvalue()
    assert "sis batch event applied" in logs and "event rejected" in logs  # the logs were captured
    for place in (stored, json.dumps(responses), json.dumps(alerts), logs, printed.out, printed.err):
        assert ACCESS_TOKEN not in place
        assert "93.184.216.34" not in place  # client_ip: never kept, logged or alerted


def test_sqs_batch_with_one_invalid_message_reports_only_that_one(aws, handlers_fresh):
    events = failed_import("4001")
    bad = canvas_event("created", T0, "4002")
    bad["metadata"]["event_time"] = "yesterday"
    bodies = [json.dumps(events[0]), json.dumps(bad), "not json", json.dumps(events[1]),
              json.dumps({"metadata": {"event_name": "course_created"}, "body": {}})]
    records = [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {}, "messageAttributes": {},
         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:canvas-live-events",
         "awsRegion": "us-east-1"}
        for i, body in enumerate(bodies)
    ]
    consumer = handlers_fresh["sqs_consumer"].handler
    response = consumer({"Records": records}, LambdaContext())
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m1", "m2"]
    (item,) = aws.scan()
    assert item["workflow_state"] == {"S": "created"} and len(item["history"]["L"]) == 2
    consumer({"Records": [records[0], records[3]]}, LambdaContext())  # redelivery changes nothing
    assert aws.scan() == [item]


def test_eventbridge_events_apply_exactly_like_https_ones(aws, none_mode, handlers_fresh):
    sequence = failed_import("5001")
    https_twin = failed_import("5002")
    for event in https_twin:
        post(handlers_fresh, event)
    eventbridge = handlers_fresh["eventbridge"].handler
    for event in sequence:
        eb_event = {"version": "0", "id": "e-1", "detail-type": event["metadata"]["event_name"],
                    "source": "canvas.live-events", "detail": event}
        assert eventbridge(eb_event, LambdaContext())["status"] == "applied"
    aws.pump_stream(notifier(handlers_fresh))
    items = {i["sis_batch_id"]["S"]: i for i in aws.scan()}
    for item in items.values():
        item.pop("sis_batch_id"), item.pop("expires_at")
    assert items["5001"] == items["5002"]
    alerts = aws.alerts()
    assert sorted(a["message"]["sis_batch_id"] for a in alerts) == ["5001", "5002"]
    with pytest.raises(Exception, match="event_time"):
        bad = {**sequence[0], "metadata": {**sequence[0]["metadata"], "event_time": "now"}}
        eventbridge({"id": "e-2", "detail": bad}, LambdaContext())


def test_an_sqs_batch_of_only_invalid_messages_is_reported_not_raised(aws, handlers_fresh):
    record = {"messageId": "only", "receiptHandle": "r", "body": "{}", "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:canvas-live-events",
              "awsRegion": "us-east-1"}
    response = handlers_fresh["sqs_consumer"].handler({"Records": [record]}, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "only"}]}
    assert aws.scan() == []
