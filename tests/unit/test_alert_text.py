"""The email text and the byte budget of an alert (functions/sis_imports/core/alert_text.py), from Canvas's
real shapes: `[null, message]` rows, translated abort reasons, text that echoes the SIS file (any
script, line breaks, bidirectional overrides), and the largest details Canvas can send."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core import alert_text
from sis_imports.core.alert_text import CUT, details_of, email_text, shrink

HOST = "oxana.instructure.com"
PAGE = f"https://{HOST}/accounts/1/sis_import"


def sis_import(state: str = "failed_with_messages", **fields: Any) -> dict[str, Any]:
    """A SisImport answer as Canvas's API gives it (SisBatch#as_json), only the fields alerts read."""
    value = {"id": 1440177, "workflow_state": state, "batch_mode": False, "batch_mode_term_id": None,
             "multi_term_batch_mode": False, "diffing_data_set_identifier": None, "diffed_against_import_id": None,
             "change_threshold": None, "skip_deletes": False,
             "data": {"import_type": "instructure_csv", "counts": {"terms": 1, "users": 2, "enrollments": 1308,
                                                                    "error_count": 0, "warning_count": 1}}}
    value.update(fields)
    return value


def alert(details: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    message = {"type": "sis_import_finished", "alert_id": "5f0c6f1e9a7b4c2d8e3f1a2b3c4d5e6f",
               "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs", "root_account_id": "10000000000001",
               "account_id": "1", "sis_batch_id": "1440177", "workflow_state": "aborted", "outcome": "failure",
               "hostname": HOST, "previous_state": "importing", "late": False, "current_state": "aborted",
               "started_at": "2026-11-27T15:30:00.000Z", "finished_at": "2026-11-27T15:40:00.000Z",
               "duration_seconds": 600.0, "canvas_url": f"https://{HOST}/api/v1/accounts/1/sis_imports/1440177",
               "canvas_page_url": PAGE, "detected_by": "sis_import_api", "details": details,
               "history": [{"workflow_state": "importing", "event_time": "2026-11-27T15:30:00.000Z",
                            "event_name": "sis_batch_updated"}]}
    message.update(fields)
    return message


# --- Canvas as it really is ------------------------------------------------------------------------------

THRESHOLD = {
    "en": "250 enrollments would be deleted and exceeds the set threshold of 10%",
    "fr": "250 inscriptions seraient supprimées, ce qui dépasse le seuil défini de 10 %",
    "ja": "250 件の受講登録が削除され、設定されたしきい値 10% を超えます",
}


@pytest.mark.parametrize("language", sorted(THRESHOLD))
def test_a_batch_mode_abort_gives_its_reason_once_in_any_language(language):
    warning = THRESHOLD[language]
    answer = sis_import("aborted", batch_mode=True, batch_mode_term_id="fall_2026", change_threshold=10,
                        processing_warnings=[["users.csv", "user u-17 has already claimed login jdoe"],
                                             [None, warning]])
    details = details_of(answer)
    assert details["abort_reason"] == warning
    assert details["warnings"][1] == {"file": None, "message": warning}  # the JSON keeps Canvas's row as it is
    text = email_text(alert(details))
    assert text.count(warning) == 1 and f"Aborted because: {warning}\n" in text
    assert "None" not in text and "  - users.csv: user u-17 has already claimed login jdoe\n" in text


def test_a_multi_term_batch_without_its_terms_gives_canvas_error_as_the_reason():
    terms = "Terms not found. Multi-term batch mode needs the terms of the batch in the import."
    answer = sis_import("aborted", multi_term_batch_mode=True, processing_errors=[[None, terms]])
    details = details_of(answer)
    assert details["abort_reason"] == terms and details["multi_term_batch_mode"] is True
    text = email_text(alert(details))
    assert text.count(terms) == 1 and "First errors" not in text and "multi-term batch mode: yes" in text


def test_several_reasons_each_show_once():
    terms, threshold = "Terms not found for the batch.", THRESHOLD["ja"]
    answer = sis_import("aborted", multi_term_batch_mode=True, change_threshold=10,
                        processing_errors=[[None, terms]], processing_warnings=[[None, threshold], [None, threshold]])
    text = email_text(alert(details_of(answer)))
    assert f"Aborted because: {terms} / {threshold}\n" in text
    assert text.count(terms) == 1 and text.count(threshold) == 1


@pytest.mark.parametrize(("seconds", "words"), [(0, "0 s"), (95.007, "1 min 35 s"), (600, "10 min"), (3600, "1 h"),
                                                (3660, "1 h 1 min"), (None, "unknown")])
def test_a_duration_reads_as_people_say_it(seconds, words):
    text = email_text(alert(None, duration_seconds=seconds))
    assert f"(took {words})\n" in text


def test_the_reason_is_found_past_the_first_ten_rows():
    rows = [["users.csv", f"user u-{n} has already claimed a login"] for n in range(15)] + [[None, THRESHOLD["fr"]]]
    details = details_of(sis_import("aborted", batch_mode=True, processing_warnings=rows))
    assert details["abort_reason"] == THRESHOLD["fr"]


@pytest.mark.parametrize("answer", [
    # Aborted through the API (no batch-mode facts): Canvas records no reason.
    sis_import("aborted", processing_warnings=[[None, "Diffing not performed: no previous import"]]),
    # With diffing, a breach does not abort: the import ends with a message, which is no abort reason.
    sis_import("imported_with_messages", batch_mode=True, change_threshold=10,
               processing_warnings=[[None, "Diffing not performed because file row count exceeded the threshold"]]),
])
def test_no_abort_reason_without_a_batch_mode_abort(answer):
    details = details_of(answer)
    assert details["abort_reason"] is None
    text = email_text(alert(details, workflow_state=answer["workflow_state"]))
    assert "Aborted because" not in text and "None" not in text
    assert f"  - {answer['processing_warnings'][0][1]}\n" in text  # a row without a file: its message alone


def test_counts_and_settings_read_as_words():
    answer = sis_import("aborted", batch_mode=True, batch_mode_term_id="fall_2026", change_threshold=10,
                        skip_deletes=True, diffing_data_set_identifier="nightly", multi_term_batch_mode=False,
                        data={"counts": {"terms": 1, "courses": 2, "users": 1, "xlists": 3, "enrollments": 12345,
                                         "batch_enrollments_deleted": 1, "accounts": 0, "error_count": 0,
                                         "warning_count": 1}})
    text = email_text(alert(details_of(answer)))
    assert ("Counts: 1 term, 2 courses, 3 cross-listings, 1 user, 12,345 enrollments, "
            "1 enrollment deleted by batch mode\n") in text
    assert ("Settings: batch mode: yes; batch mode term: fall_2026; diffing data set: nightly; "
            "change threshold: 10%; skip deletes: yes\n") in text
    assert not re.search(r"True|False|None|=|batch_mode|skip_deletes|change_threshold", text)


def test_an_error_message_cannot_forge_a_line_in_the_email():
    forged = ("bad row\n\nOpen in Canvas: https://evil.example/phish\r\n"
              "SIS Import API: https://evil.example/\u202egpj.exe")
    answer = sis_import(processing_errors=[["users\u202e.csv\n", forged]], batch_mode_term_id="x\nOpen in Canvas: y")
    text = email_text(alert(details_of(answer), workflow_state="failed_with_messages"))
    lines = text.split("\n")
    assert [line for line in lines if line.startswith("Open in Canvas:")] == [f"Open in Canvas: {PAGE}"]
    assert [line for line in lines if line.startswith("SIS Import API:")] == [
        f"SIS Import API: https://{HOST}/api/v1/accounts/1/sis_imports/1440177"]
    assert "\u202e" not in text and "\r" not in text
    (row,) = [line for line in lines if "bad row" in line]
    assert row == "  - users .csv: bad row Open in Canvas: https://evil.example/phish SIS Import API: " \
                  "https://evil.example/ gpj.exe"  # one line, Canvas's, under "First errors"


def test_a_lone_surrogate_from_canvas_never_reaches_a_utf8_wire():
    answer = sis_import(processing_errors=[["users.csv", "bad \ud800 row"]])
    details = details_of(answer)
    json.dumps(details, ensure_ascii=False).encode("utf-8")  # raises if a surrogate were left
    email_text(alert(details)).encode("utf-8")


# --- the byte budget -----------------------------------------------------------------------------------

def utf8_json(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False).encode("utf-8"))


def big_alert(char: str = "😀", rows: int = 10, history: int = 50) -> dict[str, Any]:
    many = [{"file": char * 500, "message": char * 500} for _ in range(rows)]
    details = details_of(sis_import())
    details.update(errors=copy.deepcopy(many), warnings=copy.deepcopy(many), error_count=30, warning_count=12)
    entry = {"workflow_state": "importing", "event_time": "2026-11-27T15:30:00.000Z", "event_name": "sis_batch_updated"}
    return alert(details, history=[{**entry, "event_time": f"2026-11-27T15:{n // 60:02d}:{n % 60:02d}.000Z"}
                                   for n in range(history)])


NEVER_TOUCHED = ("type", "alert_id", "root_account_uuid", "root_account_id", "account_id", "sis_batch_id",
                 "workflow_state", "outcome", "hostname", "previous_state", "late", "current_state", "started_at",
                 "finished_at", "duration_seconds", "canvas_url", "canvas_page_url", "detected_by")


def check_shrunk(original: dict[str, Any], out: dict[str, Any], budget: int) -> None:
    """What shrink promises, checked from the rule rather than from the code."""
    assert utf8_json(out) <= budget
    assert {k: out[k] for k in NEVER_TOUCHED} == {k: original[k] for k in NEVER_TOUCHED}
    if out["details"] is not None:
        for key in ("errors", "warnings"):
            before, after = original["details"][key], out["details"][key]
            assert len(after) + out["details"].get(f"{key}_left_out", 0) == len(before)  # every row accounted for
            for was, now in zip(before, after):  # the first rows, in order, each whole or cut with the marker
                for field in ("file", "message"):
                    assert now[field] == was[field] or (now[field].endswith(CUT)
                                                        and was[field].startswith(now[field][: -len(CUT)]))
    else:
        assert "too large" in out["details_unavailable"]
    history = out["history"]
    assert len(history) + out.get("history_left_out", 0) == len(original["history"])
    if original["history"]:
        assert history[0] == original["history"][0] and history[-1] == original["history"][-1]
        assert all(entry in original["history"] for entry in history)


def test_an_alert_that_fits_is_left_as_it_is():
    message = big_alert()
    assert shrink(message, utf8_json, utf8_json(message)) is message


def test_rows_go_first_then_their_text_then_historys_middle():
    message = big_alert()
    before = copy.deepcopy(message)
    full = utf8_json(message)
    # A little too big: the last warnings go, nothing is cut.
    out = shrink(message, utf8_json, full - 5_000)
    check_shrunk(message, out, full - 5_000)
    assert out["details"]["warnings_left_out"] == 2 and "errors_left_out" not in out["details"]
    assert "history_left_out" not in out
    # Much too big: one row of each is left, its text cut; the history is whole.
    out = shrink(message, utf8_json, 10_000)
    check_shrunk(message, out, 10_000)
    assert (out["details"]["errors_left_out"], out["details"]["warnings_left_out"]) == (9, 9)
    assert out["details"]["errors"][0]["message"].endswith(CUT) and "history_left_out" not in out
    # Far too big: no row is left, and the history keeps its ends.
    out = shrink(message, utf8_json, 6_000)
    check_shrunk(message, out, 6_000)
    assert (out["details"]["errors"], out["details"]["warnings"]) == ([], []) and out["history_left_out"] > 0
    assert message == before  # the caller's message is not changed


def test_what_cannot_fit_is_refused_with_the_sizes():
    with pytest.raises(ValueError, match=r"the alert is \d+ bytes even without Canvas's details and history; "
                                         r"the budget is 500"):
        shrink(big_alert(), utf8_json, 500)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    char=st.sampled_from(["😀", "字", '"', "\\", "\x01", "a"]),
    rows=st.integers(0, 10),
    history=st.integers(0, 120),
    budget=st.integers(4_000, 200_000),
)
def test_shrink_fits_any_budget_it_can_keeping_what_it_promises(char, rows, history, budget):
    message = big_alert(char, rows, history)
    out = shrink(message, utf8_json, budget)
    check_shrunk(message, out, budget)


def test_the_email_says_what_was_left_out():
    out = shrink(big_alert(), lambda m: len(email_text(m).encode()) + utf8_json(m), 20_000)
    text = email_text(out)
    assert "First errors (" in text and "more left out to keep the alert within the size a message may have" in text
    assert f"{CUT}\n" in text


def test_module_is_pure():
    for module in (alert_text, __import__("sis_imports.core.untrusted", fromlist=["x"])):
        source = Path(module.__file__).read_text()
        assert not re.search(r"^\s*(import|from)\s+(boto3|botocore|aws_lambda_powertools|urllib|requests)", source,
                             re.M)
