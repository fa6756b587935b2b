"""POST /events through the real handler module, on moto."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from local.lambda_context import LambdaContext
from tests.conftest import http_event
from tests.factories import CREATED_EXAMPLE, T0, UPDATED_EXAMPLE, at, canvas_event, failed_import



def call(handlers, event):
    response = handlers["ingest"].handler(event, LambdaContext(function_name="ingest"))
    return response["statusCode"], json.loads(response["body"])


class DynamoCalls:
    """Counts DynamoDB requests of clients created after it is installed (botocore event hooks)."""

    def __init__(self):
        self.operations: list[str] = []
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", self._count)

    def _count(self, model, **kwargs):
        self.operations.append(model.name)

    def take(self) -> list[str]:
        taken, self.operations = self.operations, []
        return taken


@pytest.fixture
def none_mode(monkeypatch):
    monkeypatch.setenv("SIS_AUTH", "none")


def test_both_canvas_examples_are_accepted_signed(aws, jwt_mode, signing_key, handlers_fresh):
    for example in (CREATED_EXAMPLE, UPDATED_EXAMPLE):
        status, body = call(handlers_fresh, http_event(signing_key.sign(example), content_type="application/jwt"))
        assert (status, body["status"]) == (200, "applied")
    assert len(aws.scan()) == 2


def test_base64_body_and_any_content_type_are_read(aws, jwt_mode, signing_key, handlers_fresh):
    token = signing_key.sign(CREATED_EXAMPLE).encode()
    status, body = call(handlers_fresh, http_event(token, content_type="text/plain"))
    assert (status, body["workflow_state"]) == (200, "initializing")


def test_in_order_event_costs_one_write_and_no_read(aws, none_mode, handlers_fresh):
    calls = DynamoCalls()
    events = failed_import()
    call(handlers_fresh, http_event(events[0]))
    calls.take()  # the first call also builds the app
    for event in events[1:]:
        status, body = call(handlers_fresh, http_event(event))
        assert (status, body["status"]) == (200, "applied")
        assert calls.take() == ["UpdateItem"]


def test_duplicate_costs_one_request_and_late_event_two(aws, none_mode, handlers_fresh):
    calls = DynamoCalls()
    events = failed_import()
    call(handlers_fresh, http_event(events[0]))
    call(handlers_fresh, http_event(events[3]))
    calls.take()
    assert call(handlers_fresh, http_event(events[3]))[1]["status"] == "duplicate"
    assert calls.take() == ["UpdateItem"]
    assert call(handlers_fresh, http_event(events[2]))[1]["status"] == "history"
    assert calls.take() == ["UpdateItem", "PutItem"]


def test_other_canvas_event_types_get_2xx_ignored_and_nothing_stored(aws, none_mode, handlers_fresh):
    status, body = call(handlers_fresh, http_event({"metadata": {"event_name": "course_created"}, "body": {}}))
    assert status == 200 and body["status"] == "ignored" and "ignored" in body["note"]
    assert aws.scan() == []


def test_other_canvas_event_types_of_another_root_account_are_refused_like_its_sis_events(
    aws, none_mode, handlers_fresh
):
    ours = {"metadata": {"event_name": "course_created", "root_account_uuid": "OtherInstanceUuid"}, "body": {}}
    assert call(handlers_fresh, http_event(ours))[1]["status"] == "ignored"
    theirs = {"metadata": {"event_name": "course_created", "root_account_uuid": "SomeoneElse"}, "body": {}}
    status, body = call(handlers_fresh, http_event(theirs))
    assert (status, body["field"]) == (403, "metadata.root_account_uuid")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["body"].pop("sis_batch_id"), "body.sis_batch_id"),
        (lambda e: e["body"].update(workflow_state="done"), "body.workflow_state"),
        (lambda e: e["metadata"].update(event_time=T0.replace(".000Z", "Z")), "metadata.event_time"),
        (lambda e: e["metadata"].pop("root_account_uuid"), "metadata.root_account_uuid"),
    ],
)
def test_invalid_event_is_400_naming_the_field_and_nothing_stored(aws, none_mode, handlers_fresh, mutate, field):
    event = canvas_event("created", T0)
    mutate(event)
    status, body = call(handlers_fresh, http_event(event))
    assert status == 400 and body["error"] == "invalid event"
    assert [f["field"] for f in body["fields"]] == [field]
    assert aws.scan() == []


def test_body_that_is_not_json_is_400(aws, none_mode, handlers_fresh):
    status, body = call(handlers_fresh, http_event("{not json"))
    assert status == 400 and "JSON" in body["error"]


def test_bad_base64_is_400(aws, none_mode, handlers_fresh):
    event = http_event("x")
    event.update(isBase64Encoded=True, body="***")
    assert call(handlers_fresh, event)[0] == 400


def test_body_above_256_kib_is_413(aws, none_mode, handlers_fresh):
    event = canvas_event("created", T0)
    event["metadata"]["padding"] = "x" * (256 * 1024)
    status, body = call(handlers_fresh, http_event(event))
    assert status == 413 and "262144" in body["error"]
    assert aws.scan() == []


def test_only_post(aws, none_mode, handlers_fresh):
    assert call(handlers_fresh, http_event(None, method="GET"))[0] == 405


def test_unsigned_json_in_jwt_mode_is_401_with_a_hint(aws, jwt_mode, handlers_fresh):
    status, body = call(handlers_fresh, http_event(canvas_event("created", T0)))
    assert status == 401 and "Sign Payload" in body["reason"]
    assert aws.scan() == []


def test_dynamodb_throttle_answers_503_and_writes_nothing(aws, none_mode, handlers_fresh):
    def throttle(**kwargs):
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"
        )

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.UpdateItem", throttle)
    status, body = call(handlers_fresh, http_event(canvas_event("created", T0)))
    assert status == 503 and "retry" in body["error"]
    assert aws.scan() == []


def test_throttle_on_the_second_write_of_a_late_event_leaves_the_item_as_it_was(aws, none_mode, handlers_fresh):
    events = failed_import()
    call(handlers_fresh, http_event(events[3]))
    before = aws.scan()

    def throttle(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")

    handlers_fresh["ingest"].app.cache_clear()
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.PutItem", throttle)
    assert call(handlers_fresh, http_event(events[1]))[0] == 503
    assert aws.scan() == before


def test_token_mode_needs_the_shared_token_from_secrets_manager(aws, monkeypatch, handlers_fresh):
    secret = boto3.client("secretsmanager").create_secret(Name="canvas-token", SecretString="s3cret-shared-token")
    monkeypatch.setenv("SIS_AUTH", "token")
    monkeypatch.setenv("SIS_TOKEN_SECRET_ARN", secret["ARN"])
    event = canvas_event("created", T0)
    assert call(handlers_fresh, http_event(event))[0] == 401
    assert call(handlers_fresh, http_event(event, query={"token": "wrong"}))[0] == 401
    assert call(handlers_fresh, http_event(event, query={"token": "s3cret-shared-token"}))[0] == 200


def test_token_mode_answers_503_when_the_secret_cannot_be_read(aws, monkeypatch, handlers_fresh):
    monkeypatch.setenv("SIS_AUTH", "token")
    monkeypatch.setenv("SIS_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing")
    status, _ = call(handlers_fresh, http_event(canvas_event("created", T0), query={"token": "x"}))
    assert status == 503


def test_query_answers_the_batch_view_404_and_400(aws, none_mode, handlers_fresh):
    for event in failed_import() + [canvas_event("importing", at(T0, 4.25))]:
        call(handlers_fresh, http_event(event))
    query = handlers_fresh["query"].handler
    ctx = LambdaContext(function_name="query")

    def get(uuid, batch_id):
        params = {"root_account_uuid": uuid, "sis_batch_id": batch_id}
        response = query(http_event(None, method="GET", path=f"/batches/{uuid}/{batch_id}", path_parameters=params), ctx)
        return response["statusCode"], json.loads(response["body"])

    status, view = get(failed_import()[0]["metadata"]["root_account_uuid"], "1440004")
    assert status == 200
    assert (view["workflow_state"], view["terminal"], view["outcome"], view["account_id"]) == (
        "failed_with_messages", True, "failure", "1"
    )
    assert view["first_event_at"] == T0 and view["last_event_at"] == at(T0, 61.5)
    assert [h["workflow_state"] for h in view["history"]] == [
        "initializing", "created", "importing", "failed_with_messages"
    ]
    assert set(view["history"][0]) == {"workflow_state", "event_time", "event_name"}
    assert get("VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs", "999")[0] == 404
    assert get("bad uuid!", "1")[0] == 400


def test_same_batch_id_on_two_canvas_instances_are_two_batches(aws, none_mode, handlers_fresh):
    call(handlers_fresh, http_event(canvas_event("created", T0)))
    call(handlers_fresh, http_event(canvas_event("importing", at(T0, 1), root_account_uuid="OtherInstanceUuid")))
    assert len(aws.scan()) == 2
