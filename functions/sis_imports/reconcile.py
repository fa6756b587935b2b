"""What Canvas's SIS Import API says, turned into what the table owes (pure: no AWS, no HTTP).

Canvas never sends an event for `aborted` or `cleanup_batch`, lets imports sit in `initializing`,
and loses events. The API is the truth at the moment Canvas answered: its answer becomes an event of
the same core, named `sis_import_api`, timed when the answer came, with when we asked (`asked_at`):
Canvas looked at the import somewhere in between. The core (batch.sequence) places it after every
event it could have seen and never before one it saw, so a reading never moves a batch backwards and
an end that both a Live Event and a reading report is one end, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from .batch import Batch
from .events import Metadata, SisBatchBody, SisBatchEvent
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


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


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
        return cls(sis_id, WorkflowState(raw["workflow_state"]), read_at, _epoch(raw.get("created_at")),
                   _epoch(raw.get("started_at")), _epoch(raw.get("ended_at")), _epoch(raw.get("updated_at")),
                   read_at if asked_at is None else asked_at)

    @property
    def asked_time(self) -> str:
        """When we asked, in Canvas's event_time format."""
        return event_time(self.read_at if self.asked_at is None else self.asked_at)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.workflow_state)

    def in_state_since(self) -> float | None:
        """When the import entered its current (open) state, by Canvas's own times."""
        state = self.workflow_state
        if state in (WorkflowState.INITIALIZING, WorkflowState.CREATED):
            return self.created_at
        if state in (WorkflowState.IMPORTING, WorkflowState.CLEANUP_BATCH):
            return self.started_at or self.created_at
        return self.updated_at or self.created_at

    def as_event(self, root_account_uuid: str, account_id: str, hostname: str | None) -> SisBatchEvent:
        """The answer as an event of the core, timed when the answer came (`asked_time` goes with it)."""
        return SisBatchEvent(
            Metadata(event_name=API_EVENT_NAME, event_time=event_time(self.read_at),
                     root_account_uuid=root_account_uuid, hostname=hostname),
            SisBatchBody(sis_batch_id=self.sis_batch_id, account_id=account_id, workflow_state=self.workflow_state),
        )


@dataclass(frozen=True)
class Plan:
    """What one pass owes: states to write through the core, batches to mark stuck."""

    writes: tuple[CanvasImport, ...]
    stuck: tuple[tuple[str, WorkflowState], ...]


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
    - Stuck: open in Canvas for longer than its state's threshold, and not yet marked for that state.
    """
    open_by_id = {b.sis_batch_id: b for b in open_batches}
    writes, stuck = [], []
    for answer in answers:
        ours = open_by_id.get(answer.sis_batch_id)
        if ours is not None:
            if ours.workflow_state is not answer.workflow_state or ours.unbound:  # a reading binds it
                writes.append(answer)
        elif not answer.terminal or previous is None or previous.get(answer.sis_batch_id) is not answer.workflow_state:
            writes.append(answer)
        if answer.terminal or answer.workflow_state not in stuck_minutes:
            continue
        since = answer.in_state_since()
        already = ours is not None and ours.stuck_state == answer.workflow_state.value
        if since is not None and not already and now - since > stuck_minutes[answer.workflow_state] * 60:
            stuck.append((answer.sis_batch_id, answer.workflow_state))
    return Plan(tuple(writes), tuple(stuck))
