from dataclasses import replace

from sis_imports.alerts import alert_for
from sis_imports.batch import Decision, apply_event
from sis_imports.events import parse_event
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
    return [a for a in (alert_for(old, new) for old, new in states_through(raws)) if a]


def test_failed_import_alerts_once_with_what_subscribers_filter_on():
    (alert,) = alerts_of(failed_import())
    assert alert.subject == "SIS import 1440004 failed_with_messages on oxana.instructure.com"
    assert alert.attributes == {
        "workflow_state": "failed_with_messages",
        "outcome": "failure",
        "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
        "account_id": "1",
    }
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
    assert alert_for(new, replace(new, version=new.version + 1)) is None
