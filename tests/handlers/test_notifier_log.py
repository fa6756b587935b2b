"""Issue 18: the notifier's line per alert is INFO for every alert that needs a person (failure, warning,
stuck, missing, resumed, an unusual end) and DEBUG for a plain success, so that only the calls sampled at
DEBUG (event_log_sample_rate) write it; the alert itself goes out the same either way."""

from __future__ import annotations

import json

import pytest

from local.lambda_context import LambdaContext
from sis_imports.adapters.observability import logger
from sis_imports.core.alerts import Alert
from sis_imports.usecases.notify import Notifier
from tests.conftest import http_event
from tests.factories import T0, at, canvas_event, failed_import


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def successful_import(sis_batch_id: str) -> list[dict]:
    return [canvas_event("initializing", T0, sis_batch_id), canvas_event("created", T0, sis_batch_id),
            canvas_event("importing", at(T0, 4), sis_batch_id), canvas_event("imported", at(T0, 60), sis_batch_id)]


def published_lines(captured_logs) -> dict[str, str]:
    """sis_batch_id -> the level of its "alert published" line."""
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if line.strip()]
    return {line["sis_batch_id"]: line["level"] for line in lines if line["message"] == "alert published"}


@pytest.mark.parametrize(("level", "success_line"), [("INFO", None), ("DEBUG", "DEBUG")])
def test_a_plain_success_is_logged_only_at_debug_a_failure_always(aws, none_mode, handlers_fresh, captured_logs,
                                                                  capsys, monkeypatch, level, success_line):
    monkeypatch.delenv("DETAILED_METRICS", raising=False)  # as deployed by default
    for event in successful_import("7001") + failed_import("7002"):
        response = handlers_fresh["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))
        assert response["statusCode"] == 200
    logger.setLevel(level)  # a call not sampled (INFO), or sampled at DEBUG
    aws.pump_stream(handlers_fresh["notifier"].handler)
    logged = published_lines(captured_logs)
    assert logged.get("7001") == success_line
    assert logged["7002"] == "INFO"
    # both alerts went out whatever the level
    assert sorted((a["message"]["sis_batch_id"], a["message"]["outcome"]) for a in aws.alerts()) == [
        ("7001", "success"), ("7002", "failure")]
    # what no alarm reads only with detailed_metrics (or the dashboard): the alerts and the topic say as much
    metrics = capsys.readouterr().out
    assert '"EventsAccepted"' in metrics  # the heartbeat's
    for name in ("ImportsFinished", "ImportDuration", "AlertsPublished", "EventsApplied"):
        assert f'"{name}"' not in metrics, name


class Publisher:
    def publish(self, alert, targets=()):
        return "message-1"


@pytest.mark.parametrize(("outcome", "unusual", "level"), [
    ("success", None, "DEBUG"), ("success", False, "DEBUG"), ("success", True, "INFO"),
    ("warning", None, "INFO"), ("warning", True, "INFO"), ("failure", False, "INFO"),
    ("stuck", None, "INFO"), ("missing", None, "INFO"), ("resumed", None, "INFO"),
])
def test_every_alert_but_a_plain_success_is_logged_at_info(captured_logs, outcome, unusual, level):
    message = {"alert_id": "a1", "type": "sis_import_finished", "sis_batch_id": "7003", "root_account_uuid": "r1",
               "outcome": outcome, **({} if unusual is None else {"unusual": unusual})}
    Notifier(Publisher())._deliver(("r1", "7003"), Alert("subject", message, {"outcome": outcome}))
    assert published_lines(captured_logs) == {"7003": level}
