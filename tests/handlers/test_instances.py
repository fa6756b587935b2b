"""A beta or test instance shares production's root account uuid and id sequence, and Canvas's job
events (`importing`, every end, restores) name no host: with `canvas_hostnames` set, a batch belongs
to the allowed host that created it (or that a reading of its instance names), and a beta's events,
in any arrival order and over every path, neither change nor alert production's batch."""

from __future__ import annotations

import itertools
import json

import pytest

from local.lambda_context import LambdaContext
from sis_imports.core.alerts import alerts_for
from sis_imports.core.batch import Decision, apply_event
from sis_imports.core.events import parse_event
from sis_imports.core.reconcile import CanvasImport
from tests.conftest import http_event
from sis_imports.core.admission import event_epoch as epoch
from tests.factories import T0, at, canvas_event
from tests.handlers.test_trust_boundary import sqs_record

PROD, BETA = "oxana.instructure.com", "oxana.beta.instructure.com"


def production(sis_batch_id: str, start: float = 0) -> list[dict]:
    return [canvas_event("initializing", at(T0, start), sis_batch_id),
            canvas_event("created", at(T0, start), sis_batch_id),
            canvas_event("importing", at(T0, start + 4), sis_batch_id),
            canvas_event("imported", at(T0, start + 60), sis_batch_id)]


def beta(sis_batch_id: str, start: float) -> list[dict]:
    events = [canvas_event("initializing", at(T0, start), sis_batch_id),
              canvas_event("created", at(T0, start), sis_batch_id),
              canvas_event("importing", at(T0, start + 4), sis_batch_id),
              canvas_event("failed_with_messages", at(T0, start + 61), sis_batch_id)]
    for event in events:
        if "hostname" in event["metadata"]:
            event["metadata"]["hostname"] = BETA
    return events


def send(handlers, path: str, event: dict) -> None:
    if path == "https":
        response = handlers["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))
        assert response["statusCode"] in (200, 403), response
    elif path == "sqs":
        answer = handlers["sqs_consumer"].handler({"Records": [sqs_record(json.dumps(event))]}, LambdaContext())
        assert answer == {"batchItemFailures": []}
    else:
        handlers["eventbridge"].handler({"id": "e", "detail-type": event["metadata"]["event_name"], "source": "x",
                                         "detail": event}, LambdaContext())


@pytest.fixture
def hosts(aws, handlers_fresh, monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")
    monkeypatch.setenv("SIS_HOSTNAMES", PROD)
    return aws, handlers_fresh


def history_of(aws, sis_batch_id: str) -> list[tuple[str, str]]:
    item = next(i for i in aws.scan() if i["sis_batch_id"]["S"] == sis_batch_id)
    return [(e["M"]["workflow_state"]["S"], e["M"]["event_time"]["S"]) for e in item["history"]["L"]]


@pytest.mark.parametrize("path", ["https", "sqs", "eventbridge"])
def test_a_beta_import_of_the_same_id_neither_changes_nor_alerts_production_in_any_order(hosts, path):
    aws, handlers = hosts
    orders = list(itertools.permutations(range(4)))
    for n, order in enumerate(orders):
        sis_batch_id = str(6001 + n)
        prod = production(sis_batch_id)
        for event in prod:
            send(handlers, path, event)
        copy = beta(sis_batch_id, 3600)  # the beta's own import of that id, an hour later
        for i in order:
            send(handlers, path, copy[i])
        assert history_of(aws, sis_batch_id) == [
            (e["body"]["workflow_state"], e["metadata"]["event_time"]) for e in prod], order
    aws.pump_stream(handlers["notifier"].handler)
    alerts = [(a["message"]["sis_batch_id"], a["message"]["workflow_state"], a["message"]["hostname"])
              for a in aws.alerts()]
    assert sorted(alerts) == sorted((str(6001 + n), "imported", PROD) for n in range(len(orders)))


@pytest.mark.parametrize("path", ["https", "sqs"])
def test_a_beta_import_that_came_first_is_dropped_when_production_creates_the_id(hosts, path):
    """Beta's events (its creation refused) held unbound, not alerted; production's creation an hour
    later binds the id, and the beta's earlier events cannot be that import's."""
    aws, handlers = hosts
    for n, order in enumerate(itertools.permutations(range(4))):
        sis_batch_id = str(7001 + n)
        copy = beta(sis_batch_id, 0)
        for i in order:
            send(handlers, path, copy[i])
        prod = production(sis_batch_id, 3600)
        for event in prod[::-1] if n % 2 else prod:  # production's own events in either order too
            send(handlers, path, event)
        assert history_of(aws, sis_batch_id) == [
            (e["body"]["workflow_state"], e["metadata"]["event_time"]) for e in prod], order
    aws.pump_stream(handlers["notifier"].handler)
    assert sorted((a["message"]["sis_batch_id"], a["message"]["workflow_state"]) for a in aws.alerts()) == sorted(
        (str(7001 + n), "imported") for n in range(24))


def test_host_less_events_of_an_unbound_batch_wait_and_alert_once_when_a_reading_binds_it():
    """Production's creation events were lost: its job events wait (no alert) until the reconciler's
    reading of the allowed instance names the host."""
    batch, alerts = None, []
    for raw in production("8001")[2:]:
        decision, new = apply_event(batch, parse_event(raw), require_host=True)
        alerts += alerts_for(batch, new)
        batch = new
    assert batch.unbound and alerts == []
    read = CanvasImport.of({"id": "8001", "workflow_state": "imported"}, epoch(at(T0, 90)), epoch(at(T0, 89)))
    event = read.as_event(batch.root_account_uuid, "1", PROD)
    decision, new = apply_event(batch, event, asked_at=read.asked_time, require_host=True)
    alerts += alerts_for(batch, new)
    assert not new.unbound and new.hostname == PROD and new.workflow_state.value == "imported"
    assert [(a.message["workflow_state"], a.message["detected_by"]) for a in alerts] == [("imported", "live_event")]


def test_without_canvas_hostnames_host_less_events_count_as_before():
    batch = None
    for raw in production("8101")[2:]:
        decision, batch = apply_event(batch, parse_event(raw))
    assert not batch.unbound and decision is Decision.APPLY
