"""The why of an end, read from Canvas at alert time: counts and first errors of a failed import, the
threshold reason of an abort, and an alert without details (saying why) when Canvas does not answer."""

from __future__ import annotations

import socket
import time

import boto3
import pytest

from sis_imports.usecases.notify import Notifier
from local.lambda_context import LambdaContext
from sis_imports.adapters.alert_details import CanvasDetails, worst_seconds
from sis_imports.core.alert_text import email_text
from sis_imports.adapters.publisher import AlertPublisher
from tests.handlers.test_reconciler import TOKEN, Clock, World


@pytest.fixture
def world(aws):
    # The instance's host is the one its events name, as in production (here the simulator's address).
    w = World(aws, Clock(), hostname="127.0.0.1")
    yield w
    w.canvas.stop()


def notify(world: World, details: CanvasDetails) -> list[dict]:
    notifier = Notifier(AlertPublisher(boto3.client("sns"), world.aws.topic_arn), details=details)
    world.aws.pump_stream(lambda event, context: notifier.handle(event, context))
    return [a["message"] for a in world.aws.alerts()]


def test_a_failed_imports_alert_carries_its_counts_and_first_errors(world):
    errors = [["enrollments.csv", f"Unknown course id CRS-{n} referenced in enrollment"] for n in range(30)]
    sis_id = world.canvas.create_import()
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing")
    world.clock.tick(60)
    world.canvas.advance(sis_id, "failed_with_messages", errors=errors, counts={"users": 12, "enrollments": 40})
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    details = alert["details"]
    assert details["counts"]["users"] == 12 and details["counts"]["enrollments"] == 40
    assert details["error_count"] == 30 and len(details["errors"]) == 10
    assert details["errors"][0] == {"file": "enrollments.csv", "message": "Unknown course id CRS-0 referenced in enrollment"}
    assert "verifier" not in str(alert) and "errors_attachment" not in str(alert)
    text = email_text(alert)
    assert "Errors: 30" in text and "enrollments.csv: Unknown course id CRS-0" in text
    assert alert["canvas_page_url"] == "https://127.0.0.1/accounts/1/sis_import"


def test_an_aborted_imports_alert_carries_the_threshold_reason(world):
    world.reconcile()
    sis_id = world.canvas.create_import(batch_mode=True, change_threshold=10)
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing")
    world.clock.tick(60)
    world.canvas.abort(sis_id, "change_threshold", deletes=250)
    world.clock.tick(30)
    world.reconcile()
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    assert (alert["workflow_state"], alert["detected_by"]) == ("aborted", "sis_import_api")
    reason = alert["details"]["abort_reason"]
    assert "250 enrollments would be deleted and exceeds the set threshold" in reason
    assert alert["details"]["batch_mode"] is True and alert["details"]["change_threshold"] == 10
    text = email_text(alert)
    assert f"Aborted because: {reason}" in text
    assert text.count(reason) == 1 and "None" not in text and "batch mode: yes" in text  # once, and in words


def test_an_unreachable_canvas_gives_an_alert_without_details_within_the_notifiers_time(world):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    sis_id = world.canvas.create_import()
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing")
    world.canvas.advance(sis_id, "failed")
    started = time.monotonic()
    try:
        (alert,) = notify(world, CanvasDetails([(f"http://127.0.0.1:{silent.getsockname()[1]}", lambda: TOKEN)],
                                               timeout=1.0))
    finally:
        silent.close()
    took = time.monotonic() - started
    print(f"unreachable Canvas: the alert went out without details after {took:.2f} s")
    assert alert["details"] is None and "did not answer" in alert["details_unavailable"]
    assert took < 10  # the notifier's 30 s timeout is never at risk; one bounded read, no retry
    assert "Details from Canvas are not included" in email_text(alert)


def test_a_host_without_an_instance_says_so(world):
    sis_id = world.canvas.create_import()
    world.canvas.advance(sis_id, "importing")
    world.canvas.advance(sis_id, "imported")
    (alert,) = notify(world, CanvasDetails([("https://other.instructure.com", lambda: TOKEN)]))
    assert alert["details"] is None and "no Canvas instance is configured for 127.0.0.1" in alert["details_unavailable"]


def test_a_throttled_canvas_is_asked_twice_more_and_the_details_come(world):
    sis_id = world.canvas.create_import()
    world.canvas.advance(sis_id, "importing")
    world.canvas.advance(sis_id, "failed_with_messages")
    world.canvas.throttle_next(2)  # 403 Rate Limit Exceeded twice, then an answer
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    assert alert["details"] is not None and alert["details"]["error_count"] == 1


def test_a_canvas_throttling_past_the_retries_gives_an_alert_saying_so(world):
    sis_id = world.canvas.create_import()
    world.canvas.advance(sis_id, "importing")
    world.canvas.advance(sis_id, "failed_with_messages")
    world.canvas.throttle_next(3)
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    assert alert["details"] is None and "still rate limited (403) after 3 tries" in alert["details_unavailable"]
    assert world.canvas.throttled == 3


def test_the_details_read_takes_at_most_its_worst_case_against_the_slowest_throttling_canvas(world, server):
    from werkzeug import Response

    def slow_throttle(request):
        time.sleep(0.6)  # within the 1 s deadline, every time
        return Response("403 Forbidden (Rate Limit Exceeded)\n", status=403,
                        headers={"X-Rate-Limit-Remaining": "0.0", "Retry-After": "3600"})  # capped at 2 s

    sis_id = world.canvas.create_import()
    world.canvas.run(sis_id, "imported")
    batch = world.store.get(world.canvas.root_account_uuid, str(sis_id))  # its host is the server's: 127.0.0.1
    server.expect_request(f"/api/v1/accounts/self/sis_imports/{sis_id}").respond_with_handler(slow_throttle)
    details = CanvasDetails([(server.url_for("/").rstrip("/"), lambda: TOKEN)], timeout=1.0)
    started = time.monotonic()
    found, unavailable = details.fetch(batch)
    took = time.monotonic() - started
    print(f"three slow throttled reads: {took:.2f} s of a worst case of {worst_seconds(1.0):g} s")
    assert found is None and "after 3 tries" in unavailable, unavailable
    assert 3 * 0.6 + 2 + 2 <= took <= worst_seconds(1.0)  # every try and both capped waits, within the worst


def test_learning_root_accounts_is_bounded_per_alert_and_goes_on_at_the_next(world):
    """Three instances that never answer come before the batch's own: an alert starts no read once two reads'
    time is spent learning, and the next alert asks the instances not yet asked first."""
    silent = [socket.socket() for _ in range(3)]
    try:
        for s in silent:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
        instances = [(f"http://localhost:{s.getsockname()[1]}", lambda: TOKEN) for s in silent]
        details = CanvasDetails([*instances, (world.canvas.base_url, lambda: TOKEN)], timeout=0.5)
        lost = {"lose": ["initializing", "created"]}  # no host: only its root account finds its instance
        first, second = world.canvas.create_import(**lost), world.canvas.create_import(**lost)
        for sis_id in (first, second):
            world.canvas.run(sis_id, "imported", counts={"users": 3})
        batches = [world.store.get(world.canvas.root_account_uuid, str(i)) for i in (first, second)]
        started = time.monotonic()
        found, unavailable = details.fetch(batches[0])
        took = time.monotonic() - started
        assert found is None and "(4 of 4 not yet learnt: asked again for a later alert)" in unavailable, unavailable
        assert 2 * 0.5 <= took <= worst_seconds(0.5)  # two silent instances at their deadline...
        for asked, s in zip((True, True, False), silent):  # ...and the third not asked: no connection waits
            s.setblocking(False)
            try:
                s.accept()[0].close()
                assert asked
            except BlockingIOError:
                assert not asked
        assert details.host_for(batches[0]) is None  # the same batch is not looked up twice
        # Had the two asked in vain been asked again first, the batch's own would be out of this alert's time.
        found, unavailable = details.fetch(batches[1])  # the third silent one, then the batch's own
        assert unavailable is None and found["counts"]["users"] == 3
    finally:
        for s in silent:
            s.close()


# --- the largest alert Canvas can cause, on every channel -------------------------------------------------

SNS_LIMIT = 262_144  # SNS refuses a Publish over this many bytes (UTF-8)


def publish_size(params: dict) -> int:
    """What SNS counts against its limit: the Message, the Subject, each attribute's name, type and value."""
    size = len(params["Message"].encode()) + len(params.get("Subject", "").encode())
    for name, attribute in (params.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute["StringValue"].encode())
    return size


def test_an_import_whose_canvas_details_hold_emoji_errors_and_warnings_is_delivered_on_every_channel(world, server):
    import json

    from sis_imports.usecases.chat_delivery import ChatWebhook
    from tests.unit.test_chat import assert_within_limits, sent_bytes, utf16_units

    emoji = "😀"
    rows = [[f"{n}{emoji * 499}", emoji * 500] for n in range(24)]  # Canvas lists 24, then "and N more"
    sis_id = world.canvas.create_import()
    world.clock.tick(5)
    world.canvas.advance(sis_id, "importing")
    world.clock.tick(60)
    world.canvas.advance(sis_id, "failed_with_messages", errors=rows, warnings=rows, counts={"users": 12})

    publishes: list[dict] = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sns.Publish",
                                          lambda params, **kw: publishes.append(dict(params)))
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    chat_topic = sns.create_topic(Name="chat")["TopicArn"]
    chat_queue = sqs.create_queue(QueueName="chat-subscriber")["QueueUrl"]
    chat_queue_arn = sqs.get_queue_attributes(QueueUrl=chat_queue,
                                              AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=chat_topic, Protocol="sqs", Endpoint=chat_queue_arn)
    notifier = Notifier(AlertPublisher(sns, world.aws.topic_arn, chat_topic),
                        details=CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    world.aws.pump_stream(lambda event, context: notifier.handle(event, context))

    # SNS: both publishes (alert topic, chat topic) within the limit, as SNS counts it.
    assert len(publishes) == 2 and all(publish_size(p) <= SNS_LIMIT for p in publishes)
    print(f"largest publish: {max(publish_size(p) for p in publishes):,} bytes")
    # SQS, Lambda, HTTPS (the `default` JSON): every row Canvas gave, whole.
    (delivered,) = world.aws.alerts()
    alert = delivered["message"]
    assert [r["message"] for r in alert["details"]["errors"]] == [emoji * 500] * 10
    assert [r["file"] for r in alert["details"]["warnings"]] == [f"{n}{emoji * 499}" for n in range(10)]
    # Email: the text, with every row.
    email = json.loads(publishes[0]["Message"])["email"]
    assert email == email_text(alert) and email.count(f": {emoji * 500}\n") == 20
    # AWS Chatbot: the chat topic's subscriber got a custom notification.
    (chat_message,) = sqs.receive_message(QueueUrl=chat_queue)["Messages"]
    notification = json.loads(json.loads(chat_message["Body"])["Message"])
    assert (notification["version"], notification["source"]) == ("1.0", "custom")
    assert utf16_units(notification["content"]["description"]) <= 3500 and emoji * 20 in notification["content"][
        "description"]
    # Slack and Teams webhooks: what SNS hands the chat function, posted and taken.
    assert_within_limits(alert)
    for kind, status in (("slack", 200), ("teams", 202)):
        server.clear()
        server.expect_request("/hook", method="POST").respond_with_data("ok", status=status)
        poster = ChatWebhook(kind, lambda fresh: server.url_for("/hook"))
        record = {"Records": [{"Sns": {"Message": json.loads(publishes[0]["Message"])["default"]}}]}
        assert poster.handle(record, None) == {"delivered": 1}
        ((request, _),) = server.log
        body = json.loads(request.get_data())
        assert len(request.get_data()) <= 28_000 and emoji * 20 in json.dumps(body, ensure_ascii=False)
        assert sent_bytes(body) == len(request.get_data())


@pytest.fixture
def vanity(aws):
    # Canvas's events name the school's vanity domain; the instance is configured by its own address.
    w = World(aws, Clock(), hostname="canvas.school.edu")
    yield w
    w.canvas.stop()


def test_a_batch_named_by_a_vanity_domain_gets_its_details_and_the_instances_own_host(vanity):
    sis_id = vanity.canvas.create_import()
    vanity.clock.tick(5)
    vanity.canvas.run(sis_id, "failed_with_messages", counts={"users": 7})
    (alert,) = notify(vanity, CanvasDetails([(vanity.canvas.base_url, lambda: TOKEN)]))
    assert alert["details"]["counts"]["users"] == 7  # found by its root account, not by host
    assert alert["hostname"] == "127.0.0.1"  # the instance's canonical host, not the alias
    assert alert["canvas_url"].startswith("https://127.0.0.1/api/v1/accounts/1/sis_imports/")


def test_a_batch_whose_creation_events_were_lost_gets_its_details(world):
    sis_id = world.canvas.create_import(lose=["initializing", "created"])
    world.clock.tick(5)
    world.canvas.run(sis_id, "imported_with_messages", counts={"users": 9})
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    assert alert["details"]["counts"]["users"] == 9 and alert["hostname"] == "127.0.0.1"


def test_a_host_less_batch_gets_no_details_from_an_instance_of_another_root_account(world):
    sis_id = world.canvas.create_import(lose=["initializing", "created"])
    world.clock.tick(5)
    world.canvas.run(sis_id, "imported")
    world.canvas.root_account_uuid = "AnotherRootAccountUuid"  # what accounts/self answers from now on
    (alert,) = notify(world, CanvasDetails([(world.canvas.base_url, lambda: TOKEN)]))
    assert alert["details"] is None and "nor for root account" in alert["details_unavailable"]
    assert alert["hostname"] is None
