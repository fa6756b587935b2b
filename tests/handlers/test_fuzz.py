"""Hypothesis: no input, however odd, makes any ingress answer with our bug (a 5xx, an uncaught
exception), store anything it should not, or lose a log line. Over 10,000 generated inputs in all:
every auth mode of the webhook (none, token, jwt), the SQS consumer and the EventBridge consumer,
with the nasty shapes: deep nesting, lone surrogates, huge values, future and ancient times, times
in other scripts' digits, other Canvas root accounts. Another customer's event, however malformed,
is refused (403, or dropped from SQS and EventBridge) and counted on every path, never dead-lettered.

The handlers, authenticators and core are the real ones; the bulk of the inputs is applied to an
in-memory store that follows the same rules (the pure core's `apply_event`), because a moto
request costs ~50 ms and 10,000 of them would take ten minutes. One test sends its inputs through
moto's DynamoDB, the real store, to show that path too."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from local.lambda_context import LambdaContext
from sis_imports.core.events import InvalidEvent
from tests.aws_env import TABLE_NAME, AwsEnv
from tests.conftest import http_event
from tests.factories import NOW, T0, at, canvas_event, iso
from tests.jwks import JwksServer, SigningKey
from tests.memory_store import MemoryStore

SHARED_TOKEN = "fuzz-shared-token-0123456789"
ALLOWED = set(os.environ["SIS_ROOT_ACCOUNTS"].split(","))  # tests/conftest.py: the allowlist as deployed
FORBIDDEN = {"error": "forbidden", "field": "metadata.root_account_uuid",
             "reason": "this Canvas root account is not allowed here"}
FIELDS = [
    ("metadata", "event_time"), ("metadata", "root_account_uuid"), ("metadata", "hostname"), ("metadata", "url"),
    ("metadata", "referrer"), ("metadata", "user_id"), ("metadata", "user_login"), ("metadata", "event_name"),
    ("metadata", "root_account_id"), ("body", "sis_batch_id"), ("body", "account_id"), ("body", "workflow_state"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
lone_surrogate_text = st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=8), st.sampled_from(["\ud800", "\udfff", "\udc00x"]), st.text(max_size=8)
)
# A real time with some of its digits written in another script's digits ("٢٠٢٦-…"): Python's \d and
# strptime read them, and they sort after every real time.
foreign_digits = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())
other_script_times = st.builds(
    lambda time, swaps: "".join(swaps.get(i, c) for i, c in enumerate(time)),
    st.sampled_from([T0, at(T0, 61.5)]),
    st.dictionaries(st.sampled_from([i for i, c in enumerate(T0) if c.isdigit()]), foreign_digits, min_size=1),
)
times = st.sampled_from([
    # a year ahead (NOW + 366 days: no 29 February to replace), hours ahead, past the retention
    "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", iso(NOW + timedelta(days=366)),
    T0, iso(NOW + timedelta(hours=2)), at(T0, -86400 * 400), "2026-02-30T00:00:00.000Z", "now",
]) | other_script_times
nasty = (
    json_values
    | st.text(max_size=300)
    | lone_surrogate_text
    | times
    | st.sampled_from(["AttackerTrialInstanceUuid", "evil-phish.instructure.com", "x" * 10_000, 10**40, -1, 1e308])
)


def deep(depth: int, opener: str) -> str:
    return opener * depth


@st.composite
def near_events(draw) -> dict:
    """A valid-looking event with some fields replaced by nasty values."""
    event = canvas_event(draw(st.sampled_from(["initializing", "created", "importing", "failed", "restored"])),
                         at(T0, draw(st.integers(0, 3600))), str(draw(st.integers(1, 40))))
    for section, field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        event[section][field] = draw(nasty)
    if draw(st.booleans()):
        event["metadata"][draw(st.text(max_size=5) | lone_surrogate_text)] = draw(nasty)
    return event


# Another Canvas's root account: names we do not serve, shaped like a uuid or not at all.
foreign_uuids = st.sampled_from(["AttackerTrialInstanceUuid", "x" * 10_000, "", "vicyj3cu5bipfozhdvu4dzummnlbrwi1grgjezads"]) | (
    st.text(max_size=60) | lone_surrogate_text).filter(lambda u: u not in ALLOWED)


@st.composite
def foreign_events(draw) -> dict:
    """Another customer's event, malformed in any of the ways above (its root account left foreign)."""
    event = draw(near_events())
    for section, field in draw(st.lists(st.sampled_from(FIELDS[:1] + FIELDS[2:]), min_size=1, max_size=4)):
        event[section][field] = draw(nasty)
    if draw(st.booleans()):
        event["body"] = draw(json_values)
    event["metadata"]["root_account_uuid"] = draw(foreign_uuids)
    return event


def sqs_records(bodies: list[str]) -> list[dict]:
    return [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {}, "messageAttributes": {},
         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:canvas-live-events",
         "awsRegion": "us-east-1"}
        for i, body in enumerate(bodies)
    ]


def as_text(event: dict) -> str:
    # ensure_ascii: a lone surrogate becomes the \ud800 escape a real attacker would send.
    return json.dumps(event, ensure_ascii=True, default=str)


deep_bodies = st.builds(deep, st.sampled_from([40, 999, 5_000, 100_000]), st.sampled_from(["[", '{"a":', '{"metadata":[']))
text_bodies = (
    near_events().map(as_text)
    | json_values.map(as_text)
    | deep_bodies
    | st.text(max_size=200)
    | st.sampled_from(['{"metadata": {"event_name": "sis_batch_created"}, "body": 1' + "1" * 5000 + "}",
                       '"\\ud800"', '{"metadata": "\\udfff"}', "1e999999", "[" * 10 + "]" * 10])
)
bodies = text_bodies | st.binary(max_size=200)


@pytest.fixture(scope="module")
def pipeline():
    """Every ingress handler on one moto, in each auth mode, through the real handler functions."""
    import handlers.eventbridge
    import handlers.ingest
    import handlers.sqs_consumer
    from sis_imports.usecases.ingest_eventbridge import EventBridgeConsumer
    from sis_imports.usecases.ingest_http import IngestApi
    from sis_imports.usecases.ingest_sqs import SqsConsumer
    from sis_imports.usecases import ingest as core
    from sis_imports import wiring
    from sis_imports.usecases.ingest import SisBatchIngest

    saved = {k: os.environ.get(k) for k in ("SIS_AUTH", "TABLE_NAME", "SIS_JWKS_URL", "SIS_TOKEN_SECRET_ARN")}
    key = SigningKey("fuzz-key")
    jwks = JwksServer([key])
    with mock_aws():
        env = AwsEnv.create()
        secret = boto3.client("secretsmanager").create_secret(Name="fuzz-token", SecretString=SHARED_TOKEN)
        os.environ.update(TABLE_NAME=TABLE_NAME, SIS_JWKS_URL=jwks.url, SIS_TOKEN_SECRET_ARN=secret["ARN"])
        memory = MemoryStore()
        admission = wiring.sis_batch_ingest()._admission  # the allowlist from the environment, as deployed
        in_memory = SisBatchIngest(memory, admission)
        apps = {}
        for mode in ("none", "token", "jwt"):
            os.environ["SIS_AUTH"] = mode
            apps[mode] = IngestApi(wiring.authenticator(), in_memory)
        os.environ["SIS_AUTH"] = "none"
        apps["moto"] = IngestApi(wiring.authenticator(), wiring.sis_batch_ingest())
        originals = {m: m.app for m in (handlers.ingest, handlers.sqs_consumer, handlers.eventbridge)}
        refusals: list[str] = []
        core_count_rejected = core.count_rejected
        core.count_rejected = lambda reason: (refusals.append(reason), core_count_rejected(reason))
        sqs_consumer, eventbridge_consumer = SqsConsumer(in_memory), EventBridgeConsumer(in_memory)
        handlers.sqs_consumer.app = lambda: sqs_consumer
        handlers.eventbridge.app = lambda: eventbridge_consumer
        try:
            yield {"apps": apps, "env": env, "memory": memory, "key": key, "ingest": handlers.ingest,
                   "sqs": handlers.sqs_consumer.handler, "eventbridge": handlers.eventbridge.handler,
                   "refusals": refusals}
        finally:
            core.count_rejected = core_count_rejected
            for module, original in originals.items():
                module.app = original
                original.cache_clear()
    jwks.close()
    for name, value in saved.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def stored_is_sane(store) -> None:
    """Only allowed root accounts, valid times, and nothing of a token shape, ever reach the table."""
    for item in store.scan():
        assert item["root_account_uuid"]["S"] in ALLOWED
        assert not item["event_time"]["S"].startswith("9999")
        assert item["event_time"]["S"].isascii()  # no other script's digits, which sort after every time
        for entry in item.get("history", {}).get("L", []):
            assert entry["M"]["event_time"]["S"].isascii()
        url = item.get("url", {}).get("S", "")
        assert "?" not in url and "%" not in url  # no query, not even a percent-encoded one
        json.dumps(item, ensure_ascii=False).encode("utf-8")  # valid Unicode throughout: no lone surrogate


def call_http(pipeline, mode: str, event: dict) -> dict:
    module = pipeline["ingest"]
    original = module.app
    module.app = lambda: pipeline["apps"][mode]  # the real handler function, this mode's app
    try:
        return module.handler(event, LambdaContext(function_name="ingest"))
    finally:
        module.app = original


def check_http(pipeline, mode: str, event: dict) -> None:
    response = call_http(pipeline, mode, event)
    assert response["statusCode"] in (200, 400, 401, 403, 405, 413), response
    payload = json.loads(response["body"])
    if response["statusCode"] >= 400:
        assert payload.get("error")  # a clear reason, never an empty answer
    if response["statusCode"] == 400 and "fields" in payload:
        assert all(f["field"] and f["message"] for f in payload["fields"])


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fuzz(3000)
@given(body=bodies, query=st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=20) | lone_surrogate_text,
                                                        max_size=3))
def test_the_webhook_without_auth(pipeline, body, query):
    event = http_event(body)
    if query is not None:  # as given, surrogates and all: what API Gateway hands over is not ours to trust
        event["queryStringParameters"] = query
    check_http(pipeline, "none", event)
    stored_is_sane(pipeline["memory"])


@fuzz(2000)
@given(body=bodies, token=st.sampled_from([SHARED_TOKEN, "wrong", "", "\ud800" + SHARED_TOKEN]))
def test_the_webhook_with_the_shared_token(pipeline, body, token):
    event = http_event(body)
    if token:
        event["queryStringParameters"] = {"token": token}
    check_http(pipeline, "token", event)
    stored_is_sane(pipeline["memory"])


@fuzz(2000)
@given(body=bodies, signed=st.booleans(), claims=near_events() | json_values)
def test_the_webhook_with_signed_payloads(pipeline, body, signed, claims):
    if signed and isinstance(claims, dict):
        try:
            body = pipeline["key"].sign(json.loads(as_text(claims)))
        except (TypeError, ValueError, OverflowError):
            pass  # PyJWT cannot encode it: the unsigned body stands
    check_http(pipeline, "jwt", http_event(body, content_type="application/jwt"))
    stored_is_sane(pipeline["memory"])


@fuzz(1000)
@given(bodies=st.lists(text_bodies, min_size=1, max_size=5))
def test_the_sqs_consumer(pipeline, bodies):
    response = pipeline["sqs"]({"Records": sqs_records(bodies)}, LambdaContext())  # never raises
    assert set(response) == {"batchItemFailures"}
    stored_is_sane(pipeline["memory"])


@fuzz(1000)
@given(detail=near_events() | json_values)
def test_the_eventbridge_consumer(pipeline, detail):
    # EventBridge hands over parsed JSON; a surrogate survives parsing as it would in Lambda's runtime.
    event = {"version": "0", "id": "e-1", "detail-type": "sis_batch_updated", "source": "canvas.live-events",
             "detail": json.loads(as_text(detail)) if isinstance(detail, dict) else detail}
    try:
        pipeline["eventbridge"](event, LambdaContext())
    except InvalidEvent as exc:  # the designed way to the dead-letter queue, with the reason
        assert exc.errors and all(e.field for e in exc.errors)
    stored_is_sane(pipeline["memory"])


@fuzz(600)
@given(event=foreign_events(), mode=st.sampled_from(["none", "token", "jwt"]))
def test_another_customers_malformed_event_is_403_in_every_auth_mode_and_counted(pipeline, event, mode):
    text = as_text(event)
    if mode == "jwt":
        try:
            request = http_event(pipeline["key"].sign(json.loads(text)), content_type="application/jwt")
        except (TypeError, ValueError, OverflowError):
            assume(False)  # PyJWT cannot encode it: Canvas could not have signed it either
    else:
        request = http_event(text, query={"token": SHARED_TOKEN} if mode == "token" else None)
    before = len(pipeline["refusals"])
    response = call_http(pipeline, mode, request)
    assert (response["statusCode"], json.loads(response["body"])) == (403, FORBIDDEN)  # nothing of it echoed
    assert pipeline["refusals"][before:] == ["not_allowed"]
    stored_is_sane(pipeline["memory"])


@fuzz(300)
@given(events=st.lists(foreign_events(), min_size=1, max_size=5))
def test_another_customers_malformed_events_leave_the_sqs_queue_never_for_the_dead_letter_queue(pipeline, events):
    before = len(pipeline["refusals"])
    response = pipeline["sqs"]({"Records": sqs_records([as_text(e) for e in events])}, LambdaContext())
    assert response == {"batchItemFailures": []}  # deleted, each of them: no retry, no dead letter
    assert pipeline["refusals"][before:] == ["not_allowed"] * len(events)
    stored_is_sane(pipeline["memory"])


@fuzz(300)
@given(event=foreign_events())
def test_another_customers_malformed_event_on_eventbridge_is_dropped_not_raised(pipeline, event):
    before = len(pipeline["refusals"])
    answer = pipeline["eventbridge"]({"version": "0", "id": "e-2", "detail-type": "sis_batch_updated",
                                      "source": "canvas.live-events", "detail": json.loads(as_text(event))},
                                     LambdaContext())
    assert answer == {"status": "refused", "field": "metadata.root_account_uuid"}  # no raise: no on-failure record
    assert pipeline["refusals"][before:] == ["not_allowed"]
    stored_is_sane(pipeline["memory"])


@fuzz(200)
@given(event_time=other_script_times, state=st.sampled_from(["importing", "failed", "restored"]))
def test_our_event_with_another_scripts_digits_is_refused_naming_event_time_on_every_path(
    pipeline, event_time, state
):
    event = canvas_event(state, event_time, "41")
    named = [{"field": "metadata.event_time",
              "message": "Value error, must be written in ASCII digits, like 2020-01-14T14:14:11.498Z"}]
    response = call_http(pipeline, "none", http_event(as_text(event)))
    assert (response["statusCode"], json.loads(response["body"])["fields"]) == (400, named)
    answer = pipeline["sqs"]({"Records": sqs_records([as_text(event)])}, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}  # ours: on to the dead-letter queue
    with pytest.raises(InvalidEvent) as exc:
        pipeline["eventbridge"]({"id": "e-3", "detail": event}, LambdaContext())
    assert [e.field for e in exc.value.errors] == ["metadata.event_time"]
    stored_is_sane(pipeline["memory"])


@fuzz(300)
@given(event=near_events())
def test_the_webhook_into_the_real_store(pipeline, event):
    check_http(pipeline, "moto", http_event(as_text(event)))


def test_the_real_store_holds_nothing_it_should_not(pipeline):
    stored_is_sane(pipeline["env"])
