"""Property: Live Events (some lost, duplicated, late) and reconcile passes interleave at random; the
batch always ends in Canvas's final state, with exactly one alert for its end. The oracle is the
promise (Canvas's last state; one alert per end), not a re-run of the rules.

Property: a root account's uploads run as Canvas's job runs them (one at a time, in order, some
stranded in initializing, the job perhaps hung); a pass reports stuck exactly the imports that have
sat in their state past its limit, by the timeline's own moments, never one queued behind a running
import. Then examples of each rule, on the pure plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from sis_imports.core.alerts import alerts_for
from sis_imports.core.events import parse_event
from sis_imports.core.batch import Batch, HistoryEntry
from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES, CanvasImport, entered_at, event_time, plan
from sis_imports.usecases.reconcile_pass import Instance, Reconciler
from sis_imports.core.states import IMPORT_ENDS, WorkflowState
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


# -- stuck means stuck --------------------------------------------------------------------------

MINUTE, HOUR = 60, 3600
LIMIT = {state: minutes * MINUTE for state, minutes in DEFAULT_STUCK_MINUTES.items()}


@st.composite
def accounts(draw):
    """One root account's uploads as Canvas's job runs them: one at a time, in order of creation, each
    importing then (batch mode) cleaning up; some left in initializing for good (they never run); the
    job may hang at some moment (no import starts after it). Observed by one pass at `now`."""
    created, uploads = START, []
    for _ in range(draw(st.integers(1, 7))):
        created += draw(st.integers(0, 3 * HOUR))
        uploads.append({"created": created, "stranded": draw(st.integers(0, 6)) == 0,
                        "importing": draw(st.integers(MINUTE, 8 * HOUR)),
                        "cleanup": draw(st.sampled_from([0, 0, draw(st.integers(MINUTE, 2 * HOUR))]))})
    hang = START + draw(st.integers(0, 24 * HOUR)) if draw(st.booleans()) else None
    ready = START
    for upload in uploads:
        if upload["stranded"]:
            continue
        start = max(upload["created"], ready)
        if hang is not None and start > hang:
            break  # the job hung: this upload and every later one wait in created for good
        upload["start"] = start
        upload["end"] = ready = start + upload["importing"] + upload["cleanup"]
    ends = [u["end"] for u in uploads if "end" in u]
    if ends and draw(st.booleans()):  # just after an end: where a queue moves on, or hangs
        now = draw(st.sampled_from(ends)) + draw(st.integers(0, 2 * HOUR)) + 30
    else:
        now = START + draw(st.integers(0, 30 * HOUR)) + 30  # half a minute off every drawn moment
    return [u for u in uploads if u["created"] <= now], now


def answer_at(n: int, upload: dict, now: float, rng_updated: float) -> CanvasImport:
    """What the SIS Import API answers for `upload` at `now`."""
    created, start, end = upload["created"], upload.get("start"), upload.get("end")
    cleanup_at = None if start is None else start + upload["importing"]
    if upload["stranded"]:
        state, updated = WorkflowState.INITIALIZING, created
    elif start is None or now < start:
        state, updated, start = WorkflowState.CREATED, created, None
    elif now < cleanup_at:  # progress may touch updated_at: nothing may count on it here
        state, updated = WorkflowState.IMPORTING, start + (now - start) * rng_updated
    elif now < end:
        state, updated = WorkflowState.CLEANUP_BATCH, cleanup_at
    else:
        state, updated = WorkflowState.IMPORTED, end
    return CanvasImport(str(1000 + n), state, now, created, start, end if state is WorkflowState.IMPORTED else None,
                        updated, now)


def truly_stuck(uploads: list[dict], now: float) -> set[str]:
    """The promise: a state is stuck when the batch has been in it longer than its limit, counted from
    when it entered it; an upload waiting behind a running import is queued, not stuck, and otherwise
    waits from when the last import ahead of it ended (or its creation, if later)."""
    out = set()
    running = any(u.get("start") is not None and u["start"] <= now < u["end"] for u in uploads)
    ended = [u["end"] for u in uploads if u.get("end") is not None and u["end"] <= now]
    for n, upload in enumerate(uploads):
        start = upload.get("start")
        if upload["stranded"]:
            state, since = WorkflowState.INITIALIZING, upload["created"]
        elif start is None or now < start:
            if running:
                continue
            state, since = WorkflowState.CREATED, max([upload["created"], *ended])
        elif now < start + upload["importing"]:
            state, since = WorkflowState.IMPORTING, start
        elif now < upload["end"]:
            state, since = WorkflowState.CLEANUP_BATCH, start + upload["importing"]
        else:
            continue
        if now - since > LIMIT[state]:
            out.add(str(1000 + n))
    return out


@settings(max_examples=400, deadline=None)
@given(accounts(), st.floats(0, 1))
def test_only_imports_truly_stuck_are_reported(case, updated_share):
    uploads, now = case
    answers = [answer_at(n, u, now, updated_share) for n, u in enumerate(uploads)]
    owed = plan(answers, [], previous=None, now=now, stuck_minutes=dict(DEFAULT_STUCK_MINUTES))
    assert {sis_id for sis_id, _ in owed.stuck} == truly_stuck(uploads, now)
    states = {a.sis_batch_id: a.workflow_state for a in answers}
    assert all(states[sis_id] is state for sis_id, state in owed.stuck)
    running = any(a.workflow_state in (WorkflowState.IMPORTING, WorkflowState.CLEANUP_BATCH) for a in answers)
    assert set(owed.queued) == ({i for i, s in states.items() if s is WorkflowState.CREATED} if running else set())


BASE = float(int(START))  # whole seconds: the table keeps milliseconds


def canvas(sis_id: str, state: WorkflowState, now: float, *, created: float, started: float | None = None,
           ended: float | None = None, updated: float | None = None) -> CanvasImport:
    return CanvasImport(sis_id, state, now, created, started, ended, updated if updated is not None else created, now)


def ours(sis_id: str, state: WorkflowState, entered: float, *, history: tuple = (), stuck: str | None = None) -> Batch:
    return Batch(ROOT_ACCOUNT_UUID, sis_id, "1", state, event_time(entered), event_time(BASE), history,
                 stuck_state=stuck)


def stuck_ids(answers, open_batches=(), now=None) -> list[str]:
    now = now if now is not None else max(a.read_at for a in answers)
    owed = plan(answers, list(open_batches), previous=None, now=now, stuck_minutes=dict(DEFAULT_STUCK_MINUTES))
    return [sis_id for sis_id, _ in owed.stuck]


def test_a_two_hour_import_reaching_cleanup_batch_is_not_stuck():
    now = BASE + 3 * HOUR
    long = canvas("7", WorkflowState.CLEANUP_BATCH, now, created=BASE, started=now - 2 * HOUR - 5 * MINUTE,
                  updated=now - 2 * MINUTE)
    assert stuck_ids([long]) == []  # before: "stuck in cleanup_batch" from started_at, 2 h ago
    assert stuck_ids([long], [ours("7", WorkflowState.IMPORTING, now - 2 * HOUR)]) == []  # our table: importing
    later = now + HOUR
    moved = replace(long, read_at=later)
    assert stuck_ids([moved], [ours("7", WorkflowState.CLEANUP_BATCH, now)], now=later - 30) == []
    assert stuck_ids([moved], [ours("7", WorkflowState.CLEANUP_BATCH, now)], now=later + 30) == ["7"]  # since read


def test_three_imports_queued_behind_a_long_one_are_not_stuck_until_the_queue_hangs():
    now = BASE + 5 * HOUR
    long = canvas("10", WorkflowState.IMPORTING, now, created=BASE, started=BASE + MINUTE)
    queued = [canvas(str(11 + n), WorkflowState.CREATED, now, created=BASE + (30 + n) * MINUTE) for n in range(3)]
    owed = plan([long, *queued], [], previous=None, now=now, stuck_minutes=dict(DEFAULT_STUCK_MINUTES))
    assert (owed.stuck, owed.queued) == ((), ("11", "12", "13"))

    ended = now + HOUR  # the long one ended; its successor never started: the queue hung
    done = canvas("10", WorkflowState.IMPORTED, ended, created=BASE, started=BASE + MINUTE, ended=now, updated=now)
    waiting = [replace(q, read_at=ended) for q in queued]
    assert stuck_ids([done, *waiting], now=now + 59 * MINUTE) == []  # waits from when the one ahead ended
    assert stuck_ids([done, *waiting], now=now + 61 * MINUTE) == ["11", "12", "13"]
    marked = [ours(q.sis_batch_id, WorkflowState.CREATED, q.created_at, stuck="created") for q in queued]
    assert stuck_ids([done, *waiting], marked, now=now + 3 * HOUR) == []  # once per batch and state


def test_a_stranded_import_alerts_once_and_holds_nobody_up():
    now = BASE + 2 * HOUR
    stranded = canvas("20", WorkflowState.INITIALIZING, now, created=BASE)
    later = canvas("21", WorkflowState.CREATED, now, created=BASE + 30 * MINUTE)
    owed = plan([stranded, later], [], previous=None, now=now, stuck_minutes=dict(DEFAULT_STUCK_MINUTES))
    assert [s for s, _ in owed.stuck] == ["20", "21"] and owed.queued == ()  # initializing blocks no queue
    marked = ours("20", WorkflowState.INITIALIZING, BASE, stuck="initializing")
    assert stuck_ids([stranded], [marked]) == []


def test_the_tables_first_entry_of_the_state_is_when_it_was_entered():
    now = BASE + 5 * HOUR
    answer = canvas("30", WorkflowState.RESTORING, now, created=BASE, updated=BASE + HOUR)
    # Canvas's updated_at says 4 h (over the 2 h limit); our history: restoring since 1 h ago.
    recent = ours("30", WorkflowState.RESTORING, now - HOUR, history=(
        HistoryEntry(WorkflowState.IMPORTED, event_time(BASE + 10 * MINUTE), "sis_batch_updated"),
        HistoryEntry(WorkflowState.RESTORING, event_time(now - HOUR), "sis_batch_updated"),
        HistoryEntry(WorkflowState.RESTORING, event_time(now - 10 * MINUTE), "sis_batch_updated")))
    assert entered_at(answer, recent) == now - HOUR and stuck_ids([answer], [recent]) == []
    assert entered_at(answer, None) == BASE + HOUR and stuck_ids([answer]) == ["30"]
    projected = ours("30", WorkflowState.RESTORING, now - 3 * HOUR)  # the index holds no history
    assert entered_at(answer, projected) == now - 3 * HOUR and stuck_ids([answer], [projected]) == ["30"]
    other = ours("30", WorkflowState.IMPORTED, now - 5 * MINUTE)  # our table lags: Canvas's times decide
    assert entered_at(answer, other) == BASE + HOUR


def test_cleanup_batch_without_updated_at_counts_from_the_answer_never_from_the_start():
    now = BASE + 3 * HOUR
    bare = CanvasImport("40", WorkflowState.CLEANUP_BATCH, now, BASE, BASE + MINUTE, None, None, now)
    assert bare.in_state_since() == now and stuck_ids([bare]) == []
