"""What subscribers hear when a batch reaches an end state: built from the stream's images.

An alert carries no personal data: no login, IP, user agent or URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .batch import Batch
from .states import API_EVENT_NAME, RESTORE_ENDS, WorkflowState

SUBJECT_LIMIT = 99  # SNS allows 100 characters


@dataclass(frozen=True)
class Alert:
    subject: str
    message: dict[str, Any]
    attributes: dict[str, str]


def _seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return round((datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds(), 3)


def _started_at(batch: Batch) -> str | None:
    if batch.workflow_state not in RESTORE_ENDS:
        return batch.first_event_at
    # A restore's start is its latest `restoring` entry before the end; unknown if that was lost.
    restoring = [
        e.event_time
        for e in batch.history
        if e.workflow_state is WorkflowState.RESTORING and e.order_key < batch.order_key
    ]
    return restoring[-1] if restoring else None


def detected_by(batch: Batch) -> str:
    """How the current state was learnt: a Live Event, or the reconciler reading the SIS Import API."""
    entry = next((e for e in batch.history if e.order_key == batch.order_key), None)
    return "sis_import_api" if entry is not None and entry.event_name == API_EVENT_NAME else "live_event"


def _where(batch: Batch) -> str:
    return f"on {batch.hostname}" if batch.hostname else f"in root account {batch.root_account_id or batch.root_account_uuid}"


def _printable(subject: str) -> str:
    # SNS takes printable ASCII only in a Subject; every part is validated, this is belt and braces.
    return "".join(c for c in subject if " " <= c <= "~")[:SUBJECT_LIMIT]


def stuck_alert_for(old: Batch | None, new: Batch) -> Alert | None:
    """Owed once when the reconciler marks a batch stuck in its current state (`stuck_state`)."""
    if new.stuck_state is None or new.stuck_state != new.workflow_state.value:
        return None
    if old is not None and old.stuck_state == new.stuck_state:
        return None
    state = new.workflow_state.value
    since = next((e.event_time for e in new.history if e.workflow_state is new.workflow_state), new.event_time)
    message: dict[str, Any] = {
        "type": "sis_import_stuck",
        "root_account_uuid": new.root_account_uuid,
        "root_account_id": new.root_account_id,
        "account_id": new.account_id,
        "sis_batch_id": new.sis_batch_id,
        "workflow_state": state,
        "outcome": "stuck",
        "hostname": new.hostname,
        "in_state_since": since,
        "detected_by": "sis_import_api",
        "canvas_url": _canvas_url(new),
        "history": [entry.to_dict() for entry in new.history],
    }
    attributes = {"workflow_state": state, "outcome": "stuck", "root_account_uuid": new.root_account_uuid,
                  "account_id": new.account_id}
    return Alert(_printable(f"SIS import {new.sis_batch_id} stuck in {state} {_where(new)}"), message, attributes)


def _canvas_url(batch: Batch) -> str | None:
    if not batch.hostname:
        return None
    return f"https://{batch.hostname}/api/v1/accounts/{batch.account_id}/sis_imports/{batch.sis_batch_id}"


def alert_for(old: Batch | None, new: Batch) -> Alert | None:
    """The alert owed for the write old -> new: only when `workflow_state` changes into an end state.

    Not for the reconciler's first pass recording imports that had ended before it (`baseline`).
    """
    if not new.terminal or new.baseline or (old is not None and old.workflow_state == new.workflow_state):
        return None
    restore = new.workflow_state in RESTORE_ENDS
    started_at = _started_at(new)
    subject = f"SIS {'restore of import' if restore else 'import'} {new.sis_batch_id} {new.workflow_state.value} {_where(new)}"
    message: dict[str, Any] = {
        "type": "sis_restore_finished" if restore else "sis_import_finished",
        "root_account_uuid": new.root_account_uuid,
        "root_account_id": new.root_account_id,
        "account_id": new.account_id,
        "sis_batch_id": new.sis_batch_id,
        "workflow_state": new.workflow_state.value,
        "previous_state": old.workflow_state.value if old else None,
        "outcome": new.outcome,
        "hostname": new.hostname,
        "started_at": started_at,
        "finished_at": new.event_time,
        "duration_seconds": _seconds_between(started_at, new.event_time),
        "canvas_url": _canvas_url(new),
        "detected_by": detected_by(new),
        "history": [entry.to_dict() for entry in new.history],
    }
    attributes = {
        "workflow_state": new.workflow_state.value,
        "outcome": new.outcome or "",
        "root_account_uuid": new.root_account_uuid,
        "account_id": new.account_id,
    }
    return Alert(subject=_printable(subject), message=message, attributes=attributes)
