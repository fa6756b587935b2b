"""The pure core: ordering, decisions, history and outcomes (no AWS, microseconds each)."""

import pytest

from sis_imports.core.batch import Batch, Decision, HistoryEntry, apply_event, sequence, trim
from sis_imports.core.events import parse_event
from sis_imports.core.states import OUTCOME, RANK, TERMINAL, Outcome, WorkflowState, outcome_of
from tests.factories import ACCESS_TOKEN, T0, at, canvas_event, failed_import



def fold(raws, limit=50):
    batch, decisions = None, []
    for raw in raws:
        decision, new = apply_event(batch, parse_event(raw), limit)
        decisions.append(decision)
        if decision is not Decision.DUPLICATE:
            assert new.version == (batch.version if batch else 0) + 1
        batch = new
    return batch, decisions


def test_states_ranks_and_outcomes_are_as_canvas_defines_them():
    assert len(WorkflowState) == 12
    assert RANK[WorkflowState.INITIALIZING] < RANK[WorkflowState.CREATED] < RANK[WorkflowState.IMPORTING]
    assert RANK[WorkflowState.IMPORTING] < RANK[WorkflowState.CLEANUP_BATCH] < RANK[WorkflowState.FAILED]
    assert RANK[WorkflowState.ABORTED] < RANK[WorkflowState.RESTORING] < RANK[WorkflowState.RESTORED]
    assert set(OUTCOME) == TERMINAL and len(TERMINAL) == 7
    assert outcome_of(WorkflowState.PARTIALLY_RESTORED) is Outcome.WARNING
    assert outcome_of(WorkflowState.ABORTED) is Outcome.FAILURE
    assert outcome_of(WorkflowState.RESTORING) is None


def test_in_order_import_ends_failed_with_history_in_time_order():
    batch, decisions = fold(failed_import())
    assert decisions == [Decision.APPLY] * 4
    assert batch.workflow_state is WorkflowState.FAILED_WITH_MESSAGES
    assert batch.terminal and batch.outcome == "failure"
    assert [e.workflow_state.value for e in batch.history] == [
        "initializing", "created", "importing", "failed_with_messages"
    ]
    assert batch.first_event_at == T0 and batch.last_event_at == at(T0, 61.5)


def test_created_in_the_same_millisecond_as_initializing_wins_whichever_arrives_first():
    initializing, created = failed_import()[:2]
    assert initializing["metadata"]["event_time"] == created["metadata"]["event_time"]
    batch, decisions = fold([created, initializing])
    assert decisions == [Decision.APPLY, Decision.HISTORY_ONLY]
    assert batch.workflow_state is WorkflowState.CREATED
    assert [e.workflow_state.value for e in batch.history] == ["initializing", "created"]


def test_late_event_is_history_only_and_duplicate_is_nothing():
    events = failed_import()
    batch, decisions = fold([events[3], events[2], events[3], events[2]])
    assert decisions == [Decision.APPLY, Decision.HISTORY_ONLY, Decision.DUPLICATE, Decision.DUPLICATE]
    assert batch.workflow_state is WorkflowState.FAILED_WITH_MESSAGES
    assert batch.version == 2


def test_restore_after_failure_moves_on_and_ends_restored():
    events = failed_import() + [
        canvas_event("restoring", at(T0, 3600)),
        canvas_event("restored", at(T0, 3630)),
    ]
    batch, _ = fold(events)
    assert batch.workflow_state is WorkflowState.RESTORED and batch.outcome == "success"


def test_creator_hostname_and_redacted_url_come_from_the_creating_request_even_when_late():
    importing = canvas_event("importing", at(T0, 4))
    batch, _ = fold([importing, failed_import()[0]])
    assert batch.hostname == "oxana.instructure.com"
    assert batch.created_by_user_id == "21070000000000109"
    assert batch.created_by_login == "mysisimporterlogin"
    assert batch.url == "https://oxana.instructure.com/api/v1/accounts/self/sis_imports.json"  # no query at all
    assert "client_ip" not in batch.to_item() and "user_agent" not in batch.to_item()


def test_a_restore_request_does_not_replace_the_creator():
    restoring = canvas_event("restoring", at(T0, 3600), request_context=True)
    restoring["metadata"]["user_id"] = "999"
    batch, _ = fold(failed_import() + [restoring])
    assert batch.created_by_user_id == "21070000000000109"


def test_history_is_bounded_to_the_newest_entries():
    entries = [HistoryEntry(WorkflowState.IMPORTING, at(T0, i), "sis_batch_updated") for i in range(10)]
    kept = trim(sequence(entries), limit=4)
    assert kept == tuple(entries[-4:])


def test_an_event_older_than_a_full_history_changes_nothing():
    events = [canvas_event("importing", at(T0, i)) for i in range(1, 5)]
    batch, _ = fold([failed_import()[0]] + events, limit=3)
    decision, same = apply_event(batch, parse_event(failed_import()[0]), 3)
    assert decision is Decision.DUPLICATE and same == batch


def test_item_round_trips():
    batch, _ = fold(failed_import())
    assert Batch.from_item(batch.to_item()) == batch


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_every_end_state_is_terminal_with_an_outcome(state):
    batch, _ = fold([canvas_event(state.value, T0)])
    assert batch.terminal and batch.outcome in {"success", "warning", "failure"}
