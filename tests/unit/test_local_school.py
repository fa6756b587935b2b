"""make run's school (local/school.py): when the run has one, and under which root account."""

from __future__ import annotations

from local.school import SCHOOL_HOST, account


def test_any_root_account_gives_the_school_one_of_its_own():
    assert account(None, None)[:2] == (True, None)
    assert account(["*"], ["*"])[:2] == (True, None)


def test_a_list_gives_the_school_its_second_uuid_or_no_school():
    assert account(["mine", "school"], None)[:2] == (True, "school")
    has, uuid, why = account(["mine"], None)
    assert (has, uuid) == (False, None) and "SIS_ROOT_ACCOUNTS lists one root account" in why


def test_hostnames_must_let_the_schools_events_in():
    assert account(None, ["canvas.example.edu", SCHOOL_HOST])[0] is True
    has, _, why = account(None, ["canvas.example.edu"])
    assert has is False and f"list {SCHOOL_HOST} after yours" in why
    assert account(None, [SCHOOL_HOST])[0] is False  # the first host is the first simulator's
