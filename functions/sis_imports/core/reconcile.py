"""What Canvas's SIS Import API says, turned into what the table owes (pure: no AWS, no HTTP).

Canvas never sends an event for `aborted` or `cleanup_batch`, lets imports sit in `initializing`,
and loses events. The API is the truth at the moment Canvas answered: its answer becomes an event of
the same core, named `sis_import_api`, timed when the answer came, with when we asked (`asked_at`):
Canvas looked at the import somewhere in between. The core (batch.sequence) places it after every
event it could have seen and never before one it saw, so a reading never moves a batch backwards and
an end that both a Live Event and a reading report is one end, whichever comes first.

Stuck means stuck: a state's age counts from when the import entered it, not from its creation or
start, and an upload waiting behind a running import of its root account is queued, not stuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from .batch import Batch
from .events import Metadata, SisBatchBody, SisBatchEvent
from .moments import epoch_seconds
from .states import API_EVENT_NAME, WorkflowState, is_terminal
DEFAULT_STUCK_MINUTES = {
    WorkflowState.INITIALIZING: 60,
    WorkflowState.CREATED: 60,
    WorkflowState.IMPORTING: 360,
    WorkflowState.CLEANUP_BATCH: 60,
    WorkflowState.RESTORING: 120,
}


def event_time(epoch: float) -> str:
    """Our clock's moment in Canvas's event_time format."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_stuck_minutes(raw: str) -> dict[WorkflowState, int]:
    """`initializing=60,importing=360,…` (minutes); states not named keep their default."""
    out = dict(DEFAULT_STUCK_MINUTES)
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, minutes = part.partition("=")
        state = WorkflowState(name.strip())
        if state not in DEFAULT_STUCK_MINUTES:
            raise ValueError(f"{state.value} is an end state: it cannot be stuck")
        out[state] = int(minutes)
    return out


@dataclass(frozen=True)
class CanvasImport:
    """One SisImport as the API answered it: the answer came at `read_at`, for a request sent at
    `asked_at` (epoch seconds, our clock)."""

    sis_batch_id: str
    workflow_state: WorkflowState
    read_at: float
    created_at: float | None
    started_at: float | None
    ended_at: float | None
    updated_at: float | None
    asked_at: float | None = None

    @classmethod
    def of(cls, raw: dict[str, Any], read_at: float, asked_at: float | None = None) -> CanvasImport:
        """Raises ValueError (or KeyError) for an answer without a usable id or state."""
        sis_id = str(raw["id"])
        if not sis_id.isdigit():
            raise ValueError("the import's id is not a Canvas id")
        created, started, ended, updated = (epoch_seconds(raw.get(name))
                                            for name in ("created_at", "started_at", "ended_at", "updated_at"))
        return cls(sis_id, WorkflowState(raw["workflow_state"]), read_at, created, started, ended, updated,
                   read_at if asked_at is None else asked_at)

    @property
    def asked_time(self) -> str:
        """When we asked, in Canvas's event_time format."""
        return event_time(self.read_at if self.asked_at is None else self.asked_at)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.workflow_state)

    def in_state_since(self) -> float | None:
        """When the import entered its current (open) state, by Canvas's own times.

        `cleanup_batch` is written (update_all) after the whole import has run, with updated_at and
        no Live Event: started_at is the import's start, so it would count a long import as stuck
        the moment cleanup begins. Without updated_at, the answer itself is all we know.
        """
        state = self.workflow_state
        if state in (WorkflowState.INITIALIZING, WorkflowState.CREATED):
            return self.created_at
        if state is WorkflowState.IMPORTING:
            return self.started_at or self.created_at
        if state is WorkflowState.CLEANUP_BATCH:
            return self.updated_at or self.read_at
        return self.updated_at or self.created_at

    def as_event(self, root_account_uuid: str, account_id: str, hostname: str | None) -> SisBatchEvent:
        """The answer as an event of the core, timed when the answer came (`asked_time` goes with it)."""
        return SisBatchEvent(
            Metadata(event_name=API_EVENT_NAME, event_time=event_time(self.read_at),
                     root_account_uuid=root_account_uuid, hostname=hostname),
            SisBatchBody(sis_batch_id=self.sis_batch_id, account_id=account_id, workflow_state=self.workflow_state),
        )


RUNNING = frozenset({WorkflowState.IMPORTING, WorkflowState.CLEANUP_BATCH})


@dataclass(frozen=True)
class Plan:
    """What one pass owes: states to write through the core, batches to mark stuck; `queued` are the
    `created` imports waiting behind a running import of their root account (not stuck)."""

    writes: tuple[CanvasImport, ...]
    stuck: tuple[tuple[str, WorkflowState], ...]
    queued: tuple[str, ...] = ()


@dataclass(frozen=True)
class Queue:
    """The `created` imports of one root account as Canvas's job sees them.

    Canvas runs one import per root account at a time (a singleton job) and starts the `created`
    ones in order of creation; an import left in `initializing` never runs and holds nobody up.
    """

    queued: frozenset[str]  # behind an older import that is importing or in cleanup_batch
    moved_at: dict[str, float]  # every other `created` one: when the last older import ended


def queue_of(answers: Iterable[CanvasImport]) -> Queue:
    """Which `created` imports are queued, and since when the others wait (one root account's answers)."""
    placed = sorted((a for a in answers if a.created_at is not None),
                    key=lambda a: (a.created_at, len(a.sis_batch_id), a.sis_batch_id))
    queued: set[str] = set()
    moved_at: dict[str, float] = {}
    running, last_end = False, None
    for answer in placed:
        state = answer.workflow_state
        if state is WorkflowState.CREATED:
            if running:
                queued.add(answer.sis_batch_id)
            elif last_end is not None:
                moved_at[answer.sis_batch_id] = last_end
        elif state in RUNNING:
            running = True
        elif answer.terminal:
            # An abort through the API leaves no ended_at; abort_all_pending leaves updated_at too.
            end = answer.ended_at or answer.updated_at
            if end is not None:
                last_end = end if last_end is None else max(last_end, end)
    return Queue(frozenset(queued), moved_at)


def entered_at(answer: CanvasImport, ours: Batch | None) -> float | None:
    """When the import entered the state Canvas shows now.

    When our table holds that state too, its first entry of it (the history's, or the projection's
    current event_time): a Live Event is Canvas's own moment, a reading the moment we saw it (never
    before Canvas entered it). Otherwise Canvas's own times (CanvasImport.in_state_since).
    """
    if ours is not None and ours.workflow_state is answer.workflow_state:
        first = ours.event_time
        for entry in reversed(ours.history):
            if entry.workflow_state is not answer.workflow_state:
                break
            first = entry.event_time
        moment = epoch_seconds(first)
        if moment is not None:
            return moment
    return answer.in_state_since()


def to_fetch(open_batches: Iterable[Batch], listed: Iterable[CanvasImport]) -> list[str]:
    """The open batches the window's listing did not cover (created before it): fetched by id."""
    seen = {c.sis_batch_id for c in listed}
    return sorted((b.sis_batch_id for b in open_batches if b.sis_batch_id not in seen), key=lambda i: (len(i), i))


def plan(
    answers: Iterable[CanvasImport],
    open_batches: Iterable[Batch],
    *,
    previous: dict[str, WorkflowState] | None,
    now: float,
    stuck_minutes: dict[WorkflowState, int],
) -> Plan:
    """Which of Canvas's answers need a write, and which batches are stuck.

    - An import open in our table whose state differs: written.
    - An import we do not hold open (never heard of it, or we hold it ended) is written unless we
      can tell nothing changed: Canvas shows it ended in the state the previous pass saw (and
      wrote) too. `previous` is that pass's answers (id -> state), kept in memory: no clock of
      Canvas's is compared with ours. The store's write is conditional on the state differing, so
      a needless candidate costs one failed condition, never a wrong change. Without a previous
      pass (a cold start), every answer is a candidate.
    - Stuck: in its current state for longer than that state's threshold, counted from when it
      entered it (`entered_at`), and not yet marked for that state. A `created` import queued behind
      a running one (`queue_of`) is not stuck; another `created` one waits from its creation or
      from when the last import ahead of it ended, whichever is later.
    """
    answers = list(answers)
    open_by_id = {b.sis_batch_id: b for b in open_batches}
    queue = queue_of(answers)
    writes, stuck = [], []
    for answer in answers:
        ours = open_by_id.get(answer.sis_batch_id)
        if ours is not None:
            if ours.workflow_state is not answer.workflow_state or ours.unbound:  # a reading binds it
                writes.append(answer)
        elif not answer.terminal or previous is None or previous.get(answer.sis_batch_id) is not answer.workflow_state:
            writes.append(answer)
        if answer.terminal or answer.workflow_state not in stuck_minutes or answer.sis_batch_id in queue.queued:
            continue
        since = entered_at(answer, ours)
        moved = queue.moved_at.get(answer.sis_batch_id)
        if since is not None and moved is not None:
            since = max(since, moved)
        already = ours is not None and ours.stuck_state == answer.workflow_state.value
        if since is not None and not already and now - since > stuck_minutes[answer.workflow_state] * 60:
            stuck.append((answer.sis_batch_id, answer.workflow_state))
    return Plan(tuple(writes), tuple(stuck), tuple(sorted(queue.queued, key=lambda i: (len(i), i))))
