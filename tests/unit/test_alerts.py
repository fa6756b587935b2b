from dataclasses import replace

from sis_imports.core.alerts import alerts_for
from sis_imports.core.batch import Decision, apply_event
from sis_imports.core.events import parse_event
from tests.factories import ACCESS_TOKEN, T0, at, canvas_event, failed_import



def states_through(raws):
    """[(old, new)] for each write the events cause, as the stream would show them."""
    batch, writes = None, []
    for raw in raws:
        decision, new = apply_event(batch, parse_event(raw))
        if decision is not Decision.DUPLICATE:
            writes.append((batch, new))
        batch = new
    return writes


def alerts_of(raws):
    return [a for old, new in states_through(raws) for a in alerts_for(old, new)]


def test_failed_import_alerts_once_with_what_subscribers_filter_on():
    (alert,) = alerts_of(failed_import())
    assert alert.subject == "SIS import 1440004 failed_with_messages on oxana.instructure.com"
    assert alert.attributes == {
        "workflow_state": "failed_with_messages",
        "outcome": "failure",
        "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
        "account_id": "1",
        "alert_id": alert.message["alert_id"],
        "type": "sis_import_finished",
    }
    assert len(alert.message["alert_id"]) == 32 and alert.message["late"] is False
    m = alert.message
    assert m["type"] == "sis_import_finished" and m["previous_state"] == "importing"
    assert (m["started_at"], m["finished_at"], m["duration_seconds"]) == (T0, at(T0, 61.5), 61.5)
    assert m["canvas_url"] == "https://oxana.instructure.com/api/v1/accounts/1/sis_imports/1440004"
    assert m["root_account_id"] == "21070000000000001" and len(m["history"]) == 4


def test_alert_has_no_personal_data():
    (alert,) = alerts_of(failed_import())
    text = repr(alert)
    for secret in (ACCESS_TOKEN, "mysisimporterlogin", "93.184.216.34", "python-requests", "sis_imports.json"):
        assert secret not in text


def test_import_then_restore_alerts_twice_and_a_late_or_duplicate_event_never():
    events = failed_import() + [canvas_event("restoring", at(T0, 3600)), canvas_event("partially_restored", at(T0, 3660))]
    alerts = alerts_of(events + [events[1], events[3], events[-1]])
    assert [a.message["workflow_state"] for a in alerts] == ["failed_with_messages", "partially_restored"]
    restore = alerts[1].message
    assert restore["type"] == "sis_restore_finished" and restore["outcome"] == "warning"
    assert (restore["started_at"], restore["duration_seconds"]) == (at(T0, 3600), 60.0)


def test_subject_stays_under_100_characters_and_names_the_root_account_without_hostname():
    long_id = "9" * 120
    raw = canvas_event("aborted", T0, sis_batch_id=long_id[:128])
    (alert,) = alerts_of([raw])
    assert len(alert.subject) < 100
    (alert,) = alerts_of([canvas_event("imported", T0, request_context=False)])
    assert alert.subject == "SIS import 1440004 imported in root account 21070000000000001"
    assert alert.message["canvas_url"] is None


def test_no_alert_without_a_state_change():
    old_new = states_through(failed_import())[-1]
    _, new = old_new
    assert alerts_for(new, replace(new, version=new.version + 1)) == []


def restore_cycles():
    """failed, restored, then a second restore: restoring and restored again."""
    events = failed_import() + [canvas_event("restoring", at(T0, 3600)), canvas_event("restored", at(T0, 3660)),
                                canvas_event("restoring", at(T0, 7200)), canvas_event("restored", at(T0, 7260))]
    return events


def test_a_late_or_lost_second_restoring_does_not_hide_the_second_restores_end():
    events = restore_cycles()
    in_order = alerts_of(events)
    late = alerts_of(events[:6] + [events[7], events[6]])  # the second restoring after its restored
    lost = alerts_of(events[:6] + [events[7]])  # the second restoring never arrives
    for alerts in (in_order, late, lost):
        assert [(a.message["workflow_state"], a.message["finished_at"]) for a in alerts] == [
            ("failed_with_messages", at(T0, 61.5)), ("restored", at(T0, 3660)), ("restored", at(T0, 7260))]
    assert in_order[2].message["duration_seconds"] == 60.0
    assert late[2].message["started_at"] is None  # its restoring had not arrived: unknown, not the first one's
    assert lost[2].message["duration_seconds"] is None


def test_an_end_that_arrives_after_a_newer_state_alerts_once_saying_it_is_late():
    events = failed_import() + [canvas_event("restoring", at(T0, 3600))]
    alerts = alerts_of(events[:3] + [events[4], events[3], events[3]])  # failed arrives after restoring
    (alert,) = alerts
    m = alert.message
    assert (m["workflow_state"], m["late"], m["current_state"]) == ("failed_with_messages", True, "restoring")
    assert alert.subject.endswith("(late)")


def test_the_alert_id_is_stable_whatever_the_order_and_differs_per_end():
    events = restore_cycles()
    forward = [a.message["alert_id"] for a in alerts_of(events)]
    backward = sorted(a.message["alert_id"] for a in alerts_of(events[::-1]))
    assert sorted(forward) == backward and len(set(forward)) == 3


def test_the_api_seeing_an_end_a_live_event_told_is_the_same_end():
    from dataclasses import replace as dc_replace

    from sis_imports.core.batch import HistoryEntry
    from sis_imports.core.states import WorkflowState

    writes = states_through(failed_import())
    _, batch = writes[-1]
    api = HistoryEntry(WorkflowState.FAILED_WITH_MESSAGES, at(T0, 300), "sis_import_api")
    observed = dc_replace(batch, history=batch.history + (api,), event_time=api.event_time, version=batch.version + 1)
    assert alerts_for(batch, observed) == []  # the API read after the event: the same end
    # and the other way round: the API first (alerted, detected_by sis_import_api), the event late
    first = dc_replace(batch, history=batch.history[:-1] + (api,), event_time=api.event_time)
    before = dc_replace(batch, history=batch.history[:-1], workflow_state=WorkflowState.IMPORTING,
                        event_time=batch.history[-2].event_time)
    (alert,) = alerts_for(before, first)
    assert alert.message["detected_by"] == "sis_import_api"
    assert alerts_for(first, observed) == []


def test_the_first_pass_record_alerts_nothing():
    _, batch = states_through(failed_import())[-1]
    assert alerts_for(None, replace(batch, baseline=True)) == []
