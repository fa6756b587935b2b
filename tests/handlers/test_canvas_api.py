"""The Canvas API client against a real HTTP server on 127.0.0.1 (pytest-httpserver) for the edge
cases, and against the Canvas simulator for the conventions: paging by Link, throttling then
success, 401/403/5xx/timeouts as this module's exceptions, the token in no message and no log."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug import Response

from local.canvas_simulator import CanvasSimulator
from sis_imports.adapters.canvas_api import (
    CanvasApi,
    CanvasError,
    CanvasForbidden,
    CanvasNotFound,
    CanvasThrottled,
    CanvasUnauthorized,
    CanvasUnavailable,
    canvas_time,
)

TOKEN = "7~CanvasApiTestTokenDoNotLeakQ9zX"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SINCE = datetime(2031, 3, 1, 8, 0, 0, 750000, tzinfo=timezone.utc)
LIST = "/api/v1/accounts/1/sis_imports"
RATE_LIMITED = ("403 Forbidden (Rate Limit Exceeded)\n", 403, {"X-Rate-Limit-Remaining": "0.0",
                                                                "Content-Type": "text/plain; charset=utf-8"})


@pytest.fixture
def canvas(server):
    server.clear()
    yield server
    server.check_assertions()


class Waits:
    """An injectable sleep that records and a clock that moves with it (no real waiting)."""

    def __init__(self):
        self.sleeps: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def settle(server, requests: int, seconds: float = 10.0) -> None:
    """Waits until the server has taken `requests` requests: a client that gave up early must not leave
    one that a loaded server picks up only once the next test has set its own expectations."""
    deadline = time.monotonic() + seconds
    while len(server.log) < requests and time.monotonic() < deadline:
        time.sleep(0.05)


def client(server, waits: Waits | None = None, **options) -> CanvasApi:
    waits = waits or Waits()
    return CanvasApi(server.url_for("/").rstrip("/"), lambda: TOKEN, sleep=waits.sleep, clock=waits.clock, **options)


def sis_import(n: int) -> dict:
    return {"id": n, "workflow_state": "imported", "created_at": "2031-03-01T09:00:00Z", "progress": 100}


def assert_clean(error: BaseException, *texts: str) -> None:
    for shown in (str(error), repr(error), repr(error.args)):
        assert TOKEN not in shown and TOKEN[-4:] not in shown
    for text in texts:
        assert TOKEN not in text and TOKEN[-4:] not in text


# -- paging -------------------------------------------------------------------------------------

def test_three_pages_followed_by_link_with_the_wrapped_list(canvas):
    base = canvas.url_for("/").rstrip("/")
    canvas.expect_ordered_request(LIST, query_string={"created_since": "2031-03-01T08:00:00Z", "per_page": "100"},
                                  headers=AUTH).respond_with_json(
        {"sis_imports": [sis_import(6), sis_import(5)]},
        headers={"Link": f'<{base}{LIST}?page=1&per_page=100>; rel="current",'
                         f'<{base}{LIST}?created_since=x&page=2&per_page=100>; rel="next",'
                         f'<{base}{LIST}?page=1&per_page=100>; rel="first"'})
    canvas.expect_ordered_request(LIST, query_string={"created_since": "x", "page": "2", "per_page": "100"},
                                  headers=AUTH).respond_with_json(
        {"sis_imports": [sis_import(4), sis_import(3)]},
        headers={"Link": f'<{base}{LIST}?created_since=x&page=3&per_page=100>; rel="next"'})
    canvas.expect_ordered_request(LIST, query_string={"created_since": "x", "page": "3", "per_page": "100"},
                                  headers=AUTH).respond_with_json(
        {"sis_imports": [sis_import(2)]}, headers={"Link": f'<{base}{LIST}?page=1&per_page=100>; rel="first"'})
    api = client(canvas)
    found = list(api.sis_imports_created_since(1, SINCE))
    assert [i["id"] for i in found] == [6, 5, 4, 3, 2]
    assert found[0] == sis_import(6)  # the raw JSON dict, not a canvasapi object
    assert api.counters() == {"requests": 3, "throttled": 0, "waited_seconds": 0.0}


def test_since_is_sent_floored_to_the_second_in_utc():
    assert canvas_time(datetime(2031, 3, 1, 3, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5)))) == \
        "2031-03-01T08:00:00Z"
    with pytest.raises(ValueError, match="timezone"):
        canvas_time(datetime(2031, 3, 1))


def test_a_naive_since_is_refused_before_any_request(canvas):
    api = client(canvas)
    with pytest.raises(ValueError):
        api.sis_imports_created_since(1, datetime(2031, 3, 1))
    assert api.requests == 0


def test_a_next_link_to_another_host_is_a_canvas_error(canvas):
    canvas.expect_request(LIST).respond_with_json(
        {"sis_imports": [sis_import(1)]},
        headers={"Link": '<https://elsewhere.example/api/v1/accounts/1/sis_imports?page=2>; rel="next"'})
    with pytest.raises(CanvasError, match="not the expected list") as caught:
        list(client(canvas).sis_imports_created_since(1, SINCE))
    assert_clean(caught.value)


def test_an_unwrapped_or_non_json_answer_is_a_canvas_error(canvas):
    canvas.expect_ordered_request(LIST).respond_with_json([sis_import(1)])
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_data("<html>maintenance</html>")
    api = client(canvas)
    with pytest.raises(CanvasError, match="not the expected list"):
        list(api.sis_imports_created_since(1, SINCE))
    with pytest.raises(CanvasError, match="not JSON"):
        api.account_self()


# -- throttling ---------------------------------------------------------------------------------

def test_rate_limit_403_then_success(canvas):
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_data(*RATE_LIMITED)
    canvas.expect_ordered_request("/api/v1/accounts/self", headers=AUTH).respond_with_json(
        {"id": 1, "uuid": "u" * 40}, headers={"X-Rate-Limit-Remaining": "590.5", "X-Request-Cost": "0.2"})
    waits = Waits()
    api = client(canvas, waits)
    assert api.account_self() == {"id": 1, "uuid": "u" * 40}
    assert waits.sleeps == [1.0]
    assert (api.requests, api.throttled, api.waited) == (2, 1, 1.0)


def test_429_then_success_honours_retry_after(canvas):
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/7").respond_with_data(
        "429 Too Many Requests (Rate Limit Exceeded)\n", 429, {"Retry-After": "2.5", "X-Rate-Limit-Remaining": "0.0"})
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/7").respond_with_json(sis_import(7))
    waits = Waits()
    api = client(canvas, waits)
    assert api.sis_import(1, 7)["id"] == 7
    assert waits.sleeps == [2.5] and api.throttled == 1


def test_throttled_past_the_retries_is_canvas_throttled(canvas, caplog):
    canvas.expect_request("/api/v1/accounts/self").respond_with_data(*RATE_LIMITED)
    waits = Waits()
    api = client(canvas, waits, max_retries=3)
    with caplog.at_level(logging.WARNING), pytest.raises(CanvasThrottled) as caught:
        api.account_self()
    assert waits.sleeps == [1.0, 2.0, 4.0]  # growing, bounded
    assert (api.requests, api.throttled) == (4, 4)
    assert "127.0.0.1" in str(caught.value) and "/api/v1/accounts/self" in str(caught.value)
    assert caught.value.status == 403 and caught.value.route == "/api/v1/accounts/self"
    assert "retry 3 of 3" in caplog.text
    assert_clean(caught.value, caplog.text)


def test_low_remaining_quota_waits_before_the_next_request(canvas):
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_json(
        {"id": 1, "uuid": "u"}, headers={"X-Rate-Limit-Remaining": "40.0"})
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/3").respond_with_json(
        sis_import(3), headers={"X-Rate-Limit-Remaining": "400.0"})
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/4").respond_with_json(sis_import(4))
    waits = Waits()
    api = client(canvas, waits, low_remaining=100.0)
    api.account_self()
    assert waits.sleeps == []
    api.sis_import(1, 3)
    assert waits.sleeps == [6.0]  # (100 - 40) / 10 units a second, Canvas's leak rate
    api.sis_import(1, 4)
    assert waits.sleeps == [6.0]


# -- failures ---------------------------------------------------------------------------------

def test_401_is_canvas_unauthorized(canvas):
    canvas.expect_request("/api/v1/accounts/self").respond_with_json(
        {"errors": [{"message": "Invalid access token."}]}, 401, {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
    with pytest.raises(CanvasUnauthorized, match=r"127\.0\.0\.1.*401.*/api/v1/accounts/self") as caught:
        client(canvas).account_self()
    assert_clean(caught.value)


def test_403_without_rate_limit_is_forbidden_and_names_the_permission(canvas):
    canvas.expect_request(LIST).respond_with_json(
        {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}, 403)
    api = client(canvas)
    with pytest.raises(CanvasForbidden) as caught:
        list(api.sis_imports_created_since(1, SINCE))
    assert "import_sis" in str(caught.value) and "manage_sis" in str(caught.value)
    assert api.throttled == 0 and api.requests == 1  # not retried
    assert_clean(caught.value)


def test_canvas_older_401_not_authorized_is_forbidden_too(canvas):
    canvas.expect_request("/api/v1/accounts/self").respond_with_json(
        {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}, 401)
    with pytest.raises(CanvasForbidden, match="import_sis"):
        client(canvas).account_self()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_canvas_unavailable(canvas, status):
    canvas.expect_request("/api/v1/accounts/1/sis_imports/9").respond_with_data("Internal Server Error", status)
    api = client(canvas)
    with pytest.raises(CanvasUnavailable, match=f"{status}") as caught:
        api.sis_import(1, 9)
    assert caught.value.status == status and api.requests == 1
    assert_clean(caught.value)


def test_404_is_canvas_not_found(canvas):
    canvas.expect_request("/api/v1/accounts/1/sis_imports/404").respond_with_json(
        {"errors": [{"message": "The specified resource does not exist."}]}, 404)
    with pytest.raises(CanvasNotFound):
        client(canvas).sis_import(1, 404)


def test_a_slow_canvas_is_unavailable_within_the_timeout(canvas):
    def slow(_request):
        time.sleep(1.5)
        return Response(json.dumps({"id": 1}), 200, content_type="application/json")

    canvas.expect_request("/api/v1/accounts/self").respond_with_handler(slow)
    api = client(canvas, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(CanvasUnavailable, match=r"did not answer within 0\.3 s") as caught:
        api.account_self()
    assert time.monotonic() - started < 1.2
    assert api.requests == 1  # a timeout is not retried: the caller's deadline holds
    assert_clean(caught.value)
    settle(canvas, 1)


def test_a_refused_connection_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = CanvasApi(f"http://127.0.0.1:{port}", lambda: TOKEN, timeout=1.0)
    with pytest.raises(CanvasUnavailable, match="could not be reached") as caught:
        api.account_self()
    assert_clean(caught.value)


def test_an_empty_token_fails_before_any_request(canvas):
    api = CanvasApi(canvas.url_for("/").rstrip("/"), lambda: "  ")
    with pytest.raises(CanvasUnauthorized, match="no API token"):
        api.account_self()
    assert api.requests == 0


def test_the_token_is_read_for_every_request(canvas):
    tokens = iter(["first-token", "rotated-token"])
    canvas.expect_ordered_request("/api/v1/accounts/self", headers={"Authorization": "Bearer first-token"}) \
        .respond_with_json({"id": 1})
    canvas.expect_ordered_request("/api/v1/accounts/self", headers={"Authorization": "Bearer rotated-token"}) \
        .respond_with_json({"id": 1})
    api = CanvasApi(canvas.url_for("/").rstrip("/"), lambda: next(tokens))
    api.account_self()
    api.account_self()
    assert api._requester.access_token == ""  # not kept between calls


@pytest.mark.parametrize("bad", ["../../users/self", "12/../13", "1?x=1", "", "١٢"])
def test_ids_from_events_cannot_steer_the_request(canvas, bad):
    api = client(canvas)
    with pytest.raises(ValueError, match="not a Canvas id"):
        api.sis_import(1, bad)
    with pytest.raises(ValueError, match="not a Canvas id"):
        api.sis_imports_created_since(bad or "x", SINCE)
    assert api.requests == 0


@pytest.mark.parametrize("url", ["https://school.instructure.com/api/v1", "school.instructure.com", "ftp://x"])
def test_a_base_url_is_scheme_and_host(url):
    with pytest.raises(ValueError, match="scheme://host"):
        CanvasApi(url, lambda: TOKEN)


def test_the_token_reaches_no_log_and_no_message(canvas, caplog, captured_logs):
    """Every failure path, with the root logger at DEBUG (canvasapi logs headers and bodies there)
    and the Powertools logger as the client's logger."""
    from sis_imports.adapters.observability import logger

    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_data(*RATE_LIMITED)
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_json({"id": 1, "uuid": "u"})
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_json({}, 401, {"WWW-Authenticate": "Bearer"})
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_data("no", 403)
    canvas.expect_ordered_request("/api/v1/accounts/self").respond_with_data("boom", 500)
    api = client(canvas, logger=logger)
    errors = []
    with caplog.at_level(logging.DEBUG):
        api.account_self()
        for _ in range(3):
            with pytest.raises(CanvasError) as caught:
                api.account_self()
            errors.append(caught.value)
    assert [type(e) for e in errors] == [CanvasUnauthorized, CanvasForbidden, CanvasUnavailable]
    assert "rate limited" in captured_logs.getvalue()  # the Powertools logger was used
    for error in errors:
        assert_clean(error, caplog.text, captured_logs.getvalue())


# -- what Canvas really sends: localised text, dripping servers, links that loop -------------

@pytest.mark.parametrize("headers, body, kind", [
    # Canvas translates these texts: only the status and the headers decide.
    ({"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
     {"status": "no autenticado", "errors": [{"message": "Autorización del usuario requerida"}]}, CanvasUnauthorized),
    ({"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
     {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]},
     CanvasUnauthorized),
    ({}, {"status": "non autorisé", "errors": [{"message": "utilisateur non autorisé à effectuer cette action"}]},
     CanvasForbidden),
    ({}, {"errors": [{"message": "Insufficient scopes on access token."}]}, CanvasForbidden),
])
def test_401_is_told_by_its_headers_not_its_text(canvas, headers, body, kind):
    canvas.expect_request("/api/v1/accounts/self").respond_with_json(body, 401, headers)
    api = client(canvas)
    with pytest.raises(CanvasError) as caught:
        api.account_self()
    assert type(caught.value) is kind and caught.value.status == 401 and api.requests == 1
    assert_clean(caught.value)


@pytest.mark.parametrize("body, headers, throttled", [
    ("403 Forbidden (Rate Limit Exceeded)\n", {}, True),  # Canvas's fixed text, no header
    ("403 Verboten", {"X-Rate-Limit-Remaining": "0.0"}, True),  # the bucket is empty, whatever the text
    ("403 Verboten", {"X-Rate-Limit-Remaining": "-12.5"}, True),
    ('{"errors": [{"message": "non autorisé"}]}', {"X-Rate-Limit-Remaining": "523.1"}, False),
    ('{"status": "unauthorized"}', {}, False),
])
def test_a_403_is_throttling_only_with_an_empty_bucket_or_canvass_fixed_text(canvas, body, headers, throttled):
    canvas.expect_request("/api/v1/accounts/self").respond_with_data(body, 403, headers)
    waits = Waits()
    api = client(canvas, waits, max_retries=1)
    with pytest.raises(CanvasThrottled if throttled else CanvasForbidden):
        api.account_self()
    assert (api.requests, api.throttled, len(waits.sleeps)) == ((2, 2, 1) if throttled else (1, 0, 0))


def _drip(body: bytes, headers: dict, status: int = 200):
    """A werkzeug handler that sends `body` one byte a second (each byte well within any read timeout)."""

    def handler(_request):
        def chunks():
            for byte in body:
                yield bytes([byte])
                time.sleep(1.0)

        return Response(chunks(), status, headers={"Content-Type": "application/json", **headers},
                        direct_passthrough=True)

    return handler


@pytest.mark.parametrize("with_length", [True, False])
def test_a_canvas_that_drips_one_byte_a_second_is_cut_at_the_deadline(canvas, with_length):
    body = json.dumps(sis_import(9)).encode()  # 80 bytes: over a minute at this pace
    headers = {"Content-Length": str(len(body))} if with_length else {}
    canvas.expect_request("/api/v1/accounts/1/sis_imports/9").respond_with_handler(_drip(body, headers))
    api = client(canvas, timeout=2.0)
    started = time.monotonic()
    with pytest.raises(CanvasUnavailable, match=r"did not answer within 2 s") as caught:
        api.sis_import(1, 9)
    took = time.monotonic() - started
    print(f"dripping Canvas: cut after {took:.2f} s")
    assert 1.9 < took < 3.5
    assert api.requests == 1
    assert_clean(caught.value)
    settle(canvas, 1)


def test_after_a_cut_the_next_request_gets_a_fresh_connection_and_its_own_deadline(canvas):
    body = json.dumps(sis_import(9)).encode()
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/9").respond_with_handler(
        _drip(body, {"Content-Length": str(len(body))}))
    canvas.expect_ordered_request("/api/v1/accounts/1/sis_imports/9").respond_with_json(sis_import(9))
    api = client(canvas, timeout=1.0)
    with pytest.raises(CanvasUnavailable):
        api.sis_import(1, 9)
    assert api.sis_import(1, 9) == sis_import(9)


def test_a_link_back_to_a_page_already_read_stops_the_listing_with_a_clear_error(canvas):
    base = canvas.url_for("/").rstrip("/")
    canvas.expect_ordered_request(LIST).respond_with_json(
        {"sis_imports": [sis_import(3)]}, headers={"Link": f'<{base}{LIST}?page=2&per_page=100>; rel="next"'})
    # Page 2 links to itself: without a check the pass reads it until the function times out.
    for _ in range(2):
        canvas.expect_ordered_request(LIST, query_string={"page": "2", "per_page": "100"}).respond_with_json(
            {"sis_imports": [sis_import(2)]}, headers={"Link": f'<{base}{LIST}?page=2&per_page=100>; rel="next"'})
    api = client(canvas)
    found = []
    with pytest.raises(CanvasError, match=r"linked back to a page it had already given.*/api/v1/accounts/1/sis_imports"):
        for item in api.sis_imports_created_since(1, SINCE):
            found.append(item["id"])
    assert found == [3, 2] and api.requests == 2  # the repeated page is never asked for


def test_a_listing_stops_past_its_page_cap(canvas):
    base = canvas.url_for("/").rstrip("/")
    pages = iter(range(2, 100))

    def endless(_request):  # every page links to a new one
        return Response(json.dumps({"sis_imports": [sis_import(1)]}), 200, content_type="application/json",
                        headers={"Link": f'<{base}{LIST}?page={next(pages)}&per_page=100>; rel="next"'})

    canvas.expect_request(LIST).respond_with_handler(endless)
    api = client(canvas, max_pages=5)
    with pytest.raises(CanvasError, match="more than 5 pages"):
        list(api.sis_imports_created_since(1, SINCE))
    assert api.requests == 5


def test_the_page_count_is_per_listing(canvas):
    canvas.expect_request(LIST).respond_with_json({"sis_imports": [sis_import(1)]})
    api = client(canvas, max_pages=1)
    for _ in range(3):  # the same first page, listed again by a later pass: not a loop
        assert [i["id"] for i in api.sis_imports_created_since(1, SINCE)] == [1]


# -- against the simulator --------------------------------------------------------------------

@pytest.fixture
def simulator():
    moment = [datetime(2031, 3, 1, 9, 0, tzinfo=timezone.utc)]

    def clock():
        moment[0] += timedelta(seconds=7, milliseconds=125)
        return moment[0]

    with CanvasSimulator(token=TOKEN, clock=clock, unpermitted_token="valid-but-unpermitted", seed=3) as sim:
        yield sim


def test_against_the_simulator_account_paging_and_one_import(simulator):
    ids = [simulator.create_import() for _ in range(23)]
    for n in ids[:20]:
        simulator.run(n, "imported")
    api = CanvasApi(simulator.base_url, lambda: TOKEN, per_page=10)
    assert api.account_self()["uuid"] == simulator.root_account_uuid
    found = list(api.sis_imports_created_since("self", datetime(2031, 3, 1, tzinfo=timezone.utc)))
    assert [i["id"] for i in found] == sorted(ids, reverse=True)
    assert api.requests == 1 + 3  # accounts/self, then 10 + 10 + 3
    assert api.sis_import(1, ids[-1])["workflow_state"] == "created"
    with pytest.raises(CanvasNotFound):
        api.sis_import(1, 999999)


def test_against_the_simulator_throttling_is_absorbed(simulator):
    for _ in range(12):
        simulator.create_import()
    simulator.throttle_every = 2
    waits = Waits()
    api = CanvasApi(simulator.base_url, lambda: TOKEN, per_page=5, sleep=waits.sleep, clock=waits.clock)
    assert len(list(api.sis_imports_created_since(1, datetime(2031, 3, 1, tzinfo=timezone.utc)))) == 12
    # pages 1, 2, 3 each on an odd request; every even request is refused once
    assert api.throttled == simulator.throttled == 2 and api.requests == 5 and waits.sleeps == [1.0, 1.0]


def test_against_the_simulator_bad_and_unpermitted_tokens(simulator):
    with pytest.raises(CanvasUnauthorized) as bad:
        CanvasApi(simulator.base_url, lambda: "wrong-token").account_self()
    with pytest.raises(CanvasForbidden, match="import_sis") as unpermitted:
        CanvasApi(simulator.base_url, lambda: "valid-but-unpermitted").account_self()
    assert "wrong-token" not in str(bad.value) and "valid-but-unpermitted" not in str(unpermitted.value)
