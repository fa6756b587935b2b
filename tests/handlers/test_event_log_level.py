"""Issue 18: the line per event is DEBUG, so it is written only by calls sampled at DEBUG; the event is
stored, counted and answered the same either way, and a refusal is still logged at INFO."""

from __future__ import annotations

import json

import pytest

from local.lambda_context import LambdaContext
from sis_imports.adapters.observability import logger
from tests.conftest import http_event
from tests.factories import T0, canvas_event


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def post(handlers, event):
    return handlers["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))


@pytest.mark.parametrize(("level", "logged"), [("INFO", False), ("DEBUG", True)])
def test_the_per_event_line_only_at_debug(aws, none_mode, handlers_fresh, captured_logs, capsys, level, logged):
    logger.setLevel(level)  # a call not sampled (INFO), or sampled at DEBUG
    assert post(handlers_fresh, canvas_event("initializing", T0, "5001"))["statusCode"] == 200
    bad = canvas_event("initializing", T0, "5002")
    bad["body"]["workflow_state"] = "nope"
    assert post(handlers_fresh, bad)["statusCode"] == 400
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if line.strip()]
    messages = {(line["level"], line["message"]) for line in lines}
    per_event = {lvl for lvl, message in messages if message == "sis batch event applied"}
    assert per_event == ({"DEBUG"} if logged else set())
    assert ("INFO", "event rejected") in messages  # refusals are logged whatever the sampling
    assert [item["sis_batch_id"]["S"] for item in aws.scan()] == ["5001"]  # stored either way
    assert '"EventsAccepted"' in capsys.readouterr().out  # and counted
