"""The chat webhook function against a real HTTP server on 127.0.0.1 (pytest-httpserver), its secret in
moto's Secrets Manager: what it posts, when it raises (so that Lambda retries, then keeps the alert in
the on-failure queue), 429s, and that the webhook URL is in no log, no exception and no error message."""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from handlers import chat_webhook
from sis_imports.usecases import chat_delivery
from sis_imports.usecases.chat_delivery import ChatConfigError, ChatWebhook, DeliveryFailed
from local.lambda_context import LambdaContext
from sis_imports.core import chat
from tests.unit.test_chat import CASES

# The secret part of a webhook URL, as Slack's path and a Teams Workflows `sig` carry it.
SLACK_SECRET_PATH = "/services/T0001/B0001/XxSecretPartOfTheWebhookUrl9q"
FAILED = CASES["failed_import"]


@pytest.fixture
def hook(server):
    server.clear()
    yield server
    server.check_assertions()


class Waits:
    def __init__(self):
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def webhook(server: HTTPServer, kind: str = "slack", waits: Waits | None = None, **options: Any) -> ChatWebhook:
    url = server.url_for(SLACK_SECRET_PATH)
    reads: list[bool] = options.pop("reads", [])

    def read(fresh: bool) -> str:
        reads.append(fresh)
        return chat_delivery._webhook_url(url, require_https=False)

    return ChatWebhook(kind, read, sleep=(waits or Waits()).sleep, **options)


def sns_event(*messages: dict[str, Any] | str) -> dict[str, Any]:
    """What SNS hands a subscribed function: the `lambda` (or `default`) value of a per-protocol publish."""
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:alerts:0b1c",
        "Sns": {
            "Type": "Notification", "MessageId": f"m-{n}", "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
            "Subject": "SIS import 1440177 failed_with_messages on oxana.instructure.com",
            "Message": m if isinstance(m, str) else json.dumps(m),
            "MessageAttributes": {"outcome": {"Type": "String", "Value": "failure"}},
        },
    } for n, m in enumerate(messages)]}


def context(seconds: float = 20.0) -> LambdaContext:
    ctx = LambdaContext(function_name="chat")
    deadline = time.monotonic() + seconds
    ctx.get_remaining_time_in_millis = lambda: int((deadline - time.monotonic()) * 1000)  # type: ignore[method-assign]
    return ctx


def no_url_in(*texts: str) -> None:
    for text in texts:
        assert "XxSecretPartOfTheWebhookUrl9q" not in text and "/services/" not in text, text


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_it_posts_the_chat_format_of_each_alert_as_json(hook, kind):
    status = 200 if kind == "slack" else 202  # Slack's "ok"; a Teams Workflows webhook's Accepted
    hook.expect_ordered_request(SLACK_SECRET_PATH, method="POST").respond_with_data("ok", status=status)
    result = webhook(hook, kind).handle(sns_event(FAILED), context())
    assert result == {"delivered": 1}
    (request, _), = hook.log
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.get_data()) == getattr(chat, kind)(FAILED)


@pytest.mark.parametrize("case", ["missing_imports", "missing_resumed", "unusual_success"])
def test_a_missing_import_its_end_and_an_unusual_end_are_posted_too(hook, case):
    hook.expect_ordered_request(SLACK_SECRET_PATH, method="POST").respond_with_data("ok")
    assert webhook(hook, "slack").handle(sns_event(CASES[case]), context()) == {"delivered": 1}
    (request, _), = hook.log
    assert json.loads(request.get_data()) == chat.slack(CASES[case])


@pytest.mark.parametrize("status", [400, 403, 404, 410, 500, 503])
def test_an_answer_other_than_2xx_raises_so_that_lambda_retries_then_keeps_it(hook, status, captured_logs):
    hook.expect_request(SLACK_SECRET_PATH).respond_with_data("no_service", status=status)
    with pytest.raises(DeliveryFailed, match=f"slack webhook answered {status}") as raised:
        webhook(hook).handle(sns_event(FAILED), context())
    no_url_in(str(raised.value), "".join(traceback.format_exception(raised.value)), captured_logs.getvalue())
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def test_a_redirect_is_a_failure_never_followed(hook):
    hook.expect_request(SLACK_SECRET_PATH).respond_with_response(
        Response(status=302, headers={"Location": hook.url_for("/elsewhere")}))
    with pytest.raises(DeliveryFailed, match="answered 302"):
        webhook(hook).handle(sns_event(FAILED), context())
    assert [r.path for r, _ in hook.log] == [SLACK_SECRET_PATH]


def test_a_slow_webhook_times_out_and_raises_without_the_url(hook, captured_logs):
    release = threading.Event()

    def slow(_request):
        release.wait(3)
        return Response("ok")

    hook.expect_request(SLACK_SECRET_PATH).respond_with_handler(slow)
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryFailed, match="answered nothing") as raised:
            webhook(hook, timeout=0.3).handle(sns_event(FAILED), context())
    finally:
        release.set()
    assert time.monotonic() - started < 2
    no_url_in(str(raised.value), "".join(traceback.format_exception(raised.value)), captured_logs.getvalue())
    assert '"error":"TimeoutError"' in captured_logs.getvalue().replace(" ", "")


def test_a_refused_connection_raises_without_the_url(captured_logs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}{SLACK_SECRET_PATH}"
    poster = ChatWebhook("slack", lambda fresh: url, timeout=1.0)
    with pytest.raises(DeliveryFailed) as raised:
        poster.handle(sns_event(FAILED), context())
    no_url_in(str(raised.value), "".join(traceback.format_exception(raised.value)), captured_logs.getvalue())


def test_a_429_with_a_short_retry_after_is_waited_out_once(hook):
    hook.expect_ordered_request(SLACK_SECRET_PATH).respond_with_data("rate_limited", status=429,
                                                                     headers={"Retry-After": "2"})
    hook.expect_ordered_request(SLACK_SECRET_PATH).respond_with_data("ok")
    waits = Waits()
    assert webhook(hook, waits=waits).handle(sns_event(FAILED), context()) == {"delivered": 1}
    assert waits.sleeps == [2.0] and len(hook.log) == 2


@pytest.mark.parametrize("retry_after", ["120", "Wed, 21 Oct 2026 07:28:00 GMT", None])
def test_a_429_with_a_long_or_unknown_retry_after_is_left_to_lambdas_retry(hook, retry_after):
    headers = {"Retry-After": retry_after} if retry_after else {}
    hook.expect_request(SLACK_SECRET_PATH).respond_with_data("rate_limited", status=429, headers=headers)
    waits = Waits()
    with pytest.raises(DeliveryFailed, match="429 \\(throttled\\)"):
        webhook(hook, waits=waits).handle(sns_event(FAILED), context())
    assert waits.sleeps == [] and len(hook.log) == 1


def test_a_second_429_after_the_wait_raises(hook):
    hook.expect_request(SLACK_SECRET_PATH).respond_with_data("rate_limited", status=429, headers={"Retry-After": "1"})
    waits = Waits()
    with pytest.raises(DeliveryFailed, match="429"):
        webhook(hook, waits=waits).handle(sns_event(FAILED), context())
    assert waits.sleeps == [1.0] and len(hook.log) == 2


def test_no_wait_when_the_invocation_has_no_time_left_for_it(hook):
    hook.expect_request(SLACK_SECRET_PATH).respond_with_data("rate_limited", status=429, headers={"Retry-After": "3"})
    waits = Waits()
    with pytest.raises(DeliveryFailed):
        webhook(hook, waits=waits).handle(sns_event(FAILED), context(seconds=6))
    assert waits.sleeps == []


def test_a_revoked_webhook_makes_the_next_try_read_the_secret_again(hook):
    hook.expect_ordered_request(SLACK_SECRET_PATH).respond_with_data("no_service", status=404)
    hook.expect_ordered_request(SLACK_SECRET_PATH).respond_with_data("ok")
    reads: list[bool] = []
    poster = webhook(hook, reads=reads)
    with pytest.raises(DeliveryFailed):
        poster.handle(sns_event(FAILED), context())
    poster.handle(sns_event(FAILED), context())
    assert reads == [False, True]


@pytest.mark.parametrize("message", ["not json", json.dumps(["a list"]), json.dumps({"type": "something_else"}),
                                     "SIS import 1440177 failed_with_messages (the email text)"])
def test_a_message_that_is_not_an_alert_raises_and_posts_nothing(hook, message):
    with pytest.raises(ValueError, match="not an alert's JSON"):
        webhook(hook).handle(sns_event(message), context())
    assert hook.log == []


def test_the_secret_must_hold_an_https_url_and_the_error_never_quotes_it():
    for value in ("http://hooks.slack.com/services/T/B/secretvalue", "hooks.slack.com/services/T/B/secretvalue",
                  "https://hooks.slack.com/services/T/B/secret value", '{"nope": "secretvalue"}', ""):
        with pytest.raises(ChatConfigError) as raised:
            chat_delivery._webhook_url(value, require_https=True)
        assert "secretvalue" not in str(raised.value) and "hooks.slack.com" not in str(raised.value)
    assert chat_delivery._webhook_url(" https://hooks.slack.com/services/T/B/x\n", require_https=True) == (
        "https://hooks.slack.com/services/T/B/x")
    assert chat_delivery._webhook_url('{"url": "https://example.webhook.office.com/x?sig=abc"}', require_https=True) == (
        "https://example.webhook.office.com/x?sig=abc")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ChatConfigError, match="CHAT_KIND must be one of slack, teams"):
        ChatWebhook("discord", lambda fresh: "https://x.example")


# --- the Lambda entry point, with the secret in (moto's) Secrets Manager ------------------------------------


@pytest.fixture
def secrets(monkeypatch):
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="canvas-sis-slack-webhook",
                                   SecretString="https://hooks.slack.com" + SLACK_SECRET_PATH)["ARN"]
        monkeypatch.setenv("CHAT_KIND", "slack")
        monkeypatch.setenv("CHAT_WEBHOOK_SECRET_ARN", arn)
        parameters.clear_caches()
        chat_webhook.app.cache_clear()
        yield client, arn
        chat_webhook.app.cache_clear()
        parameters.clear_caches()


class RecordingOpener:
    """Stands in for urllib's opener: records each request, answers with `status`."""

    def __init__(self, status: int = 200):
        self.status = status
        self.urls: list[str] = []
        self.bodies: list[bytes] = []

    def open(self, request, timeout):
        self.urls.append(request.full_url)
        self.bodies.append(request.data)
        assert timeout == chat_delivery.TIMEOUT_SECONDS == 5.0
        if self.status >= 300:
            import urllib.error
            from email.message import Message

            raise urllib.error.HTTPError(request.full_url, self.status, "error", Message(), None)
        opener = self

        class Answer:
            status = opener.status

            def read(self, n):
                return b"ok"

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return Answer()


def test_the_handler_reads_the_url_from_its_secret_once_and_caches_it(secrets, monkeypatch, captured_logs):
    client, arn = secrets
    opener = RecordingOpener()
    monkeypatch.setattr(chat_delivery, "_OPENER", opener)
    chat_webhook.handler(sns_event(FAILED), context())
    client.put_secret_value(SecretId=arn, SecretString="https://hooks.slack.com/services/T/B/rotated")
    chat_webhook.handler(sns_event(CASES["stuck_import"]), context())
    # Cached (Powertools, 5 minutes): the second post still goes to the first URL.
    assert opener.urls == ["https://hooks.slack.com" + SLACK_SECRET_PATH] * 2
    assert json.loads(opener.bodies[1]) == chat.slack(CASES["stuck_import"])
    no_url_in(captured_logs.getvalue())
    assert "chat message delivered" in captured_logs.getvalue()


def test_the_handler_fails_without_its_secret_and_says_which_setting(monkeypatch):
    monkeypatch.delenv("CHAT_WEBHOOK_SECRET_ARN", raising=False)
    monkeypatch.setenv("CHAT_KIND", "slack")
    chat_webhook.app.cache_clear()
    try:
        with pytest.raises(ChatConfigError, match="CHAT_WEBHOOK_SECRET_ARN is required"):
            chat_webhook.handler(sns_event(FAILED), context())
    finally:
        chat_webhook.app.cache_clear()


def test_a_failed_post_through_the_handler_logs_and_raises_no_url(secrets, monkeypatch, captured_logs):
    opener = RecordingOpener(status=500)
    monkeypatch.setattr(chat_delivery, "_OPENER", opener)
    with pytest.raises(DeliveryFailed) as raised:
        chat_webhook.handler(sns_event(FAILED), context())
    no_url_in(str(raised.value), "".join(traceback.format_exception(raised.value)), captured_logs.getvalue())
    assert opener.urls  # it did try
