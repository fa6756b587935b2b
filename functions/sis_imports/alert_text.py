"""The why of an alert, from Canvas's SisImport JSON, and the plain text an email subscriber reads.

Pure: no AWS, no HTTP. `details_of` keeps only named facts (counts, the first errors and warnings,
batch-mode, diffing and threshold settings, an abort's reason); never the `errors_attachment`,
whose URL carries a `verifier` capability, nor the user who started the import.
"""

from __future__ import annotations

from typing import Any

FIRST_ROWS = 10
TEXT_LIMIT = 500  # one error message, one file name
SETTINGS = ("batch_mode", "batch_mode_term_id", "diffing_data_set_identifier", "diffed_against_import_id",
            "diffing_threshold_exceeded", "change_threshold", "skip_deletes")
THRESHOLD_WORDS = "exceeds the set threshold"


def _text(value: Any) -> str:
    return str(value)[:TEXT_LIMIT]


def _rows(raw: Any) -> list[dict[str, str]]:
    """Canvas's `[file, message]` pairs (the first 24, then an "and N more" row), as the first 10."""
    rows = []
    for row in raw if isinstance(raw, list) else []:
        if isinstance(row, (list, tuple)) and len(row) >= 2:
            rows.append({"file": _text(row[0]), "message": _text(row[1])})
        if len(rows) == FIRST_ROWS:
            break
    return rows


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float)) else _text(value)


def details_of(sis_import: dict[str, Any]) -> dict[str, Any]:
    """What an admin would open Canvas to find out, from one SisImport answer."""
    data = sis_import.get("data") if isinstance(sis_import.get("data"), dict) else {}
    counts_raw = data.get("counts") if isinstance(data.get("counts"), dict) else {}
    counts = {str(k): v for k, v in counts_raw.items() if isinstance(v, int) and not isinstance(v, bool)}
    warnings = _rows(sis_import.get("processing_warnings"))
    abort_reason = None
    if sis_import.get("workflow_state") == "aborted":
        # A change_threshold breach records its reason as a warning, then aborts (CANVAS.md).
        abort_reason = next((w["message"] for w in warnings if THRESHOLD_WORDS in w["message"]), None)
    return {
        "counts": counts,
        "error_count": counts.get("error_count", 0),
        "warning_count": counts.get("warning_count", 0),
        "errors": _rows(sis_import.get("processing_errors")),
        "warnings": warnings,
        "import_type": _scalar(data.get("import_type")),
        **{name: _scalar(sis_import.get(name)) for name in SETTINGS},
        "abort_reason": abort_reason,
    }


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes) + [f"{secs} s"] * (not hours)
    return " ".join(parts) or "0 s"


def _when(moment: Any) -> str:
    return f"{moment[:10]} {moment[11:19]} UTC" if isinstance(moment, str) and len(moment) >= 19 else "unknown"


def email_text(message: dict[str, Any]) -> str:
    """The short plain text an email subscriber gets for an alert message."""
    host = message.get("hostname") or f"root account {message.get('root_account_id') or message.get('root_account_uuid')}"
    what = "restore of SIS import" if message.get("type") == "sis_restore_finished" else "SIS import"
    batch = message.get("sis_batch_id")
    lines: list[str] = []
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
    detected = "Canvas's SIS Import API (no Live Event told it)" if message.get("detected_by") == "sis_import_api" \
        else "a Canvas Live Event"
    lines.append(f"Learnt from {detected}")
    details = message.get("details")
    if isinstance(details, dict):
        counts = {k: v for k, v in (details.get("counts") or {}).items() if k not in ("error_count", "warning_count")
                  and v}
        lines += ["", "Counts: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing changed"),
                  f"Errors: {details.get('error_count', 0)}, warnings: {details.get('warning_count', 0)}"]
        if details.get("abort_reason"):
            lines.append(f"Aborted because: {details['abort_reason']}")
        for title, rows in (("First errors", details.get("errors")), ("First warnings", details.get("warnings"))):
            if rows:
                lines.append(f"{title}:")
                lines += [f"  - {row['file']}: {row['message']}" for row in rows]
        settings = [f"{name}={details[name]}" for name in SETTINGS if details.get(name) not in (None, False, "")]
        if settings:
            lines.append("Settings: " + ", ".join(settings))
    elif message.get("details_unavailable"):
        lines += ["", f"Details from Canvas are not included: {message['details_unavailable']}."]
    links = [("Open in Canvas", message.get("canvas_page_url")), ("SIS Import API", message.get("canvas_url"))]
    lines += [""] + [f"{label}: {url}" for label, url in links if url]
    lines.append(f"Alert id: {message.get('alert_id')} (the same id on every repeat of this alert)")
    return "\n".join(lines) + "\n"
