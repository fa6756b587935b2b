"""The 12 SIS batch workflow states, their lifecycle order and outcomes (docs/canvas.md)."""

from __future__ import annotations

from enum import StrEnum


class WorkflowState(StrEnum):
    INITIALIZING = "initializing"
    CREATED = "created"
    IMPORTING = "importing"
    CLEANUP_BATCH = "cleanup_batch"
    IMPORTED = "imported"
    IMPORTED_WITH_MESSAGES = "imported_with_messages"
    FAILED = "failed"
    FAILED_WITH_MESSAGES = "failed_with_messages"
    ABORTED = "aborted"
    RESTORING = "restoring"
    PARTIALLY_RESTORED = "partially_restored"
    RESTORED = "restored"


class Outcome(StrEnum):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


S = WorkflowState

# Ties on event_time are broken by lifecycle rank: `created` often shares its millisecond
# with `initializing`. States of one rank are alternative ends of the same stage.
RANK: dict[WorkflowState, int] = {
    S.INITIALIZING: 0,
    S.CREATED: 1,
    S.IMPORTING: 2,
    S.CLEANUP_BATCH: 3,
    S.IMPORTED: 4,
    S.IMPORTED_WITH_MESSAGES: 4,
    S.FAILED: 4,
    S.FAILED_WITH_MESSAGES: 4,
    S.ABORTED: 4,
    S.RESTORING: 5,
    S.PARTIALLY_RESTORED: 6,
    S.RESTORED: 6,
}

# A fixed tie-break among states of one rank, so that the order of events is total and the final
# state never depends on which of two events with the same event_time and rank arrived last. The
# graver end wins: a batch never shows success over a failure reported for the same millisecond.
TIE_BREAK: dict[WorkflowState, str] = {
    S.IMPORTED: "a",
    S.IMPORTED_WITH_MESSAGES: "b",
    S.FAILED: "c",
    S.FAILED_WITH_MESSAGES: "d",
    S.ABORTED: "e",
    S.RESTORED: "a",
    S.PARTIALLY_RESTORED: "b",
}


def order_code(state: WorkflowState) -> str:
    """Two sortable characters: lifecycle rank, then the tie-break within the rank."""
    return f"{RANK[state]}{TIE_BREAK.get(state, 'a')}"


IMPORT_ENDS = frozenset({S.IMPORTED, S.IMPORTED_WITH_MESSAGES, S.FAILED, S.FAILED_WITH_MESSAGES, S.ABORTED})
RESTORE_ENDS = frozenset({S.PARTIALLY_RESTORED, S.RESTORED})
TERMINAL = IMPORT_ENDS | RESTORE_ENDS

OUTCOME: dict[WorkflowState, Outcome] = {
    S.IMPORTED: Outcome.SUCCESS,
    S.RESTORED: Outcome.SUCCESS,
    S.IMPORTED_WITH_MESSAGES: Outcome.WARNING,
    S.PARTIALLY_RESTORED: Outcome.WARNING,
    S.FAILED: Outcome.FAILURE,
    S.FAILED_WITH_MESSAGES: Outcome.FAILURE,
    S.ABORTED: Outcome.FAILURE,
}

# The request that creates an import emits both of these; later states come from jobs or
# other users' requests (a restore), so only these name who created the import.
CREATION_STATES = frozenset({S.INITIALIZING, S.CREATED})


# The event_name the reconciler records for a state it read from Canvas's SIS Import API.
API_EVENT_NAME = "sis_import_api"


def is_terminal(state: WorkflowState) -> bool:
    return state in TERMINAL


def outcome_of(state: WorkflowState) -> Outcome | None:
    return OUTCOME.get(state)
