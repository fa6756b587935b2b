"""The Slack incoming-webhook message of an alert: Block Kit within Slack's limits."""

from __future__ import annotations

from typing import Any

from .frame import DETECTED_BY, _Alert, _read
from .text import (MISSING_STEP, _code_block, _count_text, _cut_units, _emoji, _facts_text, _fit, _headline,
                   _item_line, _items_heading, _late_text, _missing_facts, _missing_sentence, _slack, _slack_code,
                   _slack_free, _state_code, _units, _where_words, duration_text)


# Slack's limits (Block Kit reference): blocks per message, characters per text.
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT = 3000
SLACK_FIELD_TEXT = 2000
SLACK_MAX_FIELDS = 10
SLACK_HEADER_TEXT = 150
SLACK_BUTTON_TEXT = 75
SLACK_CONTEXT_TEXT = 3000
SLACK_URL = 3000
# The top-level `text` is the notification's fallback; kept short (Slack truncates long ones anyway).
SLACK_FALLBACK_TEXT = 500


# --- Slack (incoming webhook, Block Kit) ---------------------------------------------------------------


def slack(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification's fallback) and Block Kit `blocks`."""
    a = _read(message)
    preposition, where = _where_words(a)
    emoji = _emoji(a)
    header = _fit(f"{emoji} {_headline(a, preposition, where)}", SLACK_HEADER_TEXT, _slack)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    outcome = "" if a.missing else f" ({a.outcome or 'unknown'})"  # a missing alert's headline says it
    fallback = _fit(f"{emoji} {_headline(a, preposition, where)}{outcome}", SLACK_FALLBACK_TEXT, _slack)
    if a.missing:
        return {"text": fallback, "blocks": blocks + _missing_blocks(a, preposition, where)}
    if a.anomalies:  # an unusual end says so first
        blocks.append(_slack_section("*Unusual:*\n" + "\n".join(f"• {_slack(s)}" for s in a.anomalies)))

    fields = [f"*Outcome*\n{a.outcome or 'unknown'}"]
    if a.stuck:
        fields.append(f"*Stuck in*\n{_state_code(a.workflow_state)}" if a.workflow_state else "*Stuck*")
        if a.since:
            fields.append(f"*Since*\n{a.since}")
    else:
        state = _state_code(a.workflow_state) if a.workflow_state else "unknown"
        fields.append(f"*State*\n{state}" + (f" (after {_state_code(a.previous_state)})" if a.previous_state else ""))
        fields.append(f"*Duration*\n{duration_text(a.duration)}")
        if a.started_at:
            fields.append(f"*Started*\n{a.started_at}")
        if a.finished_at:
            fields.append(f"*Finished*\n{a.finished_at}")
    fields.append(f"*{'Host' if a.host else 'Root account'}*\n{_fit(where, SLACK_FIELD_TEXT - 20, _slack_code)}")
    if a.detected_by:
        fields.append(f"*Detected by*\n{DETECTED_BY[a.detected_by]}")
    blocks.append({"type": "section",
                   "fields": [{"type": "mrkdwn", "text": _cut_units(f, SLACK_FIELD_TEXT)}
                              for f in fields[:SLACK_MAX_FIELDS]]})

    if a.late:
        blocks.append(_slack_section(":alarm_clock: *Late.* " + _late_text(a, _state_code)))
    d = a.details
    if d is not None:
        if d.counts is not None:
            blocks.append(_slack_section(f"*Counts:* {_count_text(d)}"))
        if d.abort_reason:
            heading = "*Why it stopped*\n"
            blocks.append(_slack_section(heading + _code_block([d.abort_reason], SLACK_SECTION_TEXT - _units(heading),
                                                               _slack_free)))
        for kind, items, total in (("errors", d.errors, d.error_count), ("warnings", d.warnings, d.warning_count)):
            if items:
                heading = f"*{_items_heading(kind, total, len(items))}*\n"
                lines = [_item_line(i) for i in items]
                blocks.append(_slack_section(heading + _code_block(lines, SLACK_SECTION_TEXT - _units(heading),
                                                                   _slack_free)))
        if d.facts:
            blocks.append(_slack_context(_facts_text(d, _slack_code)))
    elif a.details_unavailable:
        blocks.append(_slack_context(f"No details from Canvas: {_slack_code(a.details_unavailable)}"))

    if a.page_url and len(a.page_url) <= SLACK_URL:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the import in Canvas"},
            "url": a.page_url, "action_id": "open_sis_import",
        }]})
    footer = [f"Root account {_slack_code(a.root_account_uuid)}" if a.root_account_uuid else "",
              f"account {_slack_code(a.account_id)}" if a.account_id else "",
              f"<{a.api_url}|API record>" if a.api_url else "",
              f"alert {a.alert_id}" if a.alert_id else ""]
    if any(footer):
        blocks.append(_slack_context(" · ".join(p for p in footer if p)))
    return {"text": fallback, "blocks": blocks[:SLACK_MAX_BLOCKS]}


def _missing_blocks(a: _Alert, preposition: str, where: str) -> list[dict[str, Any]]:
    """A missing import, or its end: the facts, the sentence, what to do, the ids."""
    fields = [f"*{label}*\n{value}" for label, value in _missing_facts(a)]
    fields.append(f"*{'Host' if a.host else 'Root account'}*\n{_fit(where, SLACK_FIELD_TEXT - 20, _slack_code)}")
    if a.detected_by:
        fields.append(f"*Detected by*\n{DETECTED_BY[a.detected_by]}")
    blocks = [{"type": "section", "fields": [{"type": "mrkdwn", "text": _cut_units(f, SLACK_FIELD_TEXT)}
                                             for f in fields[:SLACK_MAX_FIELDS]]},
              _slack_section(_missing_sentence(a, preposition, _slack_code(where), _slack_code)
                             + (f"\n{MISSING_STEP}" if a.outcome == "missing" else ""))]
    footer = [f"Root account {_slack_code(a.root_account_uuid)}" if a.root_account_uuid else "",
              f"alert {a.alert_id}" if a.alert_id else ""]
    if any(footer):
        blocks.append(_slack_context(" · ".join(p for p in footer if p)))
    return blocks


def _slack_section(text: str) -> dict[str, Any]:
    # Every caller builds text within the limit (code blocks included); the cut is a last resort.
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut_units(text, SLACK_SECTION_TEXT)}}


def _slack_context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut_units(text, SLACK_CONTEXT_TEXT)}]}
