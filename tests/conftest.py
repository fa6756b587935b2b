"""Test-wide settings: a fake AWS (moto) and no network."""

import os

# Set before any handler module is imported: Powertools and boto3 read these at import.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "canvas-sis-imports",
        "POWERTOOLS_METRICS_NAMESPACE": "CanvasSisImports",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # The root accounts the tests' events come from (tests.factories); tests of refusals set their own.
        "SIS_ROOT_ACCOUNTS": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs,OtherInstanceUuid",
    }
)
os.environ.pop("SIS_HOSTNAMES", None)
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)


import base64  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

HANDLER_MODULES = ("ingest", "query", "notifier", "sqs_consumer", "eventbridge", "alert_retry")


def http_event(
    body: str | bytes | dict | None = None,
    *,
    method: str = "POST",
    path: str = "/events",
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload v2) event `make run`'s gateway builds; bytes go base64."""
    from urllib.parse import urlencode

    from local import gateway

    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    route = gateway.match(method, path)
    event = gateway.http_event(
        method, path + (f"?{urlencode(query)}" if query else ""), [("content-type", content_type)], raw or b"",
        route[0] if route else f"{method} {path}", path_parameters, port=443, request_id="req-test-1",
    )
    if isinstance(body, bytes):  # as API Gateway does for binary media types
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    return event


@pytest.fixture
def handlers_fresh():
    """Handler modules whose cached apps are rebuilt from the current env on first call."""
    import importlib

    modules = {name: importlib.import_module(f"handlers.{name}") for name in HANDLER_MODULES}
    for module in modules.values():
        module.app.cache_clear()
    yield modules
    for module in modules.values():
        module.app.cache_clear()


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS with the batch table (and stream), the topic and a subscriber queue."""
    from moto import mock_aws

    from tests.aws_env import TABLE_NAME, AwsEnv

    with mock_aws():
        env = AwsEnv.create()
        monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
        monkeypatch.setenv("TOPIC_ARN", env.topic_arn)
        monkeypatch.setenv("ALERT_RETRY_QUEUE_URL", env.retry_queue_url)
        monkeypatch.setenv("NOTIFIER_FAILURE_QUEUE_URL", env.failures_url)
        monkeypatch.setenv("ALERT_RETRY_DELAY_SECONDS", "0")
        yield env


@pytest.fixture
def signing_key():
    from tests.jwks import SigningKey

    return SigningKey("canvas-2026-11")


@pytest.fixture
def jwks_server(signing_key):
    from tests.jwks import JwksServer

    server = JwksServer([signing_key])
    yield server
    server.close()


@pytest.fixture
def jwt_mode(monkeypatch, jwks_server):
    monkeypatch.setenv("SIS_AUTH", "jwt")
    monkeypatch.setenv("SIS_JWKS_URL", jwks_server.url)
    monkeypatch.delenv("SIS_JWT_ISSUERS", raising=False)
    return jwks_server


@pytest.fixture(autouse=True)
def _fresh_boto3_session():
    """Hooks a test registers on boto3's default session end with the test."""
    import boto3

    boto3.DEFAULT_SESSION = None
    yield
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def captured_logs():
    """Everything the Powertools logger writes (its JSON lines), during the test."""
    import io

    from sis_imports.adapters.observability import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    level = logger.log_level
    logger.setLevel("DEBUG")  # every line at every level, as an invocation sampled at DEBUG logs them
    yield buffer
    logger.setLevel(level)
    logger.registered_handler.setStream(previous)


@pytest.fixture(scope="module")
def server():
    """A real HTTP server on 127.0.0.1 (pytest-httpserver), threaded so that a handler that sleeps holds
    up no other request: the Canvas API client's and the chat webhook's tests talk to it."""
    from pytest_httpserver import HTTPServer

    httpd = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    httpd.start()
    yield httpd
    httpd.clear()
    httpd.stop()


# `make test` (issue 16): pytest-xdist workers. The infrastructure tests share one worker, so each stack
# variant is synthesized once (conftest's session fixtures); each end-to-end module keeps its local run on
# one worker. `--dist loadgroup` (pyproject) reads these groups; without xdist they change nothing.
@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        suite = item.nodeid.split("/")[1] if item.nodeid.startswith("tests/") else ""
        if suite == "infra":
            item.add_marker(pytest.mark.xdist_group("infra"))
        elif suite == "e2e":
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


class SuiteProgress:
    """Says each suite's outcome as soon as its last test has run (a line amid pytest's dots)."""

    def __init__(self, config):
        import time
        from collections import Counter

        self._time = time.monotonic
        self._start = time.monotonic()
        self._config = config
        self.total: Counter = Counter()
        self.done: Counter = Counter()
        self.outcomes: dict[str, Counter] = {}

    @staticmethod
    def suite(nodeid: str) -> str:
        # tests/<suite>/…, or a test file of its own at the top (tests/test_layers.py)
        return "/".join(nodeid.split("::")[0].split("/")[:2]) if nodeid.startswith("tests/") else nodeid.split("::")[0]

    def count(self, nodeids):
        if not self.total:
            self.total.update(self.suite(n) for n in nodeids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.count(ids)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self.count(item.nodeid for item in session.items)

    def pytest_runtest_logreport(self, report):
        from collections import Counter

        suite = self.suite(report.nodeid)
        outcomes = self.outcomes.setdefault(suite, Counter())
        if report.failed or (report.when == "call") or (report.when == "setup" and report.skipped):
            outcomes["failed" if report.failed else report.outcome] += 1
        if report.when == "teardown":
            self.done[suite] += 1
            if self.done[suite] == self.total[suite]:
                said = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
                took = self._time() - self._start
                self._config.get_terminal_writer().line(f"\n{suite}: {said} ({took:.0f} s since the start)")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist), not a worker
        config.pluginmanager.register(SuiteProgress(config), "suite-progress")
