import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_imports.core.events import IgnoredEvent, InvalidEvent, SisBatchEvent, parse_event
from sis_imports.core.states import WorkflowState
from tests.factories import CREATED_EXAMPLE, T0, UPDATED_EXAMPLE, at, canvas_event


def fields_of(exc: pytest.ExceptionInfo[InvalidEvent]) -> set[str]:
    return {error.field for error in exc.value.errors}


def test_both_canvas_examples_parse():
    created = parse_event(CREATED_EXAMPLE)
    updated = parse_event(UPDATED_EXAMPLE)
    assert isinstance(created, SisBatchEvent) and isinstance(updated, SisBatchEvent)
    assert (created.sis_batch_id, created.workflow_state) == ("31048324", WorkflowState.INITIALIZING)
    assert (updated.event_name, updated.workflow_state) == ("sis_batch_updated", WorkflowState.CREATED)


def test_background_job_event_without_user_url_or_hostname_parses():
    event = parse_event(canvas_event("importing", at(T0, 4.25)))
    assert event.metadata.hostname is None and event.metadata.url is None and event.metadata.user_id is None


def test_compact_events_leave_nulls_out_and_unknown_fields_are_ignored():
    raw = canvas_event("created", T0)
    raw["metadata"] = {k: v for k, v in raw["metadata"].items() if v is not None}
    raw["metadata"]["brand_new_canvas_field"] = {"nested": True}
    raw["body"]["progress"] = 40
    assert isinstance(parse_event(raw), SisBatchEvent)


def test_numeric_ids_become_strings():
    raw = canvas_event("created", T0)
    raw["body"]["sis_batch_id"] = 1440004
    raw["body"]["account_id"] = 1
    raw["metadata"]["root_account_id"] = 21070000000000001
    event = parse_event(raw)
    assert (event.sis_batch_id, event.body.account_id, event.metadata.root_account_id) == (
        "1440004",
        "1",
        "21070000000000001",
    )


def test_boolean_is_not_an_id():
    raw = canvas_event("created", T0)
    raw["body"]["sis_batch_id"] = True
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"body.sis_batch_id"}


@pytest.mark.parametrize(
    "event_time",
    [
        "2020-01-14T14:14:11Z",  # no milliseconds
        "2020-01-14T14:14:11.498123Z",  # microseconds
        "2020-01-14T14:14:11.498+00:00",  # not Z
        "2020-01-14 14:14:11.498Z",
        "2020-02-30T14:14:11.498Z",  # no such day
        "yesterday",
        "",
    ],
)
def test_event_time_must_be_utc_iso8601_with_milliseconds(event_time):
    raw = canvas_event("created", T0)
    raw["metadata"]["event_time"] = event_time
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"metadata.event_time"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("body", "sis_batch_id"), "body.sis_batch_id"),
        (("body", "account_id"), "body.account_id"),
        (("body", "workflow_state"), "body.workflow_state"),
        (("metadata", "event_time"), "metadata.event_time"),
        (("metadata", "root_account_uuid"), "metadata.root_account_uuid"),
    ],
)
def test_each_required_field_is_named_when_missing(path, field):
    raw = canvas_event("created", T0)
    del raw[path[0]][path[1]]
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {field}


def test_unknown_workflow_state_is_named_and_its_value_not_echoed():
    raw = canvas_event("created", T0)
    raw["body"]["workflow_state"] = "secret-value-123"
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"body.workflow_state"}
    assert "secret-value-123" not in str(exc.value)


def test_other_canvas_events_are_ignored_not_invalid():
    raw = canvas_event("created", T0)
    raw["metadata"]["event_name"] = "course_created"
    del raw["body"]["workflow_state"]
    assert parse_event(raw) == IgnoredEvent(event_name="course_created")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([1, 2], "(event)"),
        ({"body": {}}, "metadata"),
        ({"metadata": {}, "body": {}}, "metadata.event_name"),
        ({"metadata": {"event_name": 7}}, "metadata.event_name"),
    ],
)
def test_shapeless_input_names_what_is_missing(raw, field):
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {field}


def test_hostname_and_ids_are_kept_to_safe_characters():
    raw = canvas_event("created", T0)
    raw["metadata"]["hostname"] = "evil.example/<script>"
    raw["body"]["sis_batch_id"] = "1/../2"
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"metadata.hostname", "body.sis_batch_id"}


@pytest.mark.parametrize(
    "event_time",
    [
        "٢٠٢٦-12-01T09:00:00.000Z",  # Arabic-Indic digits: strptime reads them, and they sort after every time
        "２０２６-12-01T09:00:00.000Z",  # fullwidth
        "2026-12-01T09:00:00.00५Z",  # one Devanagari digit
        "2026-12-01T09:00:00.000Ｚ",
    ],
)
def test_event_time_digits_must_be_ascii(event_time):
    raw = canvas_event("created", T0)
    raw["metadata"]["event_time"] = event_time
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert [(e.field, e.message) for e in exc.value.errors] == [
        ("metadata.event_time", "Value error, must be written in ASCII digits, like 2020-01-14T14:14:11.498Z")]
    assert event_time not in str(exc.value)


# Every Unicode decimal digit outside ASCII (category Nd), at any of the time's digit positions.
@settings(deadline=None)  # a stalled machine must not fail an example
@given(
    digit=st.characters(categories=["Nd"]).filter(lambda c: not c.isascii()),
    position=st.sampled_from([i for i, c in enumerate(T0) if c.isdigit()]),
)
def test_no_digit_of_another_script_gets_into_an_event_time(digit, position):
    raw = canvas_event("created", T0)
    raw["metadata"]["event_time"] = T0[:position] + digit + T0[position + 1:]
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"metadata.event_time"}


def test_a_hostname_port_is_ascii_digits():
    raw = canvas_event("created", T0)
    raw["metadata"]["hostname"] = "oxana.instructure.com:٤٤٣"
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert fields_of(exc) == {"metadata.hostname"}
    raw["metadata"]["hostname"] = "oxana.instructure.com:443"
    assert parse_event(raw).metadata.hostname == "oxana.instructure.com:443"
