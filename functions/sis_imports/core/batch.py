"""The stored state of one SIS batch and the pure rules that apply an event to it.

Live Events are ordered by `(event_time, lifecycle rank, tie-break)`, written as one sortable
string, `order_key`. `event_time` always has the same width (validated by `events`) and the rank
and tie-break are two characters, so string order is the order of events, and it is total.

A reading of Canvas's SIS Import API (the reconciler's) is not a point in time: Canvas answered at
some moment between our request (`asked_at`) and its answer (`event_time`), by a clock that may
differ from Canvas's by up to CLOCK_TOLERANCE_SECONDS. So a reading is placed among the Live Events
by `sequence`: after every event before its window, after an event of its own state inside the
window (it saw that state: the same end, not a new one), else after the window's events of a lower
or equal lifecycle rank and before those of a higher one (it cannot have seen them). The place is a
function of the set of entries, never of their arrival order.

The stored `order_key` is a fence: no entry, nor any reading's window, reaches past it. A Live Event
whose key is beyond it is the newest for certain, and DynamoDB's condition can say so in one write.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Iterable

from .redact import redact_url
from .states import API_EVENT_NAME, CREATION_STATES, RANK, WorkflowState, is_terminal, order_code, outcome_of
from .table import OPEN_SINCE

if TYPE_CHECKING:  # the notifier and the query read batches without loading the validator
    from .events import SisBatchEvent

DEFAULT_HISTORY_LIMIT = 50
# How far ahead of our clock an event_time may be (admission.py): clocks drift, an hour is far
# beyond drift and far short of harm.
FUTURE_TOLERANCE_SECONDS = 3600
# How far Canvas's clock (Live Events' times) and ours (readings' times) may differ. NTP keeps both
# within milliseconds; a reading's window is widened by this much on each side.
CLOCK_TOLERANCE_SECONDS = 5
# Ends kept in the history come what may (see `trim`), up to this many: a batch is imported once and
# restored a few times; 200 ends are ~20 KB of the 400 KB an item may hold.
MAX_ENDS_KEPT = 200
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def order_key(event_time: str, state: WorkflowState) -> str:
    return f"{event_time}#{order_code(state)}"


def shift_time(event_time: str, seconds: float) -> str:
    """An event_time moved by `seconds`, in the same fixed-width format."""
    moment = datetime.strptime(event_time, _TIME_FORMAT) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, order=False)
class HistoryEntry:
    workflow_state: WorkflowState
    event_time: str
    event_name: str
    # Readings only: when we asked Canvas (our clock); `event_time` is when Canvas's answer came.
    asked_at: str | None = None

    @property
    def order_key(self) -> str:
        return order_key(self.event_time, self.workflow_state)

    @property
    def reading(self) -> bool:
        return self.event_name == API_EVENT_NAME

    def window(self) -> tuple[str, str]:
        """A reading's (exclusive start, inclusive end): when Canvas may have looked, give or take the clocks."""
        return (shift_time(self.asked_at or self.event_time, -CLOCK_TOLERANCE_SECONDS),
                shift_time(self.event_time, CLOCK_TOLERANCE_SECONDS))

    def fence_key(self) -> str:
        """Past every moment this entry may stand for."""
        return order_key(self.window()[1], self.workflow_state) if self.reading else self.order_key

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.order_key, self.workflow_state.value, self.event_name, self.asked_at or "")

    def to_dict(self) -> dict[str, str]:
        out = {"workflow_state": self.workflow_state.value, "event_time": self.event_time, "event_name": self.event_name}
        if self.asked_at is not None:
            out["asked_at"] = self.asked_at
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        asked = data.get("asked_at")
        return cls(WorkflowState(data["workflow_state"]), str(data["event_time"]), str(data["event_name"]),
                   None if asked is None else str(asked))

    @classmethod
    def of(cls, event: SisBatchEvent, asked_at: str | None = None) -> HistoryEntry:
        return cls(event.workflow_state, event.event_time, event.event_name,
                   asked_at if event.event_name == API_EVENT_NAME else None)


def sequence(entries: Iterable[HistoryEntry]) -> tuple[HistoryEntry, ...]:
    """Every entry in the order of the batch's life (module docstring): a function of the set alone.

    Live Events in their order; then each reading, oldest answer first, goes right after the earliest
    Live Event of its own state inside its window (it saw that state), else after the last entry that
    surely came before it or that its window overlaps with a lifecycle rank no higher than its own.
    Between two readings there is one clock, ours, so no tolerance: one surely came first when its
    answer came before the other was asked for.
    """
    out = sorted({e for e in entries if not e.reading}, key=HistoryEntry.sort_key)
    for reading in sorted({e for e in entries if e.reading}, key=HistoryEntry.sort_key):
        start, end = reading.window()
        asked, rank = reading.asked_at or reading.event_time, RANK[reading.workflow_state]
        same = next((i for i, e in enumerate(out) if not e.reading and e.workflow_state is reading.workflow_state
                     and start < e.event_time <= end), None)
        if same is not None:  # it saw that state: joins its event, after the readings that already did
            slot = same + 1
            while slot < len(out) and out[slot].reading and out[slot].workflow_state is reading.workflow_state:
                slot += 1
        else:
            slot = 0
            for i, e in enumerate(out):
                if e.reading:
                    before = e.event_time <= asked or RANK[e.workflow_state] <= rank
                else:
                    before = e.event_time <= start or (e.event_time <= end and RANK[e.workflow_state] <= rank)
                if before:
                    slot = i + 1
        out.insert(slot, reading)
    return tuple(out)


def trim(history: tuple[HistoryEntry, ...], limit: int) -> tuple[HistoryEntry, ...]:
    """At most `limit` entries where that can be, dropping the oldest that no alert depends on.

    Kept whatever the limit: every end (so "seen before" stays exact: a late end is alerted however
    many entries came after it; up to MAX_ENDS_KEPT), the entry before each end (its previous state
    and a restore's start) and the current state.
    """
    if len(history) <= limit:
        return history
    ends = [i for i, e in enumerate(history) if is_terminal(e.workflow_state)]
    keep = set(ends[-MAX_ENDS_KEPT:]) | {i - 1 for i in ends[-MAX_ENDS_KEPT:] if i > 0} | {len(history) - 1}
    excess = len(history) - limit
    dropped = set()
    for i in range(len(history)):
        if len(dropped) == excess:
            break
        if i not in keep:
            dropped.add(i)
    return tuple(e for i, e in enumerate(history) if i not in dropped)


class Decision(StrEnum):
    APPLY = "applied"  # the event is the newest: it sets the current state
    HISTORY_ONLY = "history"  # an older event arriving late: recorded, current state kept
    DUPLICATE = "duplicate"  # already known: nothing to write
    FOREIGN = "other_instance"  # a host-less event that cannot be this batch's (see `foreign`): dropped


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
    # With canvas_hostnames set (`require_host`): only host-less events known so far, no instance has
    # claimed the batch (its creation event, or a reading of an allowed instance): nothing alerts yet.
    unbound: bool = False
    # When another (not allowed) host created an import of this id: from then on, a host-less event may
    # be that import's, so none counts for this batch (the reconciler reads its truth).
    foreign_claims: tuple[str, ...] = ()
    unusual: tuple[str, ...] = ()  # the figures its end was unusual in (core/unusual.py); set by the notifier
    figures_rechecks: int = 0  # the reconciler's requests to read its end's figures again (alerts.figures_recheck_owed)

    @property
    def order_key(self) -> str:
        """The fence (module docstring): a Live Event with a greater key is the newest for certain."""
        return max((e.fence_key() for e in self.history), default=order_key(self.event_time, self.workflow_state))

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
            # Present only while the batch is open (or no instance has bound it yet: the reconciler reads
            # it, and its reading binds it): what makes the open-batches index sparse.
            OPEN_SINCE: None if self.terminal and not self.unbound else self.first_event_at,
            "baseline": True if self.baseline else None,
            # Set once any end has entered the history: the notifier's stream filter lets only these
            # (and stuck batches) through, so a late end after a newer state still reaches it.
            "ended": True if any(is_terminal(e.workflow_state) for e in self.history) else None,
            "stuck_state": self.stuck_state,
            "unbound": True if self.unbound else None,
            "foreign_claims": list(self.foreign_claims) or None,
            "unusual": list(self.unusual) or None,
            "figures_rechecks": self.figures_rechecks or None,
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
            unbound=bool(item.get("unbound", False)),
            foreign_claims=tuple(str(t) for t in item.get("foreign_claims") or ()),
            unusual=tuple(str(f) for f in item.get("unusual") or ()),
            figures_rechecks=int(item.get("figures_rechecks") or 0),
        )


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


def created_at(history: Iterable[HistoryEntry]) -> str | None:
    """When the import was created, by its creation events (the only ones that name a host)."""
    return min((e.event_time for e in history if e.workflow_state in CREATION_STATES and not e.reading), default=None)


def foreign(history: tuple[HistoryEntry, ...], claims: tuple[str, ...], entry: HistoryEntry) -> bool:
    """Whether a host-less Live Event cannot be, or may not be, this bound batch's.

    Canvas's job events name no host, and a beta or test instance shares production's root account and
    id sequence: such an event is this batch's only if it comes after this import's creation, after no
    other host's creation of the same id since (it may be that one's), and fits this import's life (an
    import runs and ends once: a state before the end, timed after an end, belongs to another import).
    """
    created = created_at(history)
    if created is not None and entry.event_time < created:
        return True
    if any((created is None or claim >= created) and claim <= entry.event_time for claim in claims):
        return True
    if RANK[entry.workflow_state] <= RANK[WorkflowState.IMPORTED]:
        return any(RANK[e.workflow_state] == RANK[WorkflowState.IMPORTED] and e.event_time < entry.event_time
                   for e in history)
    return False


def apply_event(
    batch: Batch | None, event: SisBatchEvent, history_limit: int = DEFAULT_HISTORY_LIMIT,
    asked_at: str | None = None, require_host: bool = False,
) -> tuple[Decision, Batch]:
    """Decide what `event` does to `batch` and return the batch as it should be stored next.

    `asked_at` is, for a reading of the SIS Import API, when we asked (the event's time is when
    Canvas answered). With `require_host` (canvas_hostnames set), a batch belongs to the allowed host
    that its creation event or a reading names: host-less events of a batch no host has claimed wait
    (`unbound`, no alert); those of a bound batch count only if `foreign` says they can be its own.
    The returned batch has `version` incremented when something must be written; for a duplicate it
    is the batch unchanged.
    """
    entry = HistoryEntry.of(event, asked_at)
    facts = EventFacts.of(event)
    names_instance = event.metadata.hostname is not None or entry.reading
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
            unbound=require_host and not names_instance,
        )
        return Decision.APPLY, facts.fill(new)
    if entry in batch.history:
        return Decision.DUPLICATE, batch
    if require_host and not names_instance and not batch.unbound and foreign(batch.history, batch.foreign_claims, entry):
        return Decision.FOREIGN, batch
    entries = set(batch.history) | {entry}
    unbound = batch.unbound
    if unbound and names_instance:
        # Bound now: the host-less events it held count if they can be this import's.
        bound = {e for e in entries if e.reading or e.workflow_state in CREATION_STATES}
        entries = bound | {e for e in entries - bound if not foreign(tuple(bound), batch.foreign_claims, e)}
        unbound = False
    history = trim(sequence(entries), history_limit)
    if entry not in history:
        # Older than every entry the bounded history keeps, and no end: nothing to learn from it.
        return Decision.DUPLICATE, batch
    current = history[-1]
    new = facts.fill(replace(
        batch,
        workflow_state=current.workflow_state,
        event_time=current.event_time,
        first_event_at=min(e.event_time for e in history) if unbound != batch.unbound
        else min(batch.first_event_at, entry.event_time),
        history=history,
        version=batch.version + 1,
        baseline=False,  # whatever this event writes is no longer the first pass's record
        unbound=unbound,
    ))
    return (Decision.APPLY if current == entry else Decision.HISTORY_ONLY), new
