"""The open batches, read through the keys-only open-batches index (issue 18): the index gives the keys,
BatchGetItem the items, 100 to a call, in the index's order; keys DynamoDB leaves unprocessed are asked
again; a batch that ended since the index answered is left out."""

from __future__ import annotations

import boto3
import pytest

from sis_imports.adapters.store import BatchStore
from sis_imports.adapters.store.listing import UnreadBatches
from sis_imports.core.events import parse_event
from tests.aws_env import TABLE_NAME
from tests.factories import T0, at, canvas_event


@pytest.fixture
def store(aws):
    return BatchStore(boto3.client("dynamodb"), TABLE_NAME)


def put(store, sis_batch_id, *states, start=T0):
    for n, state in enumerate(states):
        store.apply(parse_event(canvas_event(state, at(start, n), sis_batch_id)))


def test_the_open_batches_and_no_ended_one_with_what_the_reconciler_compares(store):
    put(store, "1", "initializing", "created", "importing")
    put(store, "2", "initializing", "created", "importing", "imported")
    put(store, "3", "initializing", start=at(T0, 60))
    root = canvas_event("created", T0)["metadata"]["root_account_uuid"]
    batches = {b.sis_batch_id: b for b in store.open_batches(root)}
    assert set(batches) == {"1", "3"}
    assert batches["1"].workflow_state.value == "importing" and batches["3"].workflow_state.value == "initializing"
    assert batches["1"].event_time == at(T0, 2) and batches["1"].first_event_at == T0


def test_more_than_100_open_batches_take_more_than_one_read_and_keep_the_indexs_order(store, monkeypatch):
    for i in range(150):
        put(store, f"{1000 + i}", "initializing", start=at(T0, i))
    calls = []
    real = store._client.batch_get_item
    monkeypatch.setattr(store._client, "batch_get_item",
                        lambda **kw: calls.append(len(kw["RequestItems"][TABLE_NAME]["Keys"])) or real(**kw))
    root = canvas_event("created", T0)["metadata"]["root_account_uuid"]
    got = [b.sis_batch_id for b in store.open_batches(root)]
    assert calls == [100, 50]
    assert got == [f"{1000 + i}" for i in range(150)]  # open_since ascending, as the index answers


def test_unprocessed_keys_are_asked_again_and_a_table_that_never_answers_fails_the_read(store, monkeypatch):
    for i in range(4):
        put(store, f"{i}", "initializing", start=at(T0, i))
    root = canvas_event("created", T0)["metadata"]["root_account_uuid"]
    real = store._client.batch_get_item
    monkeypatch.setattr("sis_imports.adapters.store.listing.time.sleep", lambda seconds: None)

    def half(**kw):  # DynamoDB under throttling: answers some keys, leaves the rest unprocessed
        keys = kw["RequestItems"][TABLE_NAME]["Keys"]
        answered = real(RequestItems={TABLE_NAME: {"Keys": keys[:1]}})
        rest = {TABLE_NAME: {"Keys": keys[1:]}} if keys[1:] else {}
        return {"Responses": answered["Responses"], "UnprocessedKeys": rest}

    monkeypatch.setattr(store._client, "batch_get_item", half)
    assert [b.sis_batch_id for b in store.open_batches(root)] == ["0", "1", "2", "3"]

    monkeypatch.setattr(store._client, "batch_get_item",
                        lambda **kw: {"Responses": {}, "UnprocessedKeys": kw["RequestItems"]})
    with pytest.raises(UnreadBatches, match="4 open batches unread after 5 attempts"):
        store.open_batches(root)


def test_a_batch_that_ended_after_the_index_answered_is_left_out(store, monkeypatch):
    put(store, "7", "initializing", "created")
    put(store, "8", "initializing", "created")
    root = canvas_event("created", T0)["metadata"]["root_account_uuid"]
    real = store._client.query

    def query_then_end(**kw):
        page = real(**kw)
        put(store, "8", "importing", "imported", start=at(T0, 10))  # ends between the query and the read
        return page

    monkeypatch.setattr(store._client, "query", query_then_end)
    assert [b.sis_batch_id for b in store.open_batches(root)] == ["7"]
