"""The why of an alert, from Canvas's SisImport JSON; the plain text an email subscriber reads; and
the one rule that makes an alert fit a byte budget.

Pure: no AWS, no HTTP. `details_of` keeps only named facts (counts, the first errors and warnings,
batch-mode, diffing and threshold settings, an abort's reason); never the `errors_attachment`,
whose URL carries a `verifier` capability, nor the user who started the import.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from .unusual import duration_words, figures_of, shape_of
from .untrusted import one_line

FIRST_ROWS = 10
TEXT_LIMIT = 500  # one error message, one file name
SETTINGS = ("batch_mode", "batch_mode_term_id", "multi_term_batch_mode", "diffing_data_set_identifier",
            "diffed_against_import_id", "diffing_threshold_exceeded", "change_threshold", "skip_deletes")


def _text(value: Any) -> str:
    # A lone surrogate (a JSON answer can escape one) becomes "?": SNS, SQS and chats take UTF-8 only.
    return str(value)[:TEXT_LIMIT].encode("utf-8", "replace").decode("utf-8")


def _row(row: Any) -> dict[str, str | None] | None:
    """One `[file, message]` pair; the file is null for Canvas's own messages (abort reasons, diffing)."""
    if not isinstance(row, (list, tuple)) or len(row) < 2:
        return None
    return {"file": None if row[0] is None else _text(row[0]), "message": _text(row[1])}


def _rows(raw: Any) -> list[dict[str, str | None]]:
    """Canvas's `[file, message]` pairs (the first 24, then an "and N more" row), as the first 10."""
    rows = [r for r in map(_row, raw if isinstance(raw, list) else []) if r is not None]
    return rows[:FIRST_ROWS]


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float)) else _text(value)


def _abort_reason(sis_import: dict[str, Any]) -> str | None:
    """Why Canvas aborted a batch-mode import, from the abort itself rather than from its words (Canvas
    translates them): its rows without a file. A change_threshold breach records one as a warning, a
    multi-term batch without its terms ("Terms not found…") as an error; an abort through the API
    records none, and a batch without batch-mode settings has no such reason."""
    if sis_import.get("workflow_state") != "aborted":
        return None
    threshold = sis_import.get("change_threshold")
    if not (sis_import.get("batch_mode") is True or sis_import.get("multi_term_batch_mode") is True
            or (isinstance(threshold, (int, float)) and not isinstance(threshold, bool))):
        return None
    reasons: list[str] = []
    for key in ("processing_errors", "processing_warnings"):  # every row, not just the first 10 kept
        for row in map(_row, sis_import.get(key) if isinstance(sis_import.get(key), list) else []):
            if row is not None and row["file"] is None and row["message"] and row["message"] not in reasons:
                reasons.append(row["message"])
    return _text(" / ".join(reasons)) if reasons else None


def details_of(sis_import: dict[str, Any]) -> dict[str, Any]:
    """What an admin would open Canvas to find out, from one SisImport answer."""
    data = sis_import.get("data") if isinstance(sis_import.get("data"), dict) else {}
    counts_raw = data.get("counts") if isinstance(data.get("counts"), dict) else {}
    counts = {_text(k): v for k, v in counts_raw.items() if isinstance(v, int) and not isinstance(v, bool)}
    return {
        "counts": counts,
        "error_count": counts.get("error_count", 0),
        "warning_count": counts.get("warning_count", 0),
        "errors": _rows(sis_import.get("processing_errors")),
        "warnings": _rows(sis_import.get("processing_warnings")),
        "import_type": _scalar(data.get("import_type")),
        **{name: _scalar(sis_import.get(name)) for name in SETTINGS},
        "abort_reason": _abort_reason(sis_import),
        "import_shape": shape_of(sis_import),  # what the end is compared with (core/unusual.py)
        "figures": figures_of(sis_import),
    }


def _duration(seconds: Any) -> str:
    return duration_words(seconds) if isinstance(seconds, (int, float)) else "unknown"


def _when(moment: Any) -> str:
    return f"{moment[:10]} {moment[11:19]} UTC" if isinstance(moment, str) and len(moment) >= 19 else "unknown"


# Canvas's data.counts keys in the order Canvas lists them, as (one, many) words.
COUNT_WORDS = {
    "accounts": ("account", "accounts"),
    "terms": ("term", "terms"),
    "abstract_courses": ("abstract course", "abstract courses"),
    "courses": ("course", "courses"),
    "sections": ("section", "sections"),
    "xlists": ("cross-listing", "cross-listings"),
    "users": ("user", "users"),
    "user_observers": ("observer", "observers"),
    "enrollments": ("enrollment", "enrollments"),
    "groups": ("group", "groups"),
    "group_categories": ("group category", "group categories"),
    "group_memberships": ("group membership", "group memberships"),
    "grade_publishing_results": ("grade publishing result", "grade publishing results"),
    "admins": ("admin", "admins"),
    "change_sis_ids": ("SIS id change", "SIS id changes"),
    "logins": ("login", "logins"),
    "batch_courses_deleted": ("course deleted by batch mode", "courses deleted by batch mode"),
    "batch_sections_deleted": ("section deleted by batch mode", "sections deleted by batch mode"),
    "batch_enrollments_deleted": ("enrollment deleted by batch mode", "enrollments deleted by batch mode"),
}
SETTING_WORDS = {"batch_mode": "batch mode", "batch_mode_term_id": "batch mode term",
                 "multi_term_batch_mode": "multi-term batch mode", "diffing_data_set_identifier": "diffing data set",
                 "diffed_against_import_id": "diffed against import",
                 "diffing_threshold_exceeded": "diffing threshold exceeded", "change_threshold": "change threshold",
                 "skip_deletes": "skip deletes"}
LINE_LIMIT = TEXT_LIMIT  # what one line of Canvas's text may show in the email


def _n(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _counts_text(counts: Any) -> str:
    counts = counts if isinstance(counts, dict) else {}
    shown = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0
             and k not in ("error_count", "warning_count")}
    known = [_n(shown.pop(k), *words) for k, words in COUNT_WORDS.items() if k in shown]
    other = [f"{v:,} {one_line(str(k).replace('_', ' '), 60)}" for k, v in sorted(shown.items())]
    return ", ".join(known + other) or "nothing created, updated or deleted"


def _setting_text(name: str, value: Any) -> str | None:
    if value is None or value is False or value == "":
        return None
    words = SETTING_WORDS[name]
    if value is True:
        return f"{words}: yes"
    if name == "change_threshold" and isinstance(value, (int, float)):
        return f"{words}: {value:g}%"
    return f"{words}: {one_line(value, LINE_LIMIT)}"


def _row_line(row: Any) -> str:
    """`file: message`, or the message alone when Canvas names no file."""
    if not isinstance(row, dict):
        return ""
    file, message = one_line(row.get("file"), LINE_LIMIT), one_line(row.get("message"), LINE_LIMIT)
    return f"{file}: {message}" if file and message else file or message


SIZE_WORDS = "to keep the alert within the size a message may have"


def email_text(message: dict[str, Any]) -> str:
    """The short plain text an email subscriber gets for an alert message. Everything Canvas or an
    uploader wrote is folded into one line without control or bidirectional characters (untrusted.py),
    so that no error message can draw a line of its own (a fake link) in the email."""
    host = one_line(message.get("hostname"), 300) or \
        f"root account {one_line(message.get('root_account_id') or message.get('root_account_uuid'), 128)}"
    what = "restore of SIS import" if message.get("type") == "sis_restore_finished" else "SIS import"
    batch = one_line(message.get("sis_batch_id"), 128)
    lines: list[str] = []
    if message.get("type") == "sis_import_missing":  # core/rhythm.py: our own words, times and counts
        lines += [one_line(message.get("summary"), LINE_LIMIT), "",
                  f"Last import     {_when(message.get('last_import_at'))}",
                  f"Expected by     {_when(message.get('expected_by'))} ({one_line(message.get('rhythm'), 200)})"]
        if message.get("outcome") == "resumed":
            lines.append(f"Resumed         {_when(message.get('resumed_at'))} (import "
                         f"{one_line(message.get('sis_batch_id'), 128)})")
        lines += ["", f"Alert id: {message.get('alert_id')} (the same id on every repeat of this alert)"]
        return "\n".join(lines) + "\n"
    if message.get("follow_up") is True:  # core/alerts.follow_up: the same end, alerted before without its figures
        lines += ["Follow-up: Canvas's figures for this end could not be read when it was alerted; read since, "
                  "they are unusual.", ""]
    anomalies = message.get("anomalies") if isinstance(message.get("anomalies"), list) else []
    unusual = [f"  - {one_line(a.get('sentence'), LINE_LIMIT)}" for a in anomalies if isinstance(a, dict)]
    if unusual and message.get("outcome") == "success":  # said first: a success that did damage must not pass
        lines += ["Unusual against this school's own imports, though Canvas calls it a success:", *unusual, ""]
    if message.get("type") == "sis_import_stuck":
        lines += [f"SIS import {batch} on {host} is stuck in {message.get('workflow_state')}.", "",
                  f"In that state since  {_when(message.get('in_state_since'))}",
                  "It is not finishing: check the import in Canvas, and abort or restart it if it is stuck."]
    else:
        lines += [f"The {what} {batch} on {host} ended: {message.get('workflow_state')} "
                  f"({message.get('outcome')}).", ""]
        lines += [f"Started   {_when(message.get('started_at'))}",
                  f"Finished  {_when(message.get('finished_at'))} (took {_duration(message.get('duration_seconds'))})"]
        if message.get("late"):
            lines.append(f"Late      this end was learnt after the batch had moved on; it is now "
                         f"{message.get('current_state')}")
        if unusual and message.get("outcome") != "success":  # a failure that is unusual as well says both
            lines += ["", "Also unusual against this school's own imports:", *unusual]
    detected = "Canvas's SIS Import API (no Live Event told it)" if message.get("detected_by") == "sis_import_api" \
        else "a Canvas Live Event"
    lines.append(f"Learnt from {detected}")
    details = message.get("details")
    if isinstance(details, dict):
        errors, warnings = details.get("error_count", 0), details.get("warning_count", 0)
        lines += ["", "Counts: " + _counts_text(details.get("counts")),
                  f"Errors: {errors:,}, warnings: {warnings:,}" if isinstance(errors, int) and isinstance(warnings, int)
                  else f"Errors: {errors}, warnings: {warnings}"]
        reason = one_line(details.get("abort_reason"), LINE_LIMIT)
        if reason:
            lines.append(f"Aborted because: {reason}")
        for title, key in (("First errors", "errors"), ("First warnings", "warnings")):
            rows = details.get(key) if isinstance(details.get(key), list) else []
            # The abort's reason is shown once, above: not again as the row Canvas recorded it in.
            shown = [line for row in rows if (line := _row_line(row))
                     and not (reason and isinstance(row, dict) and row.get("file") is None and line in reason)]
            left_out = details.get(f"{key}_left_out")
            left_out = left_out if isinstance(left_out, int) and left_out > 0 else 0
            if shown:
                lines.append(f"{title} ({left_out} more left out {SIZE_WORDS}):" if left_out else f"{title}:")
                lines += [f"  - {line}" for line in shown]
            elif left_out:
                lines.append(f"{title}: {left_out} left out {SIZE_WORDS}")
        settings = [text for name in SETTINGS if (text := _setting_text(name, details.get(name)))]
        if settings:
            lines.append("Settings: " + "; ".join(settings))
    if isinstance(details, dict) and message.get("anomaly_check"):
        lines.append(f"Not compared with earlier imports: {one_line(message['anomaly_check'], LINE_LIMIT)}")
    elif message.get("details_unavailable"):
        lines += ["", f"Details from Canvas are not included: {one_line(message['details_unavailable'], 1000)}."]
    if isinstance(message.get("history_left_out"), int) and message["history_left_out"] > 0:
        lines.append(f"History: {message['history_left_out']} middle entries left out of the JSON {SIZE_WORDS}")
    links = [("Open in Canvas", message.get("canvas_page_url")), ("SIS Import API", message.get("canvas_url"))]
    lines += [""] + [f"{label}: {one_line(url, 2000)}" for label, url in links if url]
    lines.append(f"Alert id: {message.get('alert_id')} (the same id on every repeat of this alert)")
    return "\n".join(lines) + "\n"


# --- fitting a byte budget ---------------------------------------------------------------------------

CUT = "… [cut]"  # ends a row's text cut to fit
SHORTEST_CUT = 40


def _cut(value: Any, limit: int) -> Any:
    return value[: limit - len(CUT)] + CUT if isinstance(value, str) and len(value) > limit else value


def shrink(message: dict[str, Any], size: Callable[[dict[str, Any]], int], budget: int) -> dict[str, Any]:
    """`message`, or a smaller copy whose `size(...)` is at most `budget` bytes. What goes, in order,
    until it fits: rows of Canvas's errors and warnings from the end (warnings first; the first of each
    stays), counted in `details.errors_left_out` / `warnings_left_out`; then each row's file and message
    text, cut shorter and shorter (down to 40 characters) and marked `… [cut]` (the abort reason down to
    200); then the remaining rows;
    then the middle of `history` (its first and last entries stay; `history_left_out` counts the rest);
    then Canvas's details altogether (`details_unavailable` says why). The ids, states, outcome, times
    and links are never touched. Raises ValueError if even that does not fit (an alert's other fields
    are bounded: ids of 128 characters, host names of 253)."""
    if size(message) <= budget:
        return message
    out = copy.deepcopy(message)
    details = out.get("details") if isinstance(out.get("details"), dict) else None

    def fits() -> bool:
        return size(out) <= budget

    def rows(key: str) -> list[Any]:
        value = details.get(key) if details is not None else None
        return value if isinstance(value, list) else []

    def drop_row(key: str) -> None:
        assert details is not None
        rows(key).pop()
        details[f"{key}_left_out"] = int(details.get(f"{key}_left_out") or 0) + 1

    if details is not None:
        for key in ("warnings", "errors"):
            while len(rows(key)) > 1 and not fits():
                drop_row(key)
        limit = TEXT_LIMIT
        while not fits() and limit > SHORTEST_CUT:
            limit = max(SHORTEST_CUT, limit // 2)
            for key in ("errors", "warnings"):
                for row in rows(key):
                    if isinstance(row, dict):
                        row.update(file=_cut(row.get("file"), limit), message=_cut(row.get("message"), limit))
            details["abort_reason"] = _cut(details.get("abort_reason"), max(limit, 200))
        for key in ("warnings", "errors"):
            while rows(key) and not fits():
                drop_row(key)
    history = out.get("history") if isinstance(out.get("history"), list) else []
    while len(history) > 2 and not fits():
        keep = max(2, len(history) // 2)  # halve the middle: a few measures, not one per entry
        dropped = len(history) - keep
        history[:] = history[: (keep + 1) // 2] + history[len(history) - keep // 2:]
        out["history_left_out"] = int(out.get("history_left_out") or 0) + dropped
    if not fits() and details is not None:
        out["details"] = None
        out["details_unavailable"] = "Canvas's details were too large to send in this alert: the import's page has them"
    elif not fits() and isinstance(out.get("details_unavailable"), str):
        out["details_unavailable"] = _cut(out["details_unavailable"], 200)
    if not fits():
        raise ValueError(f"the alert is {size(out)} bytes even without Canvas's details and history; "
                         f"the budget is {budget}")
    return out
