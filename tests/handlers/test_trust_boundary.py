"""The attacks of issue 8, through the real handlers on moto: only our Canvas gets in, and no input
crashes a handler, leaks a secret, freezes a batch or resurrects an expired one."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from local.lambda_context import LambdaContext
from sis_imports import wiring
from sis_imports.admission import Admission
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
    from sis_imports.admission import event_epoch

    assert int(item["expires_at"]["N"]) >= event_epoch(ahead) + 30 * 86400
    assert int(item["expires_at"]["N"]) <= before + 30 * 86400 + 3600 + 5


def test_the_admission_rules_read_the_settings_as_documented():
    assert Admission.of("*").root_accounts is None
    assert Admission.of(" a , b ").root_accounts == frozenset({"a", "b"})
    assert Admission.of("a", "Host.One, host.two").hostnames == frozenset({"host.one", "host.two"})
    with pytest.raises(ValueError):
        Admission.of("  ")
