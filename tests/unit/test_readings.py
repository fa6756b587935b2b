"""Readings of Canvas's SIS Import API among Live Events, and long histories (pure core).

The rule (README, "Order"): a reading is Canvas's truth at some moment between our request and its
answer, by our clock, which may differ from Canvas's by up to CLOCK_TOLERANCE_SECONDS. It goes after
every event it could have seen, never before one it saw, and an end that a Live Event and a reading
both report is one end, whichever arrives first. The property test's oracle is that rule's promise,
on a true timeline: every end anyone observed alerts exactly once, and no write moves a batch back.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core.alerts import alerts_for
from sis_imports.core.batch import CLOCK_TOLERANCE_SECONDS, Batch, Decision, apply_event
from sis_imports.core.events import parse_event
from sis_imports.core.reconcile import CanvasImport, event_time
from sis_imports.core.states import IMPORT_ENDS, RANK, RESTORE_ENDS, TERMINAL, WorkflowState
from tests.factories import T0, at, canvas_event

BASE = parse_event(canvas_event("initializing", T0)).event_time
EPOCH0 = __import__("datetime").datetime.strptime(BASE, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
    tzinfo=__import__("datetime").timezone.utc).timestamp()


def live(state: str, seconds: float, sis_batch_id: str = "77") -> dict:
    return canvas_event(state, at(T0, seconds), sis_batch_id)


def reading(state: str, asked: float, answered: float, sis_batch_id: str = "77") -> tuple:
    """What the reconciler writes for an answer: the event (timed at the answer) and when it asked."""
    answer = CanvasImport.of({"id": sis_batch_id, "workflow_state": state}, EPOCH0 + answered, EPOCH0 + asked)
    event = answer.as_event(parse_event(live("initializing", 0, sis_batch_id)).root_account_uuid, "1",
                            "oxana.instructure.com")
    return event, answer.asked_time


class Pipeline:
    """The store's contract on the pure core: Live Events applied as they come; a reading written
    only when the batch is not already in its state (as BatchStore.reconcile); the alerts each write owes."""

    def __init__(self):
        self.batch: Batch | None = None
        self.alerts: list[dict] = []
        self.states: list[WorkflowState] = []

    def _write(self, decision: Decision, new: Batch) -> None:
        if decision is Decision.DUPLICATE:
            return
        self.alerts += [a.message for a in alerts_for(self.batch, new)]
        self.batch = new
        self.states.append(new.workflow_state)

    def event(self, raw: dict) -> None:
        self._write(*apply_event(self.batch, parse_event(raw)))

    def read(self, event, asked_at: str) -> None:
        if self.batch is not None and self.batch.workflow_state is event.workflow_state:
            return
        self._write(*apply_event(self.batch, event, asked_at=asked_at))


def test_a_reading_that_saw_an_end_and_its_live_event_are_one_end_in_either_order():
    lives = [live("created", 0), live("importing", 1), live("imported", 10)]
    for reading_first in (True, False):
        pipeline = Pipeline()
        for raw in lives[:2]:
            pipeline.event(raw)
        # Canvas was asked at 9 s and answered at 11 s: it looked after the end, by its clock at 10 s.
        if reading_first:
            pipeline.read(*reading("imported", 9, 11))
            pipeline.event(lives[2])
        else:
            pipeline.event(lives[2])
            pipeline.read(*reading("imported", 9, 11))
        assert [a["workflow_state"] for a in pipeline.alerts] == ["imported"]
        assert pipeline.batch.workflow_state is WorkflowState.IMPORTED


def test_a_reading_answered_after_a_later_event_does_not_move_the_batch_back():
    """Canvas read `importing` at 9.5 s, its answer came at 11 s; the import had ended at 10 s."""
    pipeline = Pipeline()
    for raw in (live("created", 0), live("importing", 1), live("failed", 10)):
        pipeline.event(raw)
    pipeline.read(*reading("importing", 9, 11))
    assert pipeline.batch.workflow_state is WorkflowState.FAILED
    assert [(e.workflow_state.value, e.reading) for e in pipeline.batch.history] == [
        ("created", False), ("importing", False), ("importing", True), ("failed", False)]
    assert [a["workflow_state"] for a in pipeline.alerts] == ["failed"]


def test_two_readings_whose_requests_overlap_go_in_the_order_of_the_life():
    """The later answer saw the earlier state: two slow requests overlapping, events all lost."""
    pipeline = Pipeline()
    pipeline.event(live("created", 0))
    pipeline.read(*reading("imported_with_messages", 0.8, 2.6))
    pipeline.read(*reading("importing", 1.3, 2.9))
    assert pipeline.batch.workflow_state is WorkflowState.IMPORTED_WITH_MESSAGES
    assert [a["workflow_state"] for a in pipeline.alerts] == ["imported_with_messages"]


def test_a_reading_long_after_the_last_event_is_the_newest_state():
    pipeline = Pipeline()
    for raw in (live("created", 0), live("importing", 1)):
        pipeline.event(raw)
    pipeline.read(*reading("aborted", 600, 601))  # Canvas sends no event for aborted
    assert pipeline.batch.workflow_state is WorkflowState.ABORTED
    alert, = pipeline.alerts
    assert alert["detected_by"] == "sis_import_api" and alert["finished_at"] == at(T0, 601)


def test_two_restores_in_one_readings_window_each_alert_once_in_every_arrival_order():
    import itertools

    lives = [live("imported", 10), live("restoring", 11), live("restored", 12), live("restoring", 13),
             live("restored", 14)]
    for order in itertools.permutations(range(6)):
        pipeline = Pipeline()
        pipeline.event(live("importing", 1))
        for n in order:
            if n == 5:
                pipeline.read(*reading("restored", 12.5, 13.5))
            else:
                pipeline.event(lives[n])
        # Each end once: the first restore may be told by the reading (at its answer's time) when it
        # came before that restore's event.
        ends = sorted(a["workflow_state"] for a in pipeline.alerts)
        assert ends == ["imported", "restored", "restored"], order
        assert len({a["alert_id"] for a in pipeline.alerts}) == 3


def restored(cycles: int) -> Pipeline:
    """An import, then `cycles` restores, every event in order."""
    events = [live("created", 0), live("importing", 1), live("imported", 2)]
    for cycle in range(cycles):
        events += [live("restoring", 10 + 10 * cycle), live("restored", 15 + 10 * cycle)]
    pipeline = Pipeline()
    for raw in events:
        pipeline.event(raw)
    return pipeline


def test_a_late_end_is_alerted_after_26_restore_cycles_and_the_item_stays_small():
    pipeline = restored(26)
    assert len([a for a in pipeline.alerts if a["workflow_state"] == "restored"]) == 26
    # The import had really ended failed at 2.5 s: that event comes now, 53 entries later.
    pipeline.event(live("failed", 2.5))
    late = [a for a in pipeline.alerts if a["workflow_state"] == "failed"]
    assert len(late) == 1 and late[0]["late"] is True and late[0]["current_state"] == "restored"
    # A second copy alerts nothing more.
    pipeline.event(live("failed", 2.5))
    assert len([a for a in pipeline.alerts if a["workflow_state"] == "failed"]) == 1
    size = len(json.dumps(pipeline.batch.to_item()))
    assert size < 20_000, size  # DynamoDB allows 400 KB an item


def test_trimming_drops_old_non_ends_only():
    history = restored(60).batch.history
    ends = [e for e in history if e.workflow_state in TERMINAL]
    assert len(ends) == 61  # every end kept, though the history limit is 50
    assert all(history[history.index(e) - 1].workflow_state is WorkflowState.RESTORING for e in ends[1:])
    assert history[0].workflow_state is WorkflowState.IMPORTING  # created and initializing went first


# -- the property -------------------------------------------------------------------------------------

@st.composite
def timelines(draw):
    """One import's true life (our clock, seconds), Canvas's clock skew, the deliveries of its Live
    Events (0-2 copies, each 0-3 s late) and the reconciler's requests (each answered within 2 s)."""
    ms = lambda lo, hi: draw(st.integers(lo, hi)) / 1000  # noqa: E731
    clock = ms(0, 2000)
    steps = [("initializing", clock), ("created", clock)]
    clock += ms(1, 3000)
    steps.append(("importing", clock))
    if draw(st.booleans()):
        clock += ms(1, 3000)
        steps.append(("cleanup_batch", clock))
    clock += ms(1, 4000)
    end = draw(st.sampled_from(sorted(IMPORT_ENDS)))
    steps.append((end.value, clock))
    if end is not WorkflowState.ABORTED and draw(st.booleans()):
        clock += ms(1, 3000)
        steps.append(("restoring", clock))
        clock += ms(0, 3000)
        steps.append((draw(st.sampled_from(sorted(RESTORE_ENDS))).value, clock))
    skew = ms(-int(CLOCK_TOLERANCE_SECONDS * 800), int(CLOCK_TOLERANCE_SECONDS * 800))
    actions = []  # (arrives, kind, payload)
    for state, happened in steps:
        if state in ("aborted", "cleanup_batch"):
            continue  # Canvas sends no event for them
        for _ in range(draw(st.integers(0, 2))):
            actions.append((happened + ms(0, 3000), "event", (state, happened + skew)))
    for _ in range(draw(st.integers(0, 8))):
        asked = ms(0, int(clock * 1000) + 3000)
        looked = asked + ms(0, 2000)
        answered = looked + ms(0, 2000 - int((looked - asked) * 1000))
        seen = [s for s, t in steps if t <= looked]
        if seen:
            actions.append((answered, "read", (seen[-1], asked, answered)))
    order = draw(st.permutations(actions)) if draw(st.booleans()) else sorted(actions, key=lambda a: a[0])
    return steps, order


def truth_at(steps, moment):
    return [s for s, t in steps if t <= moment][-1]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_readings_inside_the_window_and_late_events_alert_each_observed_end_once_never_moving_back(case):
    steps, order = case
    pipeline = Pipeline()
    observed = set()
    for _, kind, payload in order:
        if kind == "event":
            state, stamp = payload
            pipeline.event(live(state, stamp))
            observed.add(state)
        else:
            state, asked, answered = payload
            pipeline.read(*reading(state, asked, answered))
            observed.add(state)
    last = max(t for _, t in steps) + 600
    pipeline.read(*reading(truth_at(steps, last), last, last + 1))  # a pass long after: the API is the truth
    observed.add(steps[-1][0])

    # Every end anyone observed alerts exactly once (no state ends twice in these lives).
    ends = [s for s, _ in steps if WorkflowState(s) in TERMINAL]
    assert sorted(a["workflow_state"] for a in pipeline.alerts) == sorted(s for s in ends if s in observed)
    # No write moved the batch back in its life (ranks rise along these lives).
    ranks = [RANK[s] for s in pipeline.states]
    assert ranks == sorted(ranks), [s.value for s in pipeline.states]
    assert pipeline.batch.workflow_state.value == steps[-1][0]
