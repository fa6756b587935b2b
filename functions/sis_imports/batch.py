"""The stored state of one SIS batch and the pure rules that apply an event to it.

Order is `(event_time, lifecycle rank, tie-break)`, written as one sortable string, `order_key`,
so that DynamoDB can compare it in a condition expression. `event_time` always has the same width
(validated by `events`) and the rank and tie-break are two characters, so string order is the
order of events, and it is total: two different events never share a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Iterable

from .redact import redact_url
from .states import CREATION_STATES, WorkflowState, is_terminal, order_code, outcome_of
from .table import OPEN_SINCE

if TYPE_CHECKING:  # the notifier and the query read batches without loading the validator
    from .events import SisBatchEvent

DEFAULT_HISTORY_LIMIT = 50
# How far ahead of our clock an event_time may be (admission.py): clocks drift, an hour is far
# beyond drift and far short of harm.
FUTURE_TOLERANCE_SECONDS = 3600


def order_key(event_time: str, state: WorkflowState) -> str:
    return f"{event_time}#{order_code(state)}"


@dataclass(frozen=True, order=False)
class HistoryEntry:
    workflow_state: WorkflowState
    event_time: str
    event_name: str

    @property
    def order_key(self) -> str:
        return order_key(self.event_time, self.workflow_state)

    def sort_key(self) -> tuple[str, str, str]:
        return (self.order_key, self.workflow_state.value, self.event_name)

    def to_dict(self) -> dict[str, str]:
        return {"workflow_state": self.workflow_state.value, "event_time": self.event_time, "event_name": self.event_name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(WorkflowState(data["workflow_state"]), str(data["event_time"]), str(data["event_name"]))

    @classmethod
    def of(cls, event: SisBatchEvent) -> HistoryEntry:
        return cls(event.workflow_state, event.event_time, event.event_name)


class Decision(StrEnum):
    APPLY = "applied"  # the event is the newest: it sets the current state
    HISTORY_ONLY = "history"  # an older event arriving late: recorded, current state kept
    DUPLICATE = "duplicate"  # already known: nothing to write


@dataclass(frozen=True)
class Batch:
    root_account_uuid: str
    sis_batch_id: str
    account_id: str
    workflow_state: WorkflowState
    event_time: str
    first_event_at: str
    history: tuple[HistoryEntry, ...]
    version: int = 1
    root_account_id: str | None = None
    hostname: str | None = None
    created_by_user_id: str | None = None
    created_by_login: str | None = None
    url: str | None = None
    referrer: str | None = None
    expires_at: int | None = field(default=None, compare=False)
    # Recorded by the reconciler's first pass for an import that had ended before it: no alert. Any
    # later write clears it.
    baseline: bool = False
    # The state a stuck alert was raised for (once per batch and state); set by the reconciler.
    stuck_state: str | None = None

    @property
    def order_key(self) -> str:
        return order_key(self.event_time, self.workflow_state)

    @property
    def last_event_at(self) -> str:
        return self.event_time

    @property
    def terminal(self) -> bool:
        return is_terminal(self.workflow_state)

    @property
    def outcome(self) -> str | None:
        outcome = outcome_of(self.workflow_state)
        return outcome.value if outcome else None

    def to_item(self) -> dict[str, Any]:
        """The plain attribute map stored in DynamoDB (None values left out)."""
        item: dict[str, Any] = {
            "root_account_uuid": self.root_account_uuid,
            "sis_batch_id": self.sis_batch_id,
            "account_id": self.account_id,
            "workflow_state": self.workflow_state.value,
            "event_time": self.event_time,
            "order_key": self.order_key,
            "terminal": self.terminal,
            "outcome": self.outcome,
            "first_event_at": self.first_event_at,
            "last_event_at": self.last_event_at,
            "history": [entry.to_dict() for entry in self.history],
            "version": self.version,
            "root_account_id": self.root_account_id,
            "hostname": self.hostname,
            "created_by_user_id": self.created_by_user_id,
            "created_by_login": self.created_by_login,
            "url": self.url,
            "referrer": self.referrer,
            "expires_at": self.expires_at,
            # Present only while the batch is open: what makes the open-batches index sparse.
            OPEN_SINCE: None if self.terminal else self.first_event_at,
            "baseline": True if self.baseline else None,
            # Set once any end has entered the history: the notifier's stream filter lets only these
            # (and stuck batches) through, so a late end after a newer state still reaches it.
            "ended": True if any(is_terminal(e.workflow_state) for e in self.history) else None,
            "stuck_state": self.stuck_state,
        }
        return {name: value for name, value in item.items() if value is not None}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Batch:
        def opt(name: str) -> str | None:
            value = item.get(name)
            return None if value is None else str(value)

        return cls(
            root_account_uuid=str(item["root_account_uuid"]),
            sis_batch_id=str(item["sis_batch_id"]),
            account_id=str(item["account_id"]),
            workflow_state=WorkflowState(item["workflow_state"]),
            event_time=str(item["event_time"]),
            first_event_at=str(item["first_event_at"]),
            history=tuple(HistoryEntry.from_dict(entry) for entry in item.get("history", [])),
            version=int(item.get("version", 0)),
            root_account_id=opt("root_account_id"),
            hostname=opt("hostname"),
            created_by_user_id=opt("created_by_user_id"),
            created_by_login=opt("created_by_login"),
            url=opt("url"),
            referrer=opt("referrer"),
            expires_at=None if item.get("expires_at") is None else int(item["expires_at"]),
            baseline=bool(item.get("baseline", False)),
            stuck_state=opt("stuck_state"),
        )


def merge_history(history: Iterable[HistoryEntry], entry: HistoryEntry, limit: int) -> tuple[HistoryEntry, ...]:
    """History in time order, without duplicates, keeping the newest `limit` entries."""
    merged = sorted(set(history) | {entry}, key=HistoryEntry.sort_key)
    return tuple(merged[-limit:])


@dataclass(frozen=True)
class EventFacts:
    """What an event tells about its batch beyond the state: the attributes kept if first known."""

    account_id: str
    root_account_id: str | None
    hostname: str | None
    created_by_user_id: str | None
    created_by_login: str | None
    url: str | None
    referrer: str | None

    @classmethod
    def of(cls, event: SisBatchEvent) -> EventFacts:
        meta = event.metadata
        creating = event.workflow_state in CREATION_STATES
        return cls(
            account_id=event.body.account_id,
            root_account_id=meta.root_account_id,
            hostname=meta.hostname.lower() if meta.hostname else None,
            created_by_user_id=meta.user_id if creating else None,
            created_by_login=meta.user_login if creating else None,
            url=redact_url(meta.url) if creating else None,
            referrer=redact_url(meta.referrer) if creating else None,
        )

    def fill(self, batch: Batch) -> Batch:
        """The batch with each attribute it does not know yet taken from this event."""
        return replace(
            batch,
            root_account_id=batch.root_account_id or self.root_account_id,
            hostname=batch.hostname or self.hostname,
            created_by_user_id=batch.created_by_user_id or self.created_by_user_id,
            created_by_login=batch.created_by_login or self.created_by_login,
            url=batch.url or self.url,
            referrer=batch.referrer or self.referrer,
        )


def apply_event(
    batch: Batch | None, event: SisBatchEvent, history_limit: int = DEFAULT_HISTORY_LIMIT
) -> tuple[Decision, Batch]:
    """Decide what `event` does to `batch` and return the batch as it should be stored next.

    The returned batch has `version` incremented when something must be written; for a
    duplicate it is the batch unchanged.
    """
    entry = HistoryEntry.of(event)
    facts = EventFacts.of(event)
    if batch is None:
        new = Batch(
            root_account_uuid=event.root_account_uuid,
            sis_batch_id=event.sis_batch_id,
            account_id=facts.account_id,
            workflow_state=entry.workflow_state,
            event_time=entry.event_time,
            first_event_at=entry.event_time,
            history=(entry,),
            version=1,
        )
        return Decision.APPLY, facts.fill(new)
    if entry in batch.history:
        return Decision.DUPLICATE, batch
    history = merge_history(batch.history, entry, history_limit)
    first_event_at = min(batch.first_event_at, entry.event_time)
    batch = replace(batch, baseline=False)  # whatever this event writes is no longer the first pass's record
    if entry.order_key > batch.order_key:
        new = replace(
            batch,
            workflow_state=entry.workflow_state,
            event_time=entry.event_time,
            first_event_at=first_event_at,
            history=history,
            version=batch.version + 1,
        )
        return Decision.APPLY, facts.fill(new)
    new = facts.fill(replace(batch, history=history, first_event_at=first_event_at, version=batch.version + 1))
    if replace(new, version=batch.version) == batch:
        # Older than every entry the bounded history keeps, and nothing new learnt.
        return Decision.DUPLICATE, batch
    return Decision.HISTORY_ONLY, new
