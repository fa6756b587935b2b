"""What subscribers hear when a batch reaches an end state: built from the stream's images.

An alert carries no personal data: no login, IP, user agent or URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .batch import Batch
from .states import RESTORE_ENDS, WorkflowState

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


def alert_for(old: Batch | None, new: Batch) -> Alert | None:
    """The alert owed for the write old -> new: only when `workflow_state` changes into an end state."""
    if not new.terminal or (old is not None and old.workflow_state == new.workflow_state):
        return None
    restore = new.workflow_state in RESTORE_ENDS
    started_at = _started_at(new)
    where = f"on {new.hostname}" if new.hostname else f"in root account {new.root_account_id or new.root_account_uuid}"
    subject = f"SIS {'restore of import' if restore else 'import'} {new.sis_batch_id} {new.workflow_state.value} {where}"
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
        "canvas_url": (
            f"https://{new.hostname}/api/v1/accounts/{new.account_id}/sis_imports/{new.sis_batch_id}"
            if new.hostname
            else None
        ),
        "history": [entry.to_dict() for entry in new.history],
    }
    attributes = {
        "workflow_state": new.workflow_state.value,
        "outcome": new.outcome or "",
        "root_account_uuid": new.root_account_uuid,
        "account_id": new.account_id,
    }
    # SNS takes printable ASCII only in a Subject; every part above is validated, this is belt and braces.
    subject = "".join(c for c in subject if " " <= c <= "~")[:SUBJECT_LIMIT]
    return Alert(subject=subject, message=message, attributes=attributes)
