"""Property: Live Events (some lost, duplicated, late) and reconcile passes interleave at random; the
batch always ends in Canvas's final state, with exactly one alert for its end. The oracle is the
promise (Canvas's last state; one alert per end), not a re-run of the rules."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from sis_imports.alerts import alerts_for
from sis_imports.events import parse_event
from sis_imports.reconcile import DEFAULT_STUCK_MINUTES, event_time
from sis_imports.reconciler import Instance, Reconciler
from sis_imports.states import IMPORT_ENDS, WorkflowState
from tests.factories import NOW, ROOT_ACCOUNT_UUID, canvas_event
from tests.memory_store import MemoryStore

START = NOW.timestamp() - 86400


def api_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeCanvas:
    """Canvas's SIS Import API for one import whose true history is `steps` [(state, time)]."""

    def __init__(self, steps: list[tuple[str, float]], clock):
        self.steps, self.clock = steps, clock

    def _now_state(self):
        seen = [(s, t) for s, t in self.steps if t <= self.clock()]
        return seen[-1] if seen else None

    def _json(self):
        state, at = self._now_state()
        created = self.steps[0][1]
        started = next((t for s, t in self.steps if s == "importing" and t <= self.clock()), None)
        return {"id": 500, "workflow_state": state, "created_at": api_time(created),
                "started_at": api_time(started) if started else None,
                "updated_at": api_time(created if state == "aborted" else at), "ended_at": None}

    def account_self(self):
        return {"id": 1, "uuid": ROOT_ACCOUNT_UUID}

    requests = 0

    def sis_imports_created_since(self, account, since):
        self.requests += 1
        return iter([self._json()] if self._now_state() else [])

    def sis_import(self, account, sis_id):
        return self._json()

    def reset_counters(self):
        pass

    def counters(self):
        return {"requests": 1, "throttled": 0}


@st.composite
def histories(draw):
    """One import's true life, the deliveries of its events, and the passes, on one timeline."""
    end = draw(st.sampled_from(sorted(IMPORT_ENDS)))
    t0 = START + draw(st.integers(0, 600))
    importing = t0 + draw(st.integers(1, 600))
    ended = importing + draw(st.integers(1, 3600))
    steps = [("initializing", t0), ("created", t0), ("importing", importing), (end.value, ended)]
    actions = []
    for state, at in steps:
        if state == "aborted":
            continue  # Canvas sends no event for it
        for _ in range(draw(st.integers(0, 2))):  # lost, once, or twice
            actions.append((at + draw(st.integers(0, 7200)), "event", state, at))
    for _ in range(draw(st.integers(0, 6))):
        actions.append((t0 + draw(st.integers(0, 12000)), "pass", None, None))
    actions.sort(key=lambda a: (a[0], a[1]))
    return end, steps, actions


@settings(max_examples=300, deadline=None)
@given(histories())
def test_events_and_passes_in_any_interleaving_end_in_canvass_state_with_one_alert(case):
    end, steps, actions = case
    now = [START - 60]
    store = MemoryStore()
    canvas = FakeCanvas(steps, lambda: now[0])
    reconciler = Reconciler(store, [Instance("https://oxana.instructure.com", canvas)],  # type: ignore[arg-type]
                            allowed_root_accounts=None, lookback_hours=48,
                            stuck_minutes={s: 10**6 for s in DEFAULT_STUCK_MINUTES}, clock=lambda: now[0])
    reconciler.run()  # deployed before the import began: its first pass saw nothing
    for at, kind, state, happened in actions:
        now[0] = at
        if kind == "pass":
            reconciler.run()
        else:
            store.apply(parse_event(canvas_event(state, event_time(happened), "500")))
    now[0] = max(t for _, t in steps) + 7201
    reconciler.run()  # a pass after everything: the API is the truth

    batch = store.items[(ROOT_ACCOUNT_UUID, "500")]
    assert batch.workflow_state is end
    alerts = [a for old, new in store.writes for a in alerts_for(old, new)]
    assert [a.message["workflow_state"] for a in alerts] == [end.value]
    assert WorkflowState(alerts[0].message["workflow_state"]) in IMPORT_ENDS
