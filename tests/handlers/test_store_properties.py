"""Property: the DynamoDB store (one-write fast path + conditional slow path) and the stream
notifier give exactly what the pure core gives, for any delivery order with duplicates."""

from __future__ import annotations

import itertools

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from moto import mock_aws

from sis_imports.core.batch import Decision, apply_event
from sis_imports.core.events import parse_event
from sis_imports.adapters.publisher import AlertPublisher
from sis_imports.adapters.store import BatchStore
from tests.aws_env import TABLE_NAME, AwsEnv
from tests.unit.test_properties import deliveries, expected_alerts

_ids = itertools.count()


@pytest.fixture(scope="module")
def pipeline():
    with mock_aws():
        env = AwsEnv.create()
        import sis_imports.usecases.notify as notifier

        yield env, BatchStore(env.dynamodb, TABLE_NAME, history_limit=6), notifier.Notifier(
            AlertPublisher(boto3.client("sns"), env.topic_arn)
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_store_and_notifier_match_the_pure_core(pipeline, case):
    env, store, notifier = pipeline
    _, order = case
    run = f"r{next(_ids)}-"  # fresh batch ids for each example in the shared table
    order = [{**raw, "body": {**raw["body"], "sis_batch_id": run + raw["body"]["sis_batch_id"]}} for raw in order]
    expected: dict = {}
    entered: set = set()  # every entry that made it into a batch's (bounded) history at some point
    for raw in order:
        event = parse_event(raw)
        decision, new = apply_event(expected.get(event.sis_batch_id), event, history_limit=6)
        result = store.apply(event)
        assert result.decision is decision
        if decision is not Decision.DUPLICATE:
            expected[event.sis_batch_id] = new
            entered |= {(event.sis_batch_id, e.workflow_state.value, e.event_time) for e in new.history}
    for batch_id, batch in expected.items():
        assert store.get(batch.root_account_uuid, batch_id) == batch
    env.pump_stream(lambda event, context: notifier.handle(event, context))
    published = sorted(
        (a["message"]["sis_batch_id"], a["message"]["workflow_state"], a["message"]["finished_at"]) for a in env.alerts()
    )
    # The promise, for the ends that entered the history (one older than the 6 entries kept never does).
    assert published == sorted(expected_alerts(order) & entered)
