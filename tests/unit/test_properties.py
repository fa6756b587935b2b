"""Property: any delivery order, with duplicates, ends in the newest state, a complete history
and exactly one alert per terminal transition (pure core, 1,000+ examples)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core.alerts import alerts_for
from sis_imports.core.batch import Decision, HistoryEntry, apply_event, order_key
from sis_imports.core.events import parse_event
from sis_imports.core.states import IMPORT_ENDS, RESTORE_ENDS, TERMINAL, WorkflowState
from tests.factories import T0, at, canvas_event



@st.composite
def lifecycle(draw, sis_batch_id: str) -> list[dict]:
    """One batch's events as Canvas would send them, in true order (maybe unfinished)."""
    clock = draw(st.integers(0, 10_000)) / 1000
    steps = [("initializing", 0.0), ("created", 0.0), ("importing", draw(st.integers(1, 5000)) / 1000)]
    steps.append((draw(st.sampled_from(sorted(IMPORT_ENDS))).value, draw(st.integers(1, 900_000)) / 1000))
    for _ in range(draw(st.integers(0, 2))):  # restore cycles
        steps.append(("restoring", draw(st.integers(1, 90_000)) / 1000))
        steps.append((draw(st.sampled_from(sorted(RESTORE_ENDS))).value, draw(st.integers(0, 90_000)) / 1000))
    steps = steps[: draw(st.integers(1, len(steps)))]
    events = []
    for state, delta in steps:
        clock += delta
        events.append(canvas_event(state, at(T0, clock), sis_batch_id))
    return events


@st.composite
def deliveries(draw):
    """Several batches' events, each sent 1-3 times, in a random order; with `lossy`, some never."""
    batches = [draw(lifecycle(str(1000 + n))) for n in range(draw(st.integers(1, 3)))]
    sent = [event for events in batches for event in events for _ in range(draw(st.integers(1, 3)))]
    return batches, draw(st.permutations(sent))


@st.composite
def lossy_deliveries(draw):
    """Like `deliveries`, but each event may be lost (restore cycles with lost `restoring`s included)."""
    batches = [draw(lifecycle(str(2000 + n))) for n in range(draw(st.integers(1, 3)))]
    sent = [event for events in batches for event in events for _ in range(draw(st.integers(0, 2)))]
    return batches, draw(st.permutations(sent))


def key_of(raw: dict) -> str:
    return order_key(raw["metadata"]["event_time"], WorkflowState(raw["body"]["workflow_state"]))


def expected_alerts(order: list[dict]) -> set[tuple[str, str, str]]:
    """The promise: every end of an import or a restore that was delivered at least once alerts,
    exactly once, whatever the order (written from the rule, not from the code)."""
    delivered = {(e["body"]["sis_batch_id"], e["body"]["workflow_state"], e["metadata"]["event_time"]) for e in order}
    return {end for end in delivered if WorkflowState(end[1]) in TERMINAL}


def deliver(order: list[dict]) -> tuple[dict[str, object], list[tuple[str, str, str]]]:
    """The batches the core stores for `order`, and the alerts the stream records of its writes owe."""
    stored: dict[str, object] = {}
    alerts = []
    for raw in order:
        event = parse_event(raw)
        old = stored.get(event.sis_batch_id)
        decision, new = apply_event(old, event)
        if decision is Decision.DUPLICATE:
            continue
        stored[event.sis_batch_id] = new
        alerts += [(a.message["sis_batch_id"], a.message["workflow_state"], a.message["finished_at"])
                   for a in alerts_for(old, new)]
    return stored, alerts


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_any_delivery_order_converges(case):
    batches, order = case
    stored, alerts = deliver(order)

    for events in batches:
        batch = stored[events[0]["body"]["sis_batch_id"]]
        newest = max(events, key=key_of)
        assert batch.workflow_state.value == newest["body"]["workflow_state"]
        assert batch.event_time == newest["metadata"]["event_time"]
        expected_history = sorted({HistoryEntry.of(parse_event(e)) for e in events}, key=HistoryEntry.sort_key)
        assert list(batch.history) == expected_history  # complete, in time order, no duplicates
        assert batch.first_event_at == events[0]["metadata"]["event_time"]
    assert set(alerts) == expected_alerts(order)
    assert len(alerts) == len(set(alerts))  # never twice for one end


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3).flatmap(lambda n: st.lists(lifecycle("7"), min_size=1, max_size=1)))
def test_in_order_delivery_alerts_for_every_end_reached(batches):
    (events,) = batches
    batch, alerts = None, []
    for raw in events:
        decision, new = apply_event(batch, parse_event(raw))
        assert decision is Decision.APPLY
        alerts += [alert.message["workflow_state"] for alert in alerts_for(batch, new)]
        batch = new
    assert alerts == [e["body"]["workflow_state"] for e in events if WorkflowState(e["body"]["workflow_state"]) in TERMINAL]


@settings(max_examples=400, deadline=None)
@given(
    first=st.sampled_from(sorted(WorkflowState)),
    second=st.sampled_from(sorted(WorkflowState)),
    before=st.lists(st.sampled_from(sorted(WorkflowState)), max_size=3),
)
def test_events_tied_on_time_end_the_same_whichever_arrives_first(first, second, before):
    """The promise: the final state depends on the events, never on their arrival order."""
    tied = [canvas_event(first.value, at(T0, 60), "8"), canvas_event(second.value, at(T0, 60), "8")]
    earlier = [canvas_event(state.value, at(T0, n), "8") for n, state in enumerate(before)]

    def final(order):
        batch = None
        for raw in order:
            _, batch = apply_event(batch, parse_event(raw))
        return batch.workflow_state, batch.event_time, batch.history

    assert final(earlier + tied) == final(earlier + tied[::-1]) == final(tied[::-1] + earlier)


def test_a_tie_between_two_ends_goes_to_the_graver_one():
    for good, grave in [("imported", "failed"), ("imported_with_messages", "failed_with_messages"),
                        ("imported", "aborted"), ("restored", "partially_restored")]:
        for order in ([good, grave], [grave, good]):
            batch = None
            for state in order:
                _, batch = apply_event(batch, parse_event(canvas_event(state, T0, "9")))
            assert batch.workflow_state.value == grave


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lossy_deliveries())
def test_every_delivered_end_alerts_exactly_once_even_with_lost_events(case):
    _, order = case
    _, alerts = deliver(order)
    assert sorted(alerts) == sorted(expected_alerts(order))
