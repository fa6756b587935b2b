"""Compound faults on the delivery path, through the real handlers on moto and real HTTP servers on
127.0.0.1: every AWS client has limits that fit its function; SNS and the retry queue down together
never lose an alert (the record is retried until its age limit, and near it the alert is parked whole
and `make redrive --which alerts` puts it back); the retry republisher never starts what it cannot
finish."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

import sis_imports.usecases.alert_retry as alert_retry_module
import sis_imports.usecases.notify as notifier_module
from local.lambda_context import LambdaContext
from ops.redrive import redrive_parked_alerts
from sis_imports import wiring
from sis_imports.core import delivery
from tests.conftest import http_event
from tests.factories import T0, at, canvas_event

HOUR = 3600


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def post(handlers, event):
    assert handlers["ingest"].handler(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200


class Faults:
    """SNS Publish and SQS SendMessage (per queue) failing on demand, on clients made from now on."""

    def __init__(self):
        self.sns_down = False
        self.queues_down: set[str] = set()
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("provide-client-params.sns.Publish", self._sns)
        boto3.DEFAULT_SESSION.events.register("provide-client-params.sqs.SendMessage", self._sqs)

    def _sns(self, params, **_):
        if self.sns_down:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "outage"}}, "Publish")

    def _sqs(self, params, **_):
        if params["QueueUrl"] in self.queues_down:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "outage"}}, "SendMessage")


def aged(records, seconds):
    """The records as Lambda would hand them over `seconds` after they were written."""
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = time.time() - seconds
    return records


def sqs_records(aws, url):
    out = []
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              AttributeNames=["All"]).get("Messages", []):
        out += [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                 "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": "",
                 "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                 "awsRegion": "us-east-1"} for m in messages]
    return out


def queue_arn(aws, url):
    return aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


# -- every client has limits, from one place ---------------------------------------------------

def test_every_client_the_functions_make_has_the_limits_of_its_service(aws, none_mode, handlers_fresh, monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "token")
    monkeypatch.setenv("SIS_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:t")
    ingest = handlers_fresh["ingest"].app()
    notifier = handlers_fresh["notifier"].app()
    clients = [  # the clients the functions really hold
        ("dynamodb", ingest._ingest._store._client),
        ("secretsmanager", ingest._authenticator._expected_token._client),
        ("sns", notifier._publisher._client),
        ("sqs", notifier._retries._make_client()),
        ("sqs", notifier._failures._make_client()),
    ]
    assert {service for service, _ in clients} == set(wiring.CLIENT_LIMITS)
    for service, client in clients:
        limits = wiring.CLIENT_LIMITS[service]
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (limits.connect, limits.read), service
        assert config.retries == {"mode": "standard", "total_max_attempts": limits.attempts}, service
        assert limits.read < 60 and limits.attempts <= 3  # never botocore's defaults


class Silent(ThreadingHTTPServer):
    """An AWS endpoint on 127.0.0.1 that reads the request and never answers (or drips, `drip` s a byte)."""

    daemon_threads = True

    def __init__(self, drip: float = 0.0):
        server = self
        self.requests = 0
        self.drip = drip
        self.closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                server.requests += 1
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if server.drip:
                    self.send_response(200)
                    self.send_header("content-length", "1000")
                    self.end_headers()
                    while not server.closing.is_set():
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                        server.closing.wait(server.drip)
                server.closing.wait(30)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.closing.set()
        self.shutdown()
        self.server_close()


@pytest.mark.parametrize("service", ["sns", "sqs"])
def test_an_aws_endpoint_that_never_answers_is_given_up_within_the_clients_worst_case(monkeypatch, service):
    # The reproduction: botocore's default waits 60 s a read, three times, inside a 60 s notifier.
    endpoint = Silent()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    try:
        client = wiring._client(service)
        call = (lambda: client.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m")) \
            if service == "sns" else (lambda: client.send_message(QueueUrl=f"{endpoint.url}/1/q", MessageBody="m"))
        started = time.monotonic()
        with pytest.raises((ReadTimeoutError, ConnectTimeoutError)):
            call()
        took = time.monotonic() - started
    finally:
        endpoint.close()
    limits = wiring.CLIENT_LIMITS[service]
    print(f"{service}: gave up after {took:.2f} s and {endpoint.requests} tries")
    assert endpoint.requests == limits.attempts
    assert limits.attempts * limits.read <= took <= wiring.worst_seconds(service)


def test_the_functions_budgets_come_from_the_clients_limits():
    sns, sqs = wiring.worst_seconds("sns"), wiring.worst_seconds("sqs")
    assert notifier_module.ALERT_WORST_S == 2 * sns + 2 * sqs  # topic, chat, retry queue, failure queue
    # Two ends (each asking Canvas why) and a stuck alert.
    assert notifier_module.needed_ms(2, 1, True) == int(1000 * (2 * notifier_module.DETAILS_WORST_S
                                                                + 3 * (2 * sns + 2 * sqs) + notifier_module.MARGIN_S))
    assert alert_retry_module.NEEDED_MS >= 2 * sns * 1000  # the alert topic and the chat topic


# -- SNS and the retry queue down together -----------------------------------------------------

def test_sns_and_the_retry_queue_down_together_fail_the_record_while_it_is_young(aws, none_mode, handlers_fresh):
    faults = Faults()
    faults.sns_down, faults.queues_down = True, {aws.retry_queue_url}
    post(handlers_fresh, canvas_event("failed", T0, "7001"))
    records = aged(aws.new_stream_records(), 2 * HOUR)
    answer = handlers_fresh["notifier"].handler({"Records": records}, LambdaContext())
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert failed and failed == numbers[numbers.index(failed[0]):]  # the record that owes the alert, on
    assert aws.drain(aws.failures_url) == []  # nothing parked: Lambda retries it, with no count to run out
    faults.sns_down = False
    assert handlers_fresh["notifier"].handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    assert [a["message"]["sis_batch_id"] for a in aws.alerts()] == ["7001"]


def test_near_the_age_limit_the_alert_is_parked_whole_and_redrive_puts_it_back(aws, none_mode, handlers_fresh):
    faults = Faults()
    faults.sns_down, faults.queues_down = True, {aws.retry_queue_url}
    post(handlers_fresh, canvas_event("failed", T0, "7101"))
    post(handlers_fresh, canvas_event("failed", T0, "7102"))
    # Restored later: a second alert of batch 7101 in the same invocation, which must not overtake the first.
    post(handlers_fresh, canvas_event("restoring", at(T0, 60), "7101"))
    post(handlers_fresh, canvas_event("restored", at(T0, 120), "7101"))
    near = delivery.STREAM_MAX_RECORD_AGE_SECONDS - delivery.PARK_WITHIN_SECONDS + 60
    records = aged(aws.new_stream_records(), near)
    answer = handlers_fresh["notifier"].handler({"Records": records}, LambdaContext())
    assert answer == {"batchItemFailures": []}  # let go: what it owed is parked, whole
    parked = aws.drain(aws.failures_url)
    assert [(p["alert"]["message"]["sis_batch_id"], p["alert"]["message"]["workflow_state"]) for p in parked] == [
        ("7101", "failed"), ("7102", "failed"), ("7101", "restored")]
    assert all("age limit" in p["reason"] or "earlier alert" in p["reason"] for p in parked)
    assert aws.alerts() == []

    # Back on the queue for redrive (drain deleted them), then SNS and the retry queue come back.
    for message in parked:
        aws.sqs.send_message(QueueUrl=aws.failures_url, MessageBody=json.dumps(message))
    aws.sqs.send_message(QueueUrl=aws.failures_url, MessageBody=json.dumps({"reason": "unreadable", "record": {}}))
    faults.sns_down, faults.queues_down = False, set()
    summary = redrive_parked_alerts(aws.sqs, queue_arn(aws, aws.failures_url), aws.retry_queue_url, dry_run=False)
    assert "3 parked alert(s) put back" in summary and "1 other message(s)" in summary
    answer = handlers_fresh["alert_retry"].handler({"Records": sqs_records(aws, aws.retry_queue_url)}, LambdaContext())
    assert answer == {"batchItemFailures": []}
    alerts = aws.alerts()
    assert sorted((a["message"]["sis_batch_id"], a["message"]["workflow_state"]) for a in alerts) == [
        ("7101", "failed"), ("7101", "restored"), ("7102", "failed")]
    assert {a["message"]["alert_id"] for a in alerts} == {p["alert"]["message"]["alert_id"] for p in parked}


def test_a_dry_run_of_redrive_moves_nothing(aws):
    body = {"reason": "r", "alert": {"targets": ["topic"], "subject": "s", "message": {"alert_id": "a"},
                                     "attributes": {}}}
    aws.sqs.send_message(QueueUrl=aws.failures_url, MessageBody=json.dumps(body))
    summary = redrive_parked_alerts(aws.sqs, queue_arn(aws, aws.failures_url), aws.retry_queue_url, dry_run=True)
    assert "1 parked alert(s) waiting" in summary
    assert aws.sqs.receive_message(QueueUrl=aws.retry_queue_url).get("Messages", []) == []


def test_when_even_the_failure_queue_is_down_the_record_fails_and_is_retried(aws, none_mode, handlers_fresh):
    faults = Faults()
    faults.sns_down, faults.queues_down = True, {aws.retry_queue_url, aws.failures_url}
    post(handlers_fresh, canvas_event("failed", T0, "7201"))
    records = aged(aws.new_stream_records(), delivery.STREAM_MAX_RECORD_AGE_SECONDS - 60)
    answer = handlers_fresh["notifier"].handler({"Records": records}, LambdaContext())
    assert answer["batchItemFailures"] and aws.alerts() == []


# -- the retry republisher never starts what it cannot finish ------------------------------------

class Short(LambdaContext):
    def __init__(self, left_ms):
        super().__init__(function_name="alert-retry")
        self.left_ms = left_ms

    def get_remaining_time_in_millis(self):
        return self.left_ms


def test_the_retry_republisher_leaves_what_it_has_no_time_for(aws, none_mode, handlers_fresh):
    faults = Faults()
    faults.sns_down = True
    for n in range(3):
        post(handlers_fresh, canvas_event("failed", T0, f"730{n}"))
    aws.pump_stream(handlers_fresh["notifier"].handler)
    records = sqs_records(aws, aws.retry_queue_url)
    assert len(records) == 3
    faults.sns_down = False
    retry = handlers_fresh["alert_retry"].handler
    answer = retry({"Records": records}, Short(alert_retry_module.NEEDED_MS - 1))
    assert len(answer["batchItemFailures"]) == 3 and aws.alerts() == []  # nothing started
    answer = retry({"Records": records}, Short(alert_retry_module.NEEDED_MS))
    assert answer == {"batchItemFailures": []}
    assert sorted(a["message"]["sis_batch_id"] for a in aws.alerts()) == ["7300", "7301", "7302"]
