"""GET /batches/{root_account_uuid}: a root account's recent batches, through the real handler on moto.

The batches are written by the ingest handler (and one by the reconciler's store call), so what is
listed is what the index holds after real writes; the table and its indexes are the local run's
(local.resources), shaped as the stack declares them."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from local.lambda_context import LambdaContext
from tests.conftest import http_event
from tests.factories import ROOT_ACCOUNT_UUID, T0, at, canvas_event

OTHER = "OtherInstanceUuid"
# 6 batches of the root account, each created ten minutes after the one before, and their ends.
PLAN = {
    "101": ["initializing", "created", "importing", "imported"],
    "102": ["initializing", "created", "importing", "failed"],
    "103": ["initializing", "created", "importing"],
    "104": ["initializing", "created", "importing", "imported_with_messages"],
    "105": ["initializing", "created", "importing", "failed_with_messages"],
    "106": ["initializing"],
}


def first_event(batch_id: str) -> str:
    """Batch 101 is the oldest, 106 the newest: newest first is 106, 105, ..., 101."""
    return at(T0, 600 * (int(batch_id) - 100))


def last_activity(batch_id: str) -> str:
    return at(first_event(batch_id), 3 * (len(PLAN[batch_id]) - 1))


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


@pytest.fixture
def batches(aws, none_mode, handlers_fresh):
    ingest = handlers_fresh["ingest"].handler
    for batch_id, states in PLAN.items():
        start = at(T0, 600 * (int(batch_id) - 100))
        for step, state in enumerate(states):
            event = canvas_event(state, at(start, 3 * step), batch_id)
            assert ingest(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200
    # Another root account's batch, newer than all: never in this account's list.
    event = canvas_event("initializing", at(T0, 9000), "101", root_account_uuid=OTHER)
    assert ingest(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200
    # The reconciler's marker item (no first_event_at): never listed.
    from sis_imports.wiring import batch_store

    batch_store().mark_reconciled(ROOT_ACCOUNT_UUID, at(T0, 9999))
    return handlers_fresh


def listing(handlers, uuid: str = ROOT_ACCOUNT_UUID, **query: str) -> tuple[int, dict]:
    path = f"/batches/{uuid}"
    event = http_event(None, method="GET", path=path, query=query or None, path_parameters={"root_account_uuid": uuid})
    response = handlers["query"].handler(event, LambdaContext(function_name="query"))
    return response["statusCode"], json.loads(response["body"])


def ids(body: dict) -> list[str]:
    return [b["sis_batch_id"] for b in body["batches"]]


def test_newest_first_event_first_each_as_the_batch_view_without_history(batches):
    status, body = listing(batches)
    assert status == 200
    assert ids(body) == ["106", "105", "104", "103", "102", "101"]  # not the marker, not the other account
    assert body["next"] is None
    first = body["batches"][1]
    assert set(first) == {"root_account_uuid", "root_account_id", "sis_batch_id", "account_id", "hostname",
                          "workflow_state", "terminal", "outcome", "stuck", "unusual", "first_event_at",
                          "last_event_at"}
    assert first["unusual"] == []
    assert (first["workflow_state"], first["terminal"], first["outcome"]) == ("failed_with_messages", True, "failure")
    assert first["last_event_at"] == last_activity("105") and first["first_event_at"] == first_event("105")
    assert first["hostname"] == "oxana.instructure.com" and first["root_account_id"] == "21070000000000001"
    assert [b["first_event_at"] for b in body["batches"]] == sorted((first_event(i) for i in PLAN), reverse=True)
    assert body["batches"][0]["outcome"] is None and body["batches"][0]["terminal"] is False
    # The single-batch route answers as before, history included.
    response = batches["query"].handler(http_event(None, method="GET", path=f"/batches/{ROOT_ACCOUNT_UUID}/105",
                                                   path_parameters={"root_account_uuid": ROOT_ACCOUNT_UUID,
                                                                    "sis_batch_id": "105"}),
                                        LambdaContext(function_name="query"))
    view = json.loads(response["body"])
    assert {k: v for k, v in view.items() if k != "history"} == first and len(view["history"]) == 4


def test_filters_state_outcome_and_since(batches):
    assert ids(listing(batches, state="importing")[1]) == ["103"]
    assert ids(listing(batches, state="imported")[1]) == ["101"]
    assert ids(listing(batches, outcome="failure")[1]) == ["105", "102"]
    assert ids(listing(batches, outcome="warning")[1]) == ["104"]
    assert ids(listing(batches, outcome="success")[1]) == ["101"]
    assert ids(listing(batches, outcome="failure", state="failed")[1]) == ["102"]
    # since: first event at or after, as a Canvas time, a time with Z or an offset, or a date.
    assert ids(listing(batches, since=first_event("104"))[1]) == ["106", "105", "104"]
    assert ids(listing(batches, since=at(first_event("104"), 0.001))[1]) == ["106", "105"]
    # 104's last activity is 9 s after its first event: since= is not about last activity.
    assert ids(listing(batches, since=at(first_event("104"), 1))[1]) == ["106", "105"]
    whole = first_event("104")[:19]  # 2026-...T09:40:00, to the second
    assert ids(listing(batches, since=whole + "Z")[1]) == ["106", "105", "104"]
    assert ids(listing(batches, since=whole + "+00:00")[1]) == ["106", "105", "104"]
    hour = int(whole[11:13])
    shifted = f"{whole[:11]}{hour + 1:02d}{whole[13:]}+01:00"  # the same moment, an hour east
    assert ids(listing(batches, since=shifted)[1]) == ["106", "105", "104"]
    assert ids(listing(batches, since=T0[:10])[1]) == ["106", "105", "104", "103", "102", "101"]
    assert listing(batches, since="2999-01-01")[1] == {"batches": [], "next": None, "rhythm": None}
    assert ids(listing(batches, since=first_event("103"), outcome="failure")[1]) == ["105"]
    assert listing(batches, uuid="NobodysUuid")[1] == {"batches": [], "next": None, "rhythm": None}


@pytest.mark.parametrize("query", [{}, {"outcome": "failure"}, {"since": T0[:10]}, {"state": "imported"}])
def test_pages_of_limit_with_a_cursor_give_every_batch_once(batches, query):
    expected = ids(listing(batches, **query)[1])
    for limit in ("1", "2", "4"):
        seen, cursor, pages = [], None, 0
        while True:
            status, body = listing(batches, limit=limit, **query, **({"next": cursor} if cursor else {}))
            assert status == 200 and len(body["batches"]) <= int(limit)
            seen += ids(body)
            pages += 1
            cursor = body["next"]
            if cursor is None:
                break
            assert pages < 20
        assert seen == expected, (query, limit)


def test_a_page_is_one_query_of_the_keys_only_list_index_and_one_read_of_its_items(batches, monkeypatch):
    calls = []
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb", lambda model, params, **_: calls.append(
        (model.name, params.get("IndexName"), params.get("ScanIndexForward"), params.get("Limit"),
         len(next(iter(params.get("RequestItems", {}).values()), {}).get("Keys", [])))))
    batches["query"].app.cache_clear()  # a client on the hooked session
    assert listing(batches, limit="3", state="imported")[0] == 200
    # Filtered: a fuller page of keys (some will not match), their items, then the root account's rhythm.
    assert calls == [("Query", "batches-by-creation", False, 100, 0), ("BatchGetItem", None, None, None, 6),
                     ("GetItem", None, None, None, 0)]
    calls.clear()
    assert listing(batches, limit="3")[0] == 200
    # Unfiltered: exactly the page's keys. The items carry their stuck marks: no other index is asked.
    assert calls == [("Query", "batches-by-creation", False, 3, 0), ("BatchGetItem", None, None, None, 3),
                     ("GetItem", None, None, None, 0)]


def test_the_order_holds_while_batches_move_so_pages_give_each_batch_once(batches):
    """The list is by first event, which a batch's later events do not move: a batch that changes
    between two pages neither comes back on the next page nor is skipped (an order by last activity
    would move it to the top, past the cursor)."""
    first = listing(batches, limit="3")[1]
    assert ids(first) == ["106", "105", "104"]
    ingest = batches["ingest"].handler
    for batch_id, state in (("103", "imported"), ("106", "created")):  # one on each side of the cursor
        event = canvas_event(state, at(last_activity("106"), 60), batch_id)
        assert ingest(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200
    second = listing(batches, limit="3", next=first["next"])[1]
    assert ids(second) == ["103", "102", "101"] and second["next"] is None
    assert second["batches"][0]["workflow_state"] == "imported"  # read from the table: the current state
    # A batch whose first event (by Canvas's clock) is older than the one first seen moves to its place.
    late = canvas_event("initializing", at(first_event("101"), -60), "106")
    assert ingest(http_event(late), LambdaContext(function_name="ingest"))["statusCode"] == 200
    assert ids(listing(batches)[1]) == ["105", "104", "103", "102", "101", "106"]


def test_a_filtered_page_stops_after_so_many_entries_and_says_where_to_go_on(aws):
    """The store's bound on the entries one request reads: fewer than limit, and a key to go on from."""
    from sis_imports.adapters.store import BatchStore

    store = BatchStore(boto3.client("dynamodb"), "canvas-sis-batches-local")
    from tests.factories import failed_import
    from sis_imports.core.events import parse_event

    for n in range(5):
        for event in failed_import(str(200 + n), at(T0, 60 * n)):
            store.apply(parse_event(event))
    found, key = store.recent(ROOT_ACCOUNT_UUID, state="importing", limit=3, max_evaluated=2)
    assert found == [] and key is not None  # none of the first pages matched, and more remain
    found, key = store.recent(ROOT_ACCOUNT_UUID, state="failed_with_messages", limit=10)
    assert [b.sis_batch_id for b in found] == ["204", "203", "202", "201", "200"] and key is None


def test_default_and_largest_limit(batches):
    assert len(listing(batches)[1]["batches"]) == 6  # default 50
    assert listing(batches, limit="200")[0] == 200


def cursor(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GOOD = {"root_account_uuid": ROOT_ACCOUNT_UUID, "sis_batch_id": "104", "first_event_at": "2026-11-20T09:40:00.000Z"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "failed"}, "status"),
        ({"state": "done"}, "state"),
        ({"state": ""}, "state"),
        ({"state": "failed,imported"}, "state"),  # API Gateway joins repeated parameters with commas
        ({"outcome": "stuck,failure"}, "outcome"),
        ({"unusual": "yes"}, "unusual"),
        ({"unusual": "True"}, "unusual"),
        ({"unusual": ""}, "unusual"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-28T09:00:00"}, "since"),  # no zone
        ({"since": "2026-11-28 09:00:00Z"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"since": "2026-11-28T25:00:00Z"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"next": "not a cursor!"}, "next"),
        ({"next": "@@@@"}, "next"),
        ({"next": cursor(b"not json")}, "next"),
        ({"next": cursor(b"\xff\xfe")}, "next"),
        ({"next": cursor([1, 2])}, "next"),
        ({"next": cursor({**GOOD, "extra": "x"})}, "next"),
        ({"next": cursor({k: v for k, v in GOOD.items() if k != "sis_batch_id"})}, "next"),
        ({"next": cursor({**GOOD, "sis_batch_id": 104})}, "next"),
        ({"next": cursor({**GOOD, "sis_batch_id": "bad id!"})}, "next"),
        ({"next": cursor({**GOOD, "first_event_at": "yesterday"})}, "next"),
        ({"next": cursor({**{k: v for k, v in GOOD.items() if k != "first_event_at"},
                          "last_event_at": GOOD["first_event_at"]})}, "next"),  # the old index's cursor
        ({"next": cursor({**GOOD, "root_account_uuid": OTHER})}, "next"),  # another account's cursor
        ({"next": cursor(GOOD) + "="}, "next"),  # not as this route writes it
        ({"next": cursor(json.dumps(GOOD, indent=1).encode())}, "next"),
        ({"next": cursor(GOOD), "since": "2026-11-21"}, "next"),  # before since: outside the query
    ],
)
def test_a_bad_parameter_is_400_naming_it(aws, none_mode, handlers_fresh, query, field):
    # Refused before the table is read: no batches needed (writing them cost each case seconds).
    status, body = listing(handlers_fresh, **query)
    assert status == 400, body
    assert body["error"] == "invalid query parameter" and body["field"] == field and body["reason"]


def test_a_good_cursor_of_this_account_is_taken(batches):
    assert listing(batches, next=cursor({**GOOD, "first_event_at": first_event("104")}))[1]["batches"][0][
        "sis_batch_id"] == "103"


def test_a_bad_root_account_is_400_and_a_failing_table_503(batches, monkeypatch):
    status, body = listing(batches, uuid="bad uuid!")
    assert (status, body["field"]) == (400, "root_account_uuid")
    store = batches["query"].app()._store

    def fail(*args, **kwargs):
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(store, "recent", fail)
    status, body = listing(batches)
    assert status == 503 and "retry" in body["error"]


def test_stuck_batches_are_marked_and_listed_by_outcome_stuck_page_by_page(batches):
    """What the reconciler marks stuck (store.mark_stuck, in the state the batch is still in) shows as
    `stuck` in the list and the batch view; `outcome=stuck` lists only those, newest first event first."""
    from sis_imports.wiring import batch_store

    store = batch_store()
    assert store.mark_stuck(ROOT_ACCOUNT_UUID, "106", "initializing")
    assert store.mark_stuck(ROOT_ACCOUNT_UUID, "103", "importing")
    assert not store.mark_stuck(ROOT_ACCOUNT_UUID, "101", "importing")  # ended: never stuck
    status, body = listing(batches)
    assert {b["sis_batch_id"]: b["stuck"] for b in body["batches"]} == {
        "106": True, "105": False, "104": False, "103": True, "102": False, "101": False}
    status, body = listing(batches, outcome="stuck")
    assert status == 200 and ids(body) == ["106", "103"] and body["next"] is None
    assert body["batches"][1]["hostname"] == "oxana.instructure.com"  # the whole view, not the index's part
    assert ids(listing(batches, outcome="stuck", state="importing")[1]) == ["103"]
    assert ids(listing(batches, outcome="stuck", since=first_event("104"))[1]) == ["106"]
    first = listing(batches, outcome="stuck", limit="1")[1]
    assert ids(first) == ["106"] and first["next"]
    second = listing(batches, outcome="stuck", limit="1", next=first["next"])[1]
    assert ids(second) == ["103"] and second["next"] is None
    # A stuck batch that moves on is no longer stuck (until it is found stuck in its new state).
    ingest = batches["ingest"].handler
    event = canvas_event("imported", at(last_activity("103"), 60), "103")
    assert ingest(http_event(event), LambdaContext(function_name="ingest"))["statusCode"] == 200
    assert ids(listing(batches, outcome="stuck")[1]) == ["106"]
    assert [b["stuck"] for b in listing(batches, state="imported")[1]["batches"]] == [False, False]


def test_unusual_ends_show_their_figures_and_are_listed_by_unusual(batches):
    """What the notifier marks (store.mark_unusual, the figures an end was unusual in) shows as `unusual`
    in the list and the batch view; `unusual=true` lists only those, `unusual=false` the others."""
    from sis_imports.wiring import batch_store

    store = batch_store()
    store.mark_unusual(ROOT_ACCOUNT_UUID, "104", ["enrollments_deleted", "duration_seconds"])
    store.mark_unusual(ROOT_ACCOUNT_UUID, "101", ["changes"])
    status, body = listing(batches)
    assert {b["sis_batch_id"]: b["unusual"] for b in body["batches"]} == {
        "106": [], "105": [], "104": ["enrollments_deleted", "duration_seconds"], "103": [], "102": [],
        "101": ["changes"]}
    assert ids(listing(batches, unusual="true")[1]) == ["104", "101"]
    assert ids(listing(batches, unusual="false")[1]) == ["106", "105", "103", "102"]
    assert ids(listing(batches, unusual="true", outcome="warning")[1]) == ["104"]
    assert ids(listing(batches, unusual="true", outcome="failure")[1]) == []
    assert ids(listing(batches, unusual="true", since=first_event("102"))[1]) == ["104"]
    first = listing(batches, unusual="true", limit="1")[1]
    assert ids(first) == ["104"] and ids(listing(batches, unusual="true", limit="1", next=first["next"])[1]) == ["101"]
    view = json.loads(batches["query"].handler(http_event(None, method="GET", path=f"/batches/{ROOT_ACCOUNT_UUID}/104",
                                                          path_parameters={"root_account_uuid": ROOT_ACCOUNT_UUID,
                                                                           "sis_batch_id": "104"}),
                                               LambdaContext(function_name="query"))["body"])
    assert view["unusual"] == ["enrollments_deleted", "duration_seconds"]
    # An open import has no end to be unusual in: stuck ones are never listed as unusual.
    assert store.mark_stuck(ROOT_ACCOUNT_UUID, "106", "initializing")
    assert ids(listing(batches, outcome="stuck", unusual="true")[1]) == []
    assert ids(listing(batches, outcome="stuck", unusual="false")[1]) == ["106"]


HOUR = 3600


def hourly(count: int, last: int, prefix: str = "9") -> list[tuple[str, int]]:
    """`count` imports an hour apart, the last at `last` (epoch seconds)."""
    return [(f"{prefix}{n}", last - HOUR * (count - 1 - n)) for n in range(count)]


def utc(epoch: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_list_answers_the_root_accounts_rhythm_as_the_reconciler_keeps_it(batches):
    from sis_imports.core.rhythm import Rhythm, step
    from sis_imports.wiring import batch_store

    store = batch_store()
    last = 1_790_000_000 - 1_790_000_000 % HOUR  # on the hour; the view is the stored rhythm, not today's
    assert listing(batches)[1]["rhythm"] is None  # before the reconciler's first pass
    # 24 imports an hour apart: 23 intervals of an hour, learnt; still inside the allowance at `now`.
    rhythm = step(Rhythm(ROOT_ACCOUNT_UUID), hourly(24, last), now=last + 600)
    assert rhythm.gap is None and store.save_rhythm(rhythm)
    view = listing(batches)[1]["rhythm"]
    # The rule: the usual interval is the median of the intervals; a missing import alerts after the
    # longest one (an hour) and a quarter, at least 30 minutes more: 1 h 30 min.
    assert view == {"usual_interval_seconds": HOUR, "source": "learnt from the last 24 imports",
                    "last_import_at": utc(last), "expected_by": utc(last + HOUR),
                    "alert_after": utc(last + HOUR + 1800), "missing": False, "detected_at": None, "alerts": True}
    assert listing(batches, outcome="failure")[1]["rhythm"] == view  # every page says it
    # The reconciler's next pass, two hours on, finds the gap: the view says so, with what it measured.
    stored = store.rhythm(ROOT_ACCOUNT_UUID)
    gapped = step(stored, [], now=last + 2 * HOUR)
    assert gapped.gap is not None and store.save_rhythm(gapped)
    view = listing(batches)[1]["rhythm"]
    assert (view["missing"], view["detected_at"], view["last_import_at"], view["expected_by"]) == (
        True, utc(last + 2 * HOUR), utc(last), utc(last + HOUR))


def test_the_rhythm_says_what_it_still_needs_and_follows_expected_import_every(batches):
    from sis_imports.core.rhythm import Rhythm, step
    from sis_imports.usecases.batches import RhythmSettings, rhythm_view

    last = 1_790_000_000
    young = step(Rhythm(ROOT_ACCOUNT_UUID), hourly(4, last), now=last)
    view = rhythm_view(young, RhythmSettings())
    assert view["usual_interval_seconds"] is None and view["expected_by"] is None and view["alert_after"] is None
    assert view["source"] == "not learnt yet: 4 imports seen, 11 needed" and view["last_import_at"] == utc(last)
    # Given for this root account: a day, whatever was learnt; an alert a day and a quarter after the last.
    given = rhythm_view(young, RhythmSettings(expected_every={ROOT_ACCOUNT_UUID: 86400}))
    assert (given["usual_interval_seconds"], given["source"], given["expected_by"], given["alert_after"]) == (
        86400, "expected_import_every", utc(last + 86400), utc(last + 86400 + 21600))
    assert given["alerts"] is True
    # Off for this root account, or for all: still shown, but no missing import alerts.
    assert rhythm_view(young, RhythmSettings(expected_every={ROOT_ACCOUNT_UUID: 0}))["alerts"] is False
    assert rhythm_view(young, RhythmSettings(missing_imports=False))["alerts"] is False
    assert rhythm_view(Rhythm(ROOT_ACCOUNT_UUID), RhythmSettings())["source"] == "no import seen yet"
    # A rhythm that cannot be read is our failure: 503, so that the caller retries.
    batches["query"].app.cache_clear()
    store = batches["query"].app()._store

    def fail(*args, **kwargs):
        raise RuntimeError("ProvisionedThroughputExceededException")

    store.rhythm = fail
    status, body = listing(batches)
    assert status == 503 and "retry" in body["error"]
