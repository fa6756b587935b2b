"""The local run's pieces that stand in for AWS, checked without starting it: API Gateway's event
and response mapping, and the event-source pollers' Lambda semantics (fakes, no moto)."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from local.gateway import BATCH_ROUTE, EVENTS_ROUTE, JWKS_PATH, LocalGateway, http_event, match, to_response
from local.pollers import AlertSubscriber, CanvasQueuePoller, StreamPoller, notification_line
from local.send import describe_offset, rebase

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_routes_match_as_api_gateway_routes_them():
    assert match("POST", "/events") == (EVENTS_ROUTE, None)
    assert match("GET", "/batches/abc%3A1/42") == (BATCH_ROUTE, {"root_account_uuid": "abc:1", "sis_batch_id": "42"})
    assert match("GET", "/batches/abc%3A1") == ("GET /batches/{root_account_uuid}", {"root_account_uuid": "abc:1"})
    for method, path in [("GET", "/events"), ("POST", "/events/"), ("GET", "/batches/"), ("GET", "/batches/a/b/c"),
                         ("GET", "/batches//b"), ("DELETE", "/batches/a/b")]:
        assert match(method, path) is None


def test_the_payload_v2_event():
    headers = [("Content-Type", "application/jwt"), ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2"),
               ("Cookie", "a=1; b=2"), ("User-Agent", "Canvas")]
    event = http_event("POST", "/events?token=t&x=1&x=2", headers, b"abc", EVENTS_ROUTE, None,
                       port=3000, request_id="r-1")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /events"
    assert (event["rawPath"], event["rawQueryString"]) == ("/events", "token=t&x=1&x=2")
    assert event["queryStringParameters"] == {"token": "t", "x": "1,2"}
    assert event["headers"] == {"content-type": "application/jwt", "x-forwarded-for": "1.1.1.1,2.2.2.2",
                                "user-agent": "Canvas"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"] == {"method": "POST", "path": "/events", "protocol": "HTTP/1.1",
                                               "sourceIp": "127.0.0.1", "userAgent": "Canvas"}
    assert event["requestContext"]["requestId"] == "r-1"
    assert (event["body"], event["isBase64Encoded"]) == ("abc", False)
    assert "pathParameters" not in event

    binary = http_event("POST", "/events", [], b"\xff\xfe", EVENTS_ROUTE, None, port=3000, request_id="r-2")
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\xfe"
    empty = http_event("GET", "/batches/u/1", [], b"", BATCH_ROUTE, {"root_account_uuid": "u", "sis_batch_id": "1"},
                       port=3000, request_id="r-3")
    assert "body" not in empty and empty["pathParameters"] == {"root_account_uuid": "u", "sis_batch_id": "1"}


def test_the_function_answer_becomes_the_http_response():
    status, headers, body = to_response({"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["c=1"],
                                         "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True})
    assert (status, body) == (201, b"\x00")
    assert ("x-a", "1") in headers and ("set-cookie", "c=1") in headers
    assert ("content-type", "application/json") in headers
    assert to_response({"ok": True}) == (200, [("content-type", "application/json")], b'{"ok": true}')


class FakeStreams:
    def __init__(self, records):
        self.records = records

    def describe_stream(self, StreamArn):
        return {"StreamDescription": {"Shards": [{"ShardId": "s-1"}]}}

    def get_shard_iterator(self, **kwargs):
        return {"ShardIterator": "it-0"}

    def get_records(self, ShardIterator):
        records, self.records = self.records, []
        return {"Records": records, "NextShardIterator": "it-next"}


def stream_record(n: int) -> dict:
    created = datetime.now(timezone.utc) - timedelta(minutes=1)  # well within the stream's age limit
    return {"eventID": str(n), "eventName": "MODIFY",
            "dynamodb": {"SequenceNumber": f"{n:03d}", "ApproximateCreationDateTime": created}}


def test_the_stream_poller_resumes_at_the_first_failed_record():
    calls = []

    def notifier(event, context):
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(numbers)
        # As Lambda hands them over: the stream's ARN added, the creation time in epoch seconds.
        assert all(r["eventSourceARN"] == "arn:stream" for r in event["Records"])
        assert all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], float) for r in event["Records"])
        # The first call fails at the second record; later ones succeed.
        return {"batchItemFailures": [{"itemIdentifier": n} for n in numbers[1:]] if len(calls) == 1 else []}

    streams = FakeStreams([stream_record(1), stream_record(2), stream_record(3)])
    poller = StreamPoller(threading.Event(), "arn:stream", notifier, streams=streams)
    poller.stop.set()  # no back-off wait between attempts
    assert poller.poll() is False  # failed at 002
    assert poller.poll() is True
    assert calls == [["001", "002", "003"], ["002", "003"]]
    assert poller.pending == [] and poller.iterators == {"s-1": "it-next"}


class FakeSqs:
    def __init__(self, messages):
        self.messages, self.deleted = messages, []

    def receive_message(self, **kwargs):
        messages, self.messages = self.messages, []
        return {"Messages": messages}

    def delete_message(self, QueueUrl, ReceiptHandle):
        self.deleted.append(ReceiptHandle)


def sqs_message(n: int, body: str = "{}") -> dict:
    return {"MessageId": f"m{n}", "ReceiptHandle": f"h{n}", "Body": body, "MD5OfBody": "x",
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
            "MessageAttributes": {"a": {"DataType": "String", "StringValue": "v"}}}


def test_the_canvas_queue_poller_keeps_only_the_failed_messages():
    seen = []

    def consumer(event, context):
        seen.extend(event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": "m2"}]}

    sqs = FakeSqs([sqs_message(1), sqs_message(2), sqs_message(3)])
    poller = CanvasQueuePoller(threading.Event(), "http://q", "arn:aws:sqs:us-east-1:123456789012:q", consumer, 5,
                               sqs=sqs)
    assert poller.poll() is True
    assert poller.sqs.deleted == ["h1", "h3"]
    record = seen[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":q")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["a"]["stringValue"] == "v"
    assert set(record) >= {"messageId", "receiptHandle", "body", "md5OfBody", "awsRegion"}


def test_an_alert_line_is_written_once_even_if_the_message_is_odd(tmp_path):
    envelope = {"Type": "Notification", "Subject": "SIS import 1 failed", "Message": json.dumps({"outcome": "failure"}),
                "MessageAttributes": {"outcome": {"Type": "String", "Value": "failure"}}}
    from sis_imports.core.alert_text import email_text

    assert notification_line(envelope) == {"subject": "SIS import 1 failed", "message": {"outcome": "failure"},
                                           "attributes": {"outcome": "failure"},
                                           "email": email_text({"outcome": "failure"})}
    sqs = FakeSqs([{"ReceiptHandle": "h1", "Body": json.dumps({"Subject": "s", "Message": "plain"})}])
    subscriber = AlertSubscriber(threading.Event(), "http://q", tmp_path / "alerts" / "n.jsonl", sqs=sqs)
    assert subscriber.poll() is True
    assert [json.loads(line) for line in (tmp_path / "alerts" / "n.jsonl").read_text().splitlines()] == [
        {"subject": "s", "message": "plain", "attributes": {}, "email": None}]
    assert subscriber.sqs.deleted == ["h1"]


def test_the_gateway_has_a_real_backlog_and_answers_without_nagle_delays():
    gateway = LocalGateway(0)
    accepted: list[socket.socket] = []
    get_request = gateway.get_request

    def recording_get_request():
        request = get_request()
        accepted.append(request[0])
        return request

    gateway.get_request = recording_get_request  # type: ignore[method-assign]
    gateway.jwks = {"keys": []}
    thread = threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        assert gateway.request_queue_size >= 128  # socketserver's default of 5 reset a burst of 16 senders
        connection = http.client.HTTPConnection("127.0.0.1", gateway.server_address[1], timeout=5)
        try:
            for _ in range(2):  # keep-alive: one connection, two answers
                connection.request("GET", JWKS_PATH)
                assert connection.getresponse().read() == b'{"keys": []}'
            assert len(accepted) == 1
            # The connection is still open: the server's end of it has Nagle's algorithm off.
            assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            connection.close()
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join(timeout=5)


def event_at(event_time, sis_batch_id="1"):
    return {"metadata": {"event_name": "sis_batch_updated", "event_time": event_time},
            "body": {"sis_batch_id": sis_batch_id, "workflow_state": "importing"}}


NOW = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def test_send_shifts_a_files_times_so_that_the_newest_is_now_keeping_their_spacing():
    events = json.loads((EXAMPLES / "restored_import.json").read_text())
    before = copy.deepcopy(events)
    shifted, offset = rebase(events, now=NOW)
    assert events == before  # the file's events are not changed in place
    times = [e["metadata"]["event_time"] for e in shifted]
    assert max(times) == times[-1] == "2031-05-06T07:08:09.123Z"  # now, to the millisecond
    def parse(value: str) -> datetime:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")

    originals = [parse(e["metadata"]["event_time"]) for e in events]
    assert [parse(t) - parse(times[0]) for t in times] == [t - originals[0] for t in originals]
    assert offset == parse(times[-1]) - originals[-1]
    # Everything but event_time is as written.
    for old, new in zip(events, shifted):
        assert {**new, "metadata": {**new["metadata"], "event_time": None}} == {
            **old, "metadata": {**old["metadata"], "event_time": None}}


def test_send_leaves_events_without_a_usable_time_as_they_are():
    odd = ["not an object", {"metadata": "not an object"}, {"body": {}}, event_at("2020-01-14 14:14:11"),
           event_at("2020-02-30T00:00:00.000Z"), event_at(1579011251), event_at("2020-01-14T14:14:11.498+00:00")]
    shifted, offset = rebase([*odd, event_at("2020-01-14T14:14:11.498Z"), event_at("2020-01-14T14:14:10.000Z")],
                             now=NOW)
    assert shifted[:len(odd)] == odd
    assert [e["metadata"]["event_time"] for e in shifted[len(odd):]] == [
        "2031-05-06T07:08:09.123Z", "2031-05-06T07:08:07.625Z"]
    assert rebase(odd, now=NOW) == (odd, None)
    # A time from the future moves back; one that cannot move that far is sent as written.
    shifted, offset = rebase([event_at("9999-12-31T23:59:59.999Z"), event_at("0001-01-01T00:00:00.000Z")], now=NOW)
    assert offset < timedelta(0)
    assert [e["metadata"]["event_time"] for e in shifted] == ["2031-05-06T07:08:09.123Z", "0001-01-01T00:00:00.000Z"]


def test_the_shift_is_told_in_days_and_clock_time():
    assert describe_offset(timedelta(days=2339, hours=3, minutes=55, seconds=12, milliseconds=345)) == \
        "+2339 days 03:55:12.345"
    assert describe_offset(timedelta(days=1, milliseconds=1)) == "+1 day 00:00:00.001"
    assert describe_offset(timedelta(seconds=-5)) == "-00:00:05.000"
    assert describe_offset(timedelta(0)) == "+00:00:00.000"
