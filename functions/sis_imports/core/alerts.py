"""What subscribers hear, built from the stream's images of one write (old -> new).

The rule: every end of an import, and every end of a restore, that enters a batch's history is
alerted exactly once, whatever the arrival order: also one that arrives after the batch moved on
(`late: true`, with the batch's `current_state`). An end is one *occurrence*: a Live Event, joined by
the reconciler's readings of the same state that follow it in the history (batch.sequence puts a
reading that saw the event's state right after it, whichever arrived first). Two Live Events of the
same end state at different times are two occurrences (a second restore whose `restoring` was lost).
An occurrence of the new image that shares an entry with one of the old image was alerted then (a
reading that came first and the Live Event that joins it later are one end); the first pass's
records (`baseline`) alert nothing.

An alert carries no personal data: no login, IP, user agent or URL query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .batch import Batch, HistoryEntry
from .states import API_EVENT_NAME, RESTORE_ENDS, WorkflowState, is_terminal

SUBJECT_LIMIT = 99  # SNS allows 100 characters


@dataclass(frozen=True)
class Alert:
    subject: str
    message: dict[str, Any]
    attributes: dict[str, str]


@dataclass(frozen=True)
class Occurrence:
    """One end of an import or a restore: its entries in history order (the first is when it happened)."""

    entries: tuple[HistoryEntry, ...]

    @property
    def first(self) -> HistoryEntry:
        return self.entries[0]

    @property
    def state(self) -> WorkflowState:
        return self.first.workflow_state


def occurrences(history: tuple[HistoryEntry, ...]) -> list[Occurrence]:
    out: list[Occurrence] = []
    previous: HistoryEntry | None = None
    for entry in history:
        if is_terminal(entry.workflow_state):
            same = (previous is not None and out and out[-1].entries[-1] == previous
                    and previous.workflow_state is entry.workflow_state and entry.event_name == API_EVENT_NAME)
            out[-1:] = [Occurrence(out[-1].entries + (entry,))] if same else out[-1:] + [Occurrence((entry,))]
        previous = entry
    return out


def owed(old: Batch | None, new: Batch) -> list[Occurrence]:
    """The end occurrences this write brought in: those no occurrence of the old image accounts for.

    Each old occurrence accounts for one new occurrence at most: first the one that holds its Live
    Event (a Live Event always heads its occurrence, so that pairing is one to one), then one that
    holds one of its readings. So a reading that a second, earlier end of the same state draws to
    itself (two restores in one reading's window) cannot hide that end.
    """
    if new.baseline or new.unbound:
        return []
    fresh = occurrences(new.history)
    if old is None or old.unbound:  # nothing of an unbound batch was alerted
        return fresh
    unmatched = list(range(len(fresh)))
    leftovers = []
    for before in occurrences(old.history):
        head = before.first if not before.first.reading else None
        match = next((i for i in unmatched if head is not None and fresh[i].first == head), None)
        if match is None:
            leftovers.append(before)
        else:
            unmatched.remove(match)
    for before in leftovers:
        match = next((i for i in unmatched if set(before.entries) & set(fresh[i].entries)), None)
        if match is not None:
            unmatched.remove(match)
    return [fresh[i] for i in unmatched]


def alert_id(batch: Batch, kind: str, entry: HistoryEntry) -> str:
    """The same for the same end (or stuck state) on every retry and every re-publication."""
    key = f"{batch.root_account_uuid}/{batch.sis_batch_id}/{kind}/{entry.workflow_state.value}/{entry.event_time}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def detected_by(entry: HistoryEntry) -> str:
    """How a state was learnt: a Live Event, or the reconciler reading the SIS Import API."""
    return "sis_import_api" if entry.event_name == API_EVENT_NAME else "live_event"


def _seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return round((datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds(), 3)


def _where(batch: Batch) -> str:
    return f"on {batch.hostname}" if batch.hostname else f"in root account {batch.root_account_id or batch.root_account_uuid}"


def _printable(subject: str) -> str:
    # SNS takes printable ASCII only in a Subject; every part is validated, this is belt and braces.
    return "".join(c for c in subject if " " <= c <= "~")[:SUBJECT_LIMIT]


def canvas_url(batch: Batch) -> str | None:
    """The SIS Import API address of the import (needs a token with import_sis or manage_sis)."""
    if not batch.hostname:
        return None
    return f"https://{batch.hostname}/api/v1/accounts/{batch.account_id}/sis_imports/{batch.sis_batch_id}"


def canvas_page_url(batch: Batch) -> str | None:
    """The SIS import page of Canvas's UI for the account (what an admin opens)."""
    return f"https://{batch.hostname}/accounts/{batch.account_id}/sis_import" if batch.hostname else None


def _common(batch: Batch, state: WorkflowState, outcome: str, identity: str) -> dict[str, Any]:
    return {
        "alert_id": identity,
        "root_account_uuid": batch.root_account_uuid,
        "root_account_id": batch.root_account_id,
        "account_id": batch.account_id,
        "sis_batch_id": batch.sis_batch_id,
        "workflow_state": state.value,
        "outcome": outcome,
        "hostname": batch.hostname,
    }


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    """What subscribers' filter policies can match (SNS rejects empty values: left out)."""
    names = ("workflow_state", "outcome", "root_account_uuid", "account_id", "alert_id", "type")
    return {name: str(message[name]) for name in names if message.get(name)}


def end_alert(batch: Batch, occurrence: Occurrence, details: dict[str, Any] | None = None,
              details_unavailable: str | None = None) -> Alert:
    """The alert for one end occurrence of `batch` (the new image), with Canvas's details if read."""
    from .states import outcome_of

    first = occurrence.first
    index = batch.history.index(first)
    before = batch.history[:index]
    restore = first.workflow_state in RESTORE_ENDS
    if restore:  # a restore's start: its `restoring`, after the end before it; unknown if lost (or late)
        started_at = None
        for entry in reversed(before):
            if entry.workflow_state is WorkflowState.RESTORING:
                started_at = entry.event_time
                break
            if is_terminal(entry.workflow_state):
                break
    else:
        started_at = batch.first_event_at
    late = batch.history[-1] not in occurrence.entries  # the batch had moved on
    outcome = outcome_of(first.workflow_state)
    message: dict[str, Any] = {
        "type": "sis_restore_finished" if restore else "sis_import_finished",
        **_common(batch, first.workflow_state, outcome.value if outcome else "", alert_id(batch, "end", first)),
        "previous_state": before[-1].workflow_state.value if before else None,
        "late": late,
        "current_state": batch.workflow_state.value,
        "started_at": started_at,
        "finished_at": first.event_time,
        "duration_seconds": _seconds_between(started_at, first.event_time),
        "canvas_url": canvas_url(batch),
        "canvas_page_url": canvas_page_url(batch),
        "detected_by": detected_by(first),
        "details": details,
        "history": [entry.to_dict() for entry in batch.history],
    }
    if details is None and details_unavailable:
        message["details_unavailable"] = details_unavailable
    what = "restore of import" if restore else "import"
    subject = f"SIS {what} {batch.sis_batch_id} {first.workflow_state.value} {_where(batch)}{' (late)' * late}"
    return Alert(_printable(subject), message, _attributes(message))


def figures_recheck_owed(old: Batch | None, new: Batch) -> Occurrence | None:
    """The import end whose figures the reconciler asked to be read again (its `figures_rechecks` went up):
    the batch's last end of an import, not of a restore."""
    if new.figures_rechecks <= (old.figures_rechecks if old is not None else 0):
        return None
    ends = [o for o in occurrences(new.history) if o.first.workflow_state not in RESTORE_ENDS]
    return ends[-1] if ends else None


def follow_up(alert: Alert) -> Alert:
    """An end alert sent again because its figures, unread when it first went out, were read later and are
    unusual (core/unusual.py): `follow_up` true, and an `alert_id` of its own (the same on every repeat)."""
    alert_id = hashlib.sha256(f"{alert.message['alert_id']}/follow-up".encode()).hexdigest()[:32]
    message = {**alert.message, "alert_id": alert_id, "follow_up": True}
    return Alert(("Follow-up: " + alert.subject)[:SUBJECT_LIMIT], message, {**alert.attributes, "alert_id": alert_id})


def stuck_alert_for(old: Batch | None, new: Batch) -> Alert | None:
    """Owed once when the reconciler marks a batch stuck in its current state (`stuck_state`)."""
    if new.stuck_state is None or new.stuck_state != new.workflow_state.value:
        return None
    if old is not None and old.stuck_state == new.stuck_state:
        return None
    entry = next((e for e in new.history if e.workflow_state is new.workflow_state), None)
    since = entry.event_time if entry else new.event_time
    message: dict[str, Any] = {
        "type": "sis_import_stuck",
        **_common(new, new.workflow_state, "stuck", alert_id(new, "stuck", entry or new.history[-1])),
        "current_state": new.workflow_state.value,
        "in_state_since": since,
        "detected_by": "sis_import_api",
        "canvas_url": canvas_url(new),
        "canvas_page_url": canvas_page_url(new),
        "history": [e.to_dict() for e in new.history],
    }
    subject = f"SIS import {new.sis_batch_id} stuck in {new.workflow_state.value} {_where(new)}"
    return Alert(_printable(subject), message, _attributes(message))


def alerts_for(old: Batch | None, new: Batch) -> list[Alert]:
    """Every alert the write old -> new owes, without Canvas's details (the notifier adds those)."""
    alerts = [end_alert(new, occurrence) for occurrence in owed(old, new)]
    stuck = stuck_alert_for(old, new)
    return alerts + ([stuck] if stuck else [])
