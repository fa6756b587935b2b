"""The attacks of issue 8, through the real handlers on moto: only our Canvas gets in, and no input
crashes a handler, leaks a secret, freezes a batch or resurrects an expired one."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from local.lambda_context import LambdaContext
from sis_imports import wiring
from sis_imports.core.admission import Admission
from sis_imports.core.events import InvalidEvent
from tests.conftest import http_event
from tests.factories import NOW, T0, at, canvas_event, failed_import, iso

ATTACKER = "AttackerTrialInstanceUuid"


def post(handlers, body, **kwargs):
    response = handlers["ingest"].handler(http_event(body, **kwargs), LambdaContext(function_name="ingest"))
    return response["statusCode"], json.loads(response["body"])


def phishing_import(sis_batch_id: str = "666") -> list[dict]:
    events = failed_import(sis_batch_id)
    for event in events:
        event["metadata"]["root_account_uuid"] = ATTACKER
        if "hostname" in event["metadata"]:
            event["metadata"]["hostname"] = "evil-phish.instructure.com"
    return events


def sqs_record(body: str, message_id: str = "m1") -> dict:
    return {"messageId": message_id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:canvas-live-events",
            "awsRegion": "us-east-1"}


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def test_an_event_signed_by_canvas_for_another_customer_is_403_and_nothing_is_stored_or_alerted(
    aws, jwt_mode, signing_key, handlers_fresh, captured_logs
):
    for event in phishing_import():
        status, body = post(handlers_fresh, signing_key.sign(event), content_type="application/jwt")
        assert status == 403
        assert body == {"error": "forbidden", "field": "metadata.root_account_uuid",
                        "reason": "this Canvas root account is not allowed here"}
    assert aws.scan() == []
    aws.pump_stream(handlers_fresh["notifier"].handler)
    assert aws.alerts() == []
    assert "event refused: not an allowed Canvas" in captured_logs.getvalue()
    assert ATTACKER in captured_logs.getvalue()  # the operator sees whose events knock


def test_sqs_and_eventbridge_drop_another_customers_events_without_retry(aws, handlers_fresh):
    events = phishing_import("667")
    response = handlers_fresh["sqs_consumer"].handler(
        {"Records": [sqs_record(json.dumps(e), f"m{i}") for i, e in enumerate(events)]}, LambdaContext())
    assert response == {"batchItemFailures": []}  # deleted: no retries, no dead letter
    for event in events:
        answer = handlers_fresh["eventbridge"].handler(
            {"id": "e", "detail-type": "sis_batch_updated", "source": "x", "detail": event}, LambdaContext())
        assert answer == {"status": "refused", "field": "metadata.root_account_uuid"}  # no raise: no retries
    assert aws.scan() == []


def test_hostnames_when_set_refuse_another_host_and_admit_events_without_one(
    aws, none_mode, handlers_fresh, monkeypatch
):
    monkeypatch.setenv("SIS_HOSTNAMES", "Oxana.instructure.com")
    ours = failed_import("668")  # initializing/created name the host; the later job events do not
    beta = canvas_event("created", T0, "669")
    beta["metadata"]["hostname"] = "oxana.beta.instructure.com"
    status, body = post(handlers_fresh, beta)
    assert (status, body["field"]) == (403, "metadata.hostname")
    assert [post(handlers_fresh, e)[0] for e in ours] == [200, 200, 200, 200]
    assert [i["sis_batch_id"]["S"] for i in aws.scan()] == ["668"]


def test_the_functions_refuse_to_start_without_an_allowlist(monkeypatch):
    monkeypatch.delenv("SIS_ROOT_ACCOUNTS")
    monkeypatch.setenv("TABLE_NAME", "t")
    with pytest.raises(wiring.ConfigError, match="SIS_ROOT_ACCOUNTS is required"):
        wiring.sis_batch_ingest()


def test_star_admits_any_root_account(aws, none_mode, handlers_fresh, monkeypatch):
    monkeypatch.setenv("SIS_ROOT_ACCOUNTS", "*")
    assert post(handlers_fresh, phishing_import("670")[0])[0] == 200


@pytest.mark.parametrize("mode", ["none", "token"])
# Too deep for the parser (RecursionError before), and well-formed but deeper than any event.
@pytest.mark.parametrize("body", ["[" * 100_000, '{"metadata":' * 20_000, '{"a":[' * 50 + "]}" * 50])
def test_deeply_nested_bodies_are_400_not_500(aws, handlers_fresh, monkeypatch, mode, body):
    monkeypatch.setenv("SIS_AUTH", mode)
    query = None
    if mode == "token":
        secret = boto3.client("secretsmanager").create_secret(Name="t", SecretString="the-shared-token")
        monkeypatch.setenv("SIS_TOKEN_SECRET_ARN", secret["ARN"])
        query = {"token": "the-shared-token"}
    status, answer = post(handlers_fresh, body, query=query)
    assert status == 400 and "nested" in json.dumps(answer)
    assert aws.scan() == []


def test_a_deeply_nested_jwt_header_is_401_not_500(aws, jwt_mode, handlers_fresh):
    import base64

    header = base64.urlsafe_b64encode(b"[" * 100_000).rstrip(b"=").decode()
    status, body = post(handlers_fresh, f"{header}.e30.c2ln", content_type="application/jwt")
    assert status == 401 and "malformed" in body["reason"]


def test_a_lone_surrogate_is_400_naming_the_field_and_the_log_line_is_kept(
    aws, none_mode, handlers_fresh, captured_logs
):
    event = canvas_event("created", T0)
    event["metadata"]["url"] = "https://oxana.instructure.com/api\ud800?access_token=x"
    status, body = post(handlers_fresh, json.dumps(event))  # ensure_ascii: the \ud800 escape, as sent
    assert status == 400
    assert body["fields"] == [{"field": "metadata.url", "message": "is not valid Unicode (a lone surrogate)"}]
    assert aws.scan() == []
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert any(line["message"] == "event rejected" and line["status"] == 400 for line in lines)


def test_a_lone_surrogate_in_an_ignored_event_name_loses_no_log_line(aws, none_mode, handlers_fresh, captured_logs):
    body = json.dumps({"metadata": {"event_name": "course_\udfff"}, "body": {}})
    status, _ = post(handlers_fresh, body)
    assert status == 400
    assert "event rejected" in captured_logs.getvalue()


def test_an_event_from_the_far_future_is_400_and_cannot_freeze_its_batch(aws, none_mode, handlers_fresh):
    frozen = canvas_event("importing", "9999-12-31T23:59:59.999Z", "671")
    status, body = post(handlers_fresh, frozen)
    assert status == 400 and body["fields"] == [
        {"field": "metadata.event_time", "message": "is more than 1 hour in the future"}]
    soon = canvas_event("importing", at(iso(NOW), 1800), "672")
    assert post(handlers_fresh, soon)[0] == 200  # clock drift within the hour is fine
    for event in failed_import("671"):
        assert post(handlers_fresh, event)[1]["status"] == "applied"  # the real events still move it


def test_an_event_older_than_retention_is_2xx_ignored_and_recreates_nothing(
    aws, none_mode, handlers_fresh, monkeypatch, captured_logs
):
    monkeypatch.setenv("RETENTION_DAYS", "30")
    old = canvas_event("failed", at(iso(NOW), -31 * 86400), "673")
    status, body = post(handlers_fresh, old)
    assert (status, body["status"]) == (200, "ignored") and "retention" in body["note"]
    assert aws.scan() == []
    assert "older than the retention period" in captured_logs.getvalue()


def test_a_batch_outlives_every_event_it_holds_by_the_retention_period(aws, none_mode, handlers_fresh, monkeypatch):
    """The rule that makes replays harmless: when the item expires, every event of it is too old."""
    monkeypatch.setenv("RETENTION_DAYS", "30")
    ahead = at(iso(NOW), 3000)  # admitted: within the hour of tolerance
    before = time.time()
    post(handlers_fresh, canvas_event("importing", ahead, "674"))
    (item,) = aws.scan()
    from sis_imports.core.admission import event_epoch

    assert int(item["expires_at"]["N"]) >= event_epoch(ahead) + 30 * 86400
    assert int(item["expires_at"]["N"]) <= before + 30 * 86400 + 3600 + 5


def test_the_admission_rules_read_the_settings_as_documented():
    assert Admission.of("*").root_accounts is None
    assert Admission.of(" a , b ").root_accounts == frozenset({"a", "b"})
    assert Admission.of("a", "Host.One, host.two").hostnames == frozenset({"host.one", "host.two"})
    with pytest.raises(ValueError):
        Admission.of("  ")


# Issue "Canvas as it really is": another Canvas's event is refused before it is validated, on every path.
LOGIN, CLIENT_IP, TOKEN = "victim.login@evil.example", "203.0.113.77", "1398~ForeignTokenNeverLogged0123456789"
MALFORMED = {
    "event_time in other digits": lambda e: e["metadata"].update(event_time="٢٠٢٦-12-01T09:00:00.000Z"),
    "unknown workflow_state": lambda e: e["body"].update(workflow_state="secret-state"),
    "no sis_batch_id": lambda e: e["body"].pop("sis_batch_id"),
    "a lone surrogate in url": lambda e: e["metadata"].update(url="https://x/\ud800"),
    "event_name not a string": lambda e: e["metadata"].update(event_name=["sis_batch_created"]),
    "body not an object": lambda e: e.update(body="x" * 500),
    "far future": lambda e: e["metadata"].update(event_time="9999-12-31T23:59:59.999Z"),
}


def foreign(malform, root_account_uuid: str = ATTACKER) -> dict:
    event = canvas_event("created", T0, "675", root_account_uuid=root_account_uuid)
    event["metadata"].update(user_login=LOGIN, client_ip=CLIENT_IP,
                             url=f"https://evil-phish.instructure.com/api/v1/accounts/self/sis_imports?access_token={TOKEN}")
    malform(event)
    return event


def refusals_counted(output: str) -> int:
    """EventsRejected with reason not_allowed, in the embedded-metric lines the functions print."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return sum(len(line["EventsRejected"]) for line in lines if line.get("reason") == "not_allowed")


@pytest.mark.parametrize("malform", MALFORMED.values(), ids=MALFORMED.keys())
def test_another_customers_malformed_event_is_refused_on_every_path_and_never_dead_lettered(
    aws, handlers_fresh, monkeypatch, signing_key, jwks_server, captured_logs, capsys, malform
):
    event = foreign(malform)
    text = json.dumps(event)  # ensure_ascii: a lone surrogate as the \ud800 escape an attacker sends
    secret = boto3.client("secretsmanager").create_secret(Name="t", SecretString="the-shared-token")
    monkeypatch.setenv("SIS_TOKEN_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("SIS_JWKS_URL", jwks_server.url)
    forbidden = {"error": "forbidden", "field": "metadata.root_account_uuid",
                 "reason": "this Canvas root account is not allowed here"}
    capsys.readouterr()
    for mode, body, kwargs in [
        ("none", text, {}),
        ("token", text, {"query": {"token": "the-shared-token"}}),
        ("jwt", signing_key.sign(json.loads(text)), {"content_type": "application/jwt"}),
    ]:
        monkeypatch.setenv("SIS_AUTH", mode)
        handlers_fresh["ingest"].app.cache_clear()
        assert post(handlers_fresh, body, **kwargs) == (403, forbidden), mode  # nothing of it echoed
    sqs = handlers_fresh["sqs_consumer"].handler({"Records": [sqs_record(text)]}, LambdaContext())
    assert sqs == {"batchItemFailures": []}  # deleted: never retried into the dead-letter queue
    eventbridge = handlers_fresh["eventbridge"].handler(
        {"id": "e", "detail-type": "sis_batch_created", "source": "x", "detail": json.loads(text)}, LambdaContext())
    assert eventbridge == {"status": "refused", "field": "metadata.root_account_uuid"}  # no raise: no dead letter
    assert refusals_counted(capsys.readouterr().out) == 5  # three webhook modes, SQS, EventBridge
    assert aws.scan() == []
    logs = captured_logs.getvalue()
    assert logs.count("event refused: not an allowed Canvas") == 5 and ATTACKER in logs
    assert "dead-letter" not in logs and "invalid" not in logs
    for personal in (LOGIN, CLIENT_IP, TOKEN, "secret-state"):
        assert personal not in logs


def test_a_foreign_uuid_that_is_no_id_is_refused_and_not_logged(aws, none_mode, handlers_fresh, captured_logs):
    odd = "<script>" + "x" * 5000
    status, body = post(handlers_fresh, foreign(MALFORMED["no sis_batch_id"], root_account_uuid=odd))
    assert (status, body["field"]) == (403, "metadata.root_account_uuid")
    assert "<script>" not in captured_logs.getvalue() and "(not a valid id)" in captured_logs.getvalue()


@pytest.mark.parametrize("malform", MALFORMED.values(), ids=MALFORMED.keys())
def test_our_own_malformed_event_still_fails_naming_the_field(aws, none_mode, handlers_fresh, malform):
    event = foreign(malform, root_account_uuid="VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs")
    status, body = post(handlers_fresh, json.dumps(event))
    assert status == 400 and body["error"]
    sqs = handlers_fresh["sqs_consumer"].handler({"Records": [sqs_record(json.dumps(event))]}, LambdaContext())
    assert sqs == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # on to the dead-letter queue, as before
    with pytest.raises(InvalidEvent):
        handlers_fresh["eventbridge"].handler({"id": "e", "detail": json.loads(json.dumps(event))}, LambdaContext())
    assert aws.scan() == []


@pytest.mark.parametrize("uuid", [None, ["AttackerTrialInstanceUuid"], {"id": 1}, True, "__absent__"])
def test_a_root_account_uuid_that_is_no_string_is_left_to_validation(aws, none_mode, handlers_fresh, uuid):
    event = canvas_event("created", T0)
    if uuid == "__absent__":
        del event["metadata"]["root_account_uuid"]
    else:
        event["metadata"]["root_account_uuid"] = uuid
    status, body = post(handlers_fresh, event)
    assert status == 400 and [f["field"] for f in body["fields"]] == ["metadata.root_account_uuid"]


def test_a_numeric_root_account_id_is_read_as_validation_reads_it(aws, none_mode, handlers_fresh, monkeypatch):
    monkeypatch.setenv("SIS_ROOT_ACCOUNTS", "12345")
    event = canvas_event("created", T0, root_account_uuid=12345)
    assert post(handlers_fresh, event)[0] == 200
    other = canvas_event("created", T0, root_account_uuid=999)
    other["body"]["workflow_state"] = "bogus"
    assert post(handlers_fresh, other)[0] == 403  # refused before validation, like a string uuid


def test_an_event_time_in_other_digits_is_400_on_the_webhook_and_dead_lettered_from_sqs(
    aws, none_mode, handlers_fresh
):
    event = canvas_event("importing", "٢٠٢٦-12-01T09:00:00.000Z", "676")
    status, body = post(handlers_fresh, event)
    assert status == 400 and [f["field"] for f in body["fields"]] == ["metadata.event_time"]
    sqs = handlers_fresh["sqs_consumer"].handler({"Records": [sqs_record(json.dumps(event))]}, LambdaContext())
    assert sqs == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    with pytest.raises(InvalidEvent) as exc:
        handlers_fresh["eventbridge"].handler({"id": "e", "detail": event}, LambdaContext())
    assert [e.field for e in exc.value.errors] == ["metadata.event_time"]
    for later in failed_import("676"):
        assert post(handlers_fresh, later)[1]["status"] == "applied"  # nothing froze the batch
    assert aws.scan()[0]["workflow_state"]["S"] == "failed_with_messages"
