"""Alert delivery through the real notifier on moto: an SNS outage loses nothing, an unreadable record
holds back only its own batch, a timeout never makes a publish happen twice, and one publish carries
a message per protocol (the email text for email subscribers)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

import sis_imports.usecases.notify as notifier_module
from local.lambda_context import LambdaContext
from sis_imports.core.alert_text import email_text
from tests.conftest import http_event
from tests.factories import T0, at, canvas_event, failed_import


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def post(handlers, event):
    assert handlers["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200


def fail(service_operation: str, times: list[int]):
    """Makes the next `times[0]` calls of an operation fail (an outage), on clients made from now on."""

    def hook(**kwargs):
        if times[0] > 0:
            times[0] -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "outage"}}, service_operation)

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register(f"before-call.{service_operation}", hook)


def retry_records(aws) -> list[dict]:
    out = []
    while messages := aws.sqs.receive_message(QueueUrl=aws.retry_queue_url, MaxNumberOfMessages=10,
                                              AttributeNames=["All"]).get("Messages", []):
        out += [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                 "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": "",
                 "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:retries",
                 "awsRegion": "us-east-1"} for m in messages]
    return out


def test_an_sns_outage_longer_than_any_retry_loses_no_alert(aws, none_mode, handlers_fresh):
    outage = [10**6]
    fail("sns.Publish", outage)
    for event in failed_import("2001") + failed_import("2002") + [
            canvas_event("restoring", at(T0, 3600), "2001"), canvas_event("restored", at(T0, 3700), "2001")]:
        post(handlers_fresh, event)
    assert aws.pump_stream(handlers_fresh["notifier"].handler) == 1  # no record failed: all deferred
    assert aws.alerts() == []
    retry = handlers_fresh["alert_retry"].handler
    records = retry_records(aws)
    assert len(records) == 3
    answer = retry({"Records": records}, LambdaContext())  # SNS still down: they stay on the queue
    assert len(answer["batchItemFailures"]) == 3
    outage[0] = 0  # SNS is back
    answer = retry({"Records": records}, LambdaContext())
    assert answer == {"batchItemFailures": []}
    alerts = aws.alerts()
    assert [(a["message"]["sis_batch_id"], a["message"]["workflow_state"]) for a in alerts] == [
        ("2001", "failed_with_messages"), ("2002", "failed_with_messages"), ("2001", "restored")]
    assert len({a["message"]["alert_id"] for a in alerts}) == 3


def test_when_sns_and_the_retry_queue_both_fail_later_records_are_held_back_not_published_twice(
    aws, none_mode, handlers_fresh
):
    fail("sns.Publish", [1])
    boto3.DEFAULT_SESSION.events.register("before-call.sqs.SendMessage", _fail_once())
    post(handlers_fresh, canvas_event("failed", T0, "3001"))
    post(handlers_fresh, canvas_event("imported", T0, "3002"))
    records = aws.new_stream_records()
    notifier = handlers_fresh["notifier"].handler
    response = notifier({"Records": records}, LambdaContext())
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert failed == numbers[numbers.index(failed[0]):]  # everything from the first failure on
    assert notifier({"Records": records[numbers.index(failed[0]):]}, LambdaContext())["batchItemFailures"] == []
    assert sorted(a["message"]["sis_batch_id"] for a in aws.alerts()) == ["3001", "3002"]


def _fail_once():
    state = {"left": 1}

    def hook(**kwargs):
        if state["left"]:
            state["left"] -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "outage"}}, "SendMessage")

    return hook


def test_an_unreadable_record_holds_back_only_its_own_batch_and_says_why(aws, none_mode, handlers_fresh):
    # The reproduction: an item without first_event_at ahead of two valid ones.
    def damaged(state: str) -> None:
        aws.dynamodb.put_item(TableName="canvas-sis-batches-local", Item={
            "root_account_uuid": {"S": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"}, "sis_batch_id": {"S": "4000"},
            "workflow_state": {"S": state}, "account_id": {"S": "1"}, "event_time": {"S": T0},
            "ended": {"BOOL": True}, "history": {"L": []}})

    damaged("failed")
    post(handlers_fresh, canvas_event("failed", T0, "4001"))
    post(handlers_fresh, canvas_event("imported", T0, "4002"))
    damaged("restored")  # a later record of the damaged batch
    assert aws.pump_stream(handlers_fresh["notifier"].handler) == 1  # nobody waits for a retry
    assert sorted(a["message"]["sis_batch_id"] for a in aws.alerts()) == ["4001", "4002"]
    failures = aws.drain(aws.failures_url)
    assert [f["record"]["dynamodb"]["Keys"]["sis_batch_id"]["S"] for f in failures] == ["4000", "4000"]
    assert "KeyError" in failures[0]["reason"] and "first_event_at" in failures[0]["reason"]
    assert failures[1]["reason"].startswith("held back")


class Killed(BaseException):
    """Lambda ending an invocation at its timeout: nothing of the handler runs after it."""


class Invocation(LambdaContext):
    """A 90 s invocation (the notifier's timeout) in which each publish takes as long as an alert can at
    worst (every call at its client's limits); Lambda kills it when the time is up."""

    def __init__(self, left_ms: int = 90_000, publish_ms: int = int(notifier_module.ALERT_WORST_S * 1000) - 1):
        super().__init__(function_name="notifier")
        self.left_ms, self.publish_ms = left_ms, publish_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms

    def published(self, **kwargs) -> None:
        self.left_ms -= self.publish_ms
        if self.left_ms <= 0:
            raise Killed()  # after the publish went out: the reproduction


def test_a_notifier_running_out_of_time_never_publishes_twice(aws, none_mode, handlers_fresh):
    for n in range(4):
        post(handlers_fresh, canvas_event("failed", T0, f"500{n}"))
    records = aws.new_stream_records()
    notifier = handlers_fresh["notifier"].handler
    current: list[Invocation] = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("after-call.sns.Publish", lambda **kw: current[-1].published(**kw))
    handlers_fresh["notifier"].app.cache_clear()  # a client that reports its publishes
    pending, invocations = records, 0
    while pending and invocations < 10:
        invocations += 1
        current.append(Invocation())
        try:
            response = notifier({"Records": pending}, current[-1])
        except Killed:
            continue  # Lambda delivers the whole batch again
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        numbers = [r["dynamodb"]["SequenceNumber"] for r in pending]
        pending = pending[min((numbers.index(n) for n in failed), default=len(pending)):]
    published = [a["message"]["sis_batch_id"] for a in aws.alerts()]
    assert sorted(published) == ["5000", "5001", "5002", "5003"]  # D0, D1, D2, D3: no repeats
    assert invocations == 2  # three records fit in the first; the fourth is left for the next


def test_one_publish_carries_text_for_email_and_json_for_the_rest(aws, none_mode, handlers_fresh):
    calls = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sns.Publish", lambda params, **kw: calls.append(dict(params)))
    for event in failed_import("6001"):
        post(handlers_fresh, event)
    aws.pump_stream(handlers_fresh["notifier"].handler)
    (params,) = calls
    assert params["MessageStructure"] == "json"
    per_protocol = json.loads(params["Message"])
    message = json.loads(per_protocol["default"])
    # SNS gives `default` to every protocol not named (sqs, lambda, http/https, email-json): one JSON copy.
    assert set(per_protocol) == {"default", "email", "sms"}
    assert per_protocol["email"] == email_text(message)
    assert per_protocol["email"].startswith("The SIS import 6001 on oxana.instructure.com ended: failed_with_messages")
    (alert,) = aws.alerts()
    assert alert["message"] == message  # an SQS subscriber gets the JSON


def huge_alert(entries: int = 3_000):
    """An alert bigger than SNS takes, whatever the cause (here a long history): 10 + 10 rows of emoji too."""
    from sis_imports.core.alerts import Alert

    rows = [{"file": "😀" * 500, "message": "😀" * 500} for _ in range(10)]
    message = {"type": "sis_import_finished", "alert_id": "a" * 32, "root_account_uuid": "U" * 128,
               "account_id": "1", "sis_batch_id": "9" * 128, "workflow_state": "failed_with_messages",
               "outcome": "failure", "hostname": "oxana.instructure.com", "late": False,
               "details": {"errors": rows, "warnings": rows, "error_count": 30, "warning_count": 30},
               "history": [{"workflow_state": "importing", "event_name": "sis_batch_updated",
                            "event_time": f"2026-11-27T15:30:{n % 60:02d}.{n // 60:03d}Z"} for n in range(entries)]}
    attributes = {"outcome": "failure", "alert_id": "a" * 32, "root_account_uuid": "U" * 128}
    return Alert("SIS import " + "9" * 88, message, attributes)


def publish_size(params: dict) -> int:
    """SNS's count: Message, Subject, and each attribute's name, type and value, in UTF-8 bytes."""
    return len(params["Message"].encode()) + len(params.get("Subject", "").encode()) + sum(
        len(n.encode()) + len(a["DataType"].encode()) + len(a["StringValue"].encode())
        for n, a in params.get("MessageAttributes", {}).items())


def test_an_alert_too_big_for_sns_is_shrunk_to_fit_and_delivered(aws):
    from sis_imports.adapters.publisher import AlertPublisher

    alert = huge_alert()
    assert len(json.dumps(alert.message, ensure_ascii=False).encode()) > 262_144  # the reproduction
    calls = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sns.Publish",
                                          lambda params, **kw: calls.append(dict(params)))
    AlertPublisher(boto3.client("sns"), aws.topic_arn).publish(alert)
    (params,) = calls
    assert publish_size(params) <= 262_144
    (delivered,) = aws.alerts()
    message = delivered["message"]
    for key in ("alert_id", "sis_batch_id", "root_account_uuid", "workflow_state", "outcome", "type"):
        assert message[key] == alert.message[key]
    first, last = alert.message["history"][0], alert.message["history"][-1]
    assert (message["history"][0], message["history"][-1]) == (first, last)
    assert len(message["history"]) + message["history_left_out"] == 3_000
    assert "middle entries left out" in json.loads(params["Message"])["email"]


def test_an_alert_too_big_for_sqs_goes_to_the_retry_queue_shrunk_and_comes_back_whole_enough(aws):
    from sis_imports.adapters.publisher import AlertPublisher, AlertRetryQueue, deferred_alert

    alert = huge_alert()
    AlertRetryQueue(lambda: boto3.client("sqs"), aws.retry_queue_url, first_delay=0).defer(alert)
    (record,) = retry_records(aws)
    assert len(record["body"].encode()) <= 262_144
    back, targets = deferred_alert(record["body"])
    assert targets == ("topic", "chat") and back.subject == alert.subject and back.attributes == alert.attributes
    assert back.message["alert_id"] == alert.message["alert_id"] and back.message["history_left_out"] > 0
    AlertPublisher(boto3.client("sns"), aws.topic_arn).publish(back)
    (delivered,) = aws.alerts()
    assert delivered["message"]["alert_id"] == alert.message["alert_id"]


def test_a_subject_sns_would_refuse_is_made_one_it_takes(aws):
    from sis_imports.core.alerts import Alert
    from sis_imports.adapters.publisher import AlertPublisher

    calls = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sns.Publish",
                                          lambda params, **kw: calls.append(dict(params)))
    message = huge_alert(entries=3).message
    AlertPublisher(boto3.client("sns"), aws.topic_arn).publish(Alert("SIS import é\n" + "x" * 300, message, {}))
    (params,) = calls
    assert params["Subject"] == "SIS import " + "x" * 89  # printable ASCII, 100 characters at most
    assert aws.alerts()[0]["subject"] == params["Subject"]


def test_a_lone_surrogate_in_an_alert_is_published_not_refused_for_ever(aws):
    from sis_imports.adapters.publisher import AlertPublisher

    alert = huge_alert(entries=3)
    alert.message.update(details=None, details_unavailable="Canvas answered 401: \ud800 invalid")
    AlertPublisher(boto3.client("sns"), aws.topic_arn).publish(alert)
    (delivered,) = aws.alerts()
    assert delivered["message"]["details_unavailable"] == "Canvas answered 401: ? invalid"
