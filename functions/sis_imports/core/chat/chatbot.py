"""The AWS Chatbot custom notification of an alert (`client-markdown`, shown as Slack's or Teams'
markdown, whichever the channel is)."""

from __future__ import annotations

from typing import Any

from .frame import DETECTED_BY, _Alert, _clean, _read
from .text import (_chatbot_code, _code_block, _count_text, _emoji, _facts_text, _headline, _item_line,
                   _items_heading, _late_text, _missing_sentence, _neutral, _next_steps, _outcome_line, _state_code,
                   _time_lines, _units, _where_words)


# --- AWS Chatbot (Amazon Q Developer in chat applications) ---------------------------------------------

CHATBOT_DESCRIPTION = 3500  # what reads well in one chat message; Slack and Teams both take it


def chatbot(message: dict[str, Any]) -> dict[str, Any]:
    """The AWS Chatbot custom notification of an alert (publish it as the SNS message body)."""
    a = _read(message)
    preposition, where = _where_words(a)
    title = f"{_emoji(a)} {_headline(a, preposition, _chatbot_code(where), _chatbot_code)}"
    summary = _headline(a, preposition, where)
    if a.missing:
        return _notification(a, title, summary, _missing_description(a, preposition, where))

    # An unusual end says so first: what was unusual, each figure's sentence, then the rest.
    lines = ["Unusual:", *(f"• {_neutral(s)}" for s in a.anomalies)] if a.anomalies else []
    lines.append(_outcome_line(a, _state_code))
    lines += _time_lines(a)
    if a.late:
        lines.append(_late_text(a, _state_code))
    if a.detected_by:
        lines.append(f"Detected by {DETECTED_BY[a.detected_by]}.")
    d = a.details
    blocks: list[str] = []
    if d is not None:
        if d.counts is not None:
            lines.append(f"Counts: {_count_text(d)}.")
        if d.facts:
            lines.append(_facts_text(d, _chatbot_code) + ".")
        if d.abort_reason:
            blocks.append("Why it stopped:\n" + _code_block([d.abort_reason], 1600, _neutral))
        if d.errors:
            blocks.append(_items_heading("errors", d.error_count, len(d.errors)) + "\n"
                          + _code_block([_item_line(i) for i in d.errors], 1600, _neutral))
        if d.warnings:
            blocks.append(_items_heading("warnings", d.warning_count, len(d.warnings)) + "\n"
                          + _code_block([_item_line(i) for i in d.warnings], 900, _neutral))
    elif a.details_unavailable:
        lines.append(f"No details from Canvas: {_chatbot_code(a.details_unavailable)}.")
    description = "\n".join(lines)
    for block in blocks:  # whole blocks only, so that no code block is ever left open
        if _units(description) + 1 + _units(block) <= CHATBOT_DESCRIPTION:
            description += "\n" + block
    return _notification(a, title, summary, description)


def _missing_description(a: _Alert, preposition: str, where: str) -> str:
    lines = [_missing_sentence(a, preposition, _chatbot_code(where), _chatbot_code)]
    if a.detected_by:
        lines.append(f"Detected by {DETECTED_BY[a.detected_by]}" + (f" at {a.detected_at}." if a.detected_at else "."))
    return "\n".join(lines)


def _notification(a: _Alert, title: str, summary: str, description: str) -> dict[str, Any]:
    keywords = [k for k in (a.outcome, a.workflow_state, "unusual" if a.unusual else "", "late" if a.late else "",
                            "restore" if a.restore else "", _neutral(_clean(a.host, 60))) if k]
    context = {
        "alert_id": a.alert_id,
        "root_account_uuid": _neutral(a.root_account_uuid),
        "account_id": _neutral(a.account_id),
        "sis_batch_id": _neutral(a.sis_batch_id),
        "workflow_state": a.workflow_state,
        "outcome": a.outcome,
        "late": "" if a.missing else "true" if a.late else "false",
        "current_state": a.current_state,
        "detected_by": a.detected_by,
        "duration_seconds": f"{a.duration:g}" if a.duration is not None else "",
        "unusual": "true" if a.unusual else "",
        "last_import_at": a.last_import_at if a.missing else "",
        "expected_by": a.expected_by if a.missing else "",
    }
    notification: dict[str, Any] = {"version": "1.0", "source": "custom"}
    if a.alert_id:
        notification["id"] = a.alert_id
    notification["content"] = {
        "textType": "client-markdown",
        "title": title,
        "description": description,
        "nextSteps": _next_steps(a),
        "keywords": keywords,
    }
    notification["metadata"] = {
        # One thread per batch; a root account's missing imports and their ends share one.
        "threadId": _neutral(f"{a.root_account_uuid}/{'missing' if a.missing else a.sis_batch_id}"),
        "summary": _neutral(summary),
        "eventType": a.type or "sis_import_alert",
        "relatedResources": [url for url in (a.page_url, a.api_url) if url],
        "additionalContext": {k: v for k, v in context.items() if v},
    }
    return notification
