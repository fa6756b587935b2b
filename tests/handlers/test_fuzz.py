"""Hypothesis: no body, however odd, makes the ingest handler answer 5xx (or store junk)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from local.lambda_context import LambdaContext
from tests.aws_env import TABLE_NAME, AwsEnv
from tests.conftest import http_event
from tests.factories import T0, at, canvas_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
states = st.sampled_from(["initializing", "created", "importing", "failed", "restored", "bogus", "", None])


@st.composite
def near_events(draw):
    """Valid-looking events with some fields replaced by arbitrary values."""
    event = canvas_event(draw(states) or "created", T0)
    for section, field in draw(st.lists(st.sampled_from([
        ("metadata", "event_time"), ("metadata", "root_account_uuid"), ("metadata", "hostname"),
        ("metadata", "url"), ("metadata", "user_id"), ("metadata", "event_name"), ("body", "sis_batch_id"),
        ("body", "account_id"), ("body", "workflow_state"), ("metadata", "root_account_id"),
    ]), max_size=4)):
        event[section][field] = draw(json_values | st.text(max_size=300))
    return json.dumps(event)


bodies = (
    near_events()
    | json_values.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200)
)


@pytest.fixture(scope="module")
def ingest():
    import os

    import handlers.ingest as module

    saved = {k: os.environ.get(k) for k in ("SIS_AUTH", "TABLE_NAME")}
    os.environ.update(SIS_AUTH="none", TABLE_NAME=TABLE_NAME)
    with mock_aws():
        env = AwsEnv.create()
        module.app.cache_clear()
        yield module.handler, env
        module.app.cache_clear()
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_body_gives_a_5xx(ingest, body):
    handler, env = ingest
    response = handler(http_event(body), LambdaContext())
    assert response["statusCode"] in (200, 400, 413), response
    payload = json.loads(response["body"])
    if response["statusCode"] == 400:
        assert payload.get("error")  # a clear error, never an empty answer
