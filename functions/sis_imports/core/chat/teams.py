"""The Microsoft Teams Workflows webhook message of an alert: one Adaptive Card within Teams' size."""

from __future__ import annotations

import json
from typing import Any

from ..alert_text import shrink
from .frame import DETECTED_BY, SHOWN_ERRORS, SHOWN_WARNINGS, _read
from .text import (MISSING_STEP, _count_text, _emoji, _headline, _items_heading, _missing_facts, _missing_sentence,
                   _unmention, _where_words, _words, duration_text)


TEAMS_COLOR = {"success": "Good", "warning": "Warning", "failure": "Attention", "stuck": "Warning",
               "missing": "Attention", "resumed": "Good"}


# --- Microsoft Teams (Workflows webhook, Adaptive Card) --------------------------------------------------


# Teams refuses a message over about 28 KB; the card is kept under this many bytes of UTF-8 JSON.
TEAMS_MAX_BYTES = 27_000


def _shown_only(message: dict[str, Any]) -> dict[str, Any]:
    """The message with only the rows a chat can show (one more, for the abort reason's row)."""
    details = message.get("details") if isinstance(message, dict) else None
    if not isinstance(details, dict):
        return message
    trimmed = dict(details)
    for key, shown in (("errors", SHOWN_ERRORS), ("warnings", SHOWN_WARNINGS)):
        if isinstance(details.get(key), list):
            trimmed[key] = details[key][: shown + 1]
    return {**message, "details": trimmed}


def teams(message: dict[str, Any]) -> dict[str, Any]:
    """A Teams Workflows webhook message: one Adaptive Card 1.4 attachment, within TEAMS_MAX_BYTES (Canvas's
    rows, then their text, shrunk by the alerts' one rule, alert_text.shrink)."""
    if not isinstance(message, dict):
        raise TypeError("an alert message is a JSON object")
    return _teams(shrink(_shown_only(message), lambda m: _bytes(_teams(m)), TEAMS_MAX_BYTES))


def _bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _teams(message: dict[str, Any]) -> dict[str, Any]:
    a = _read(message)
    preposition, where = _where_words(a)
    body: list[dict[str, Any]] = [_rich(
        _run(f"{_emoji(a)} {_headline(a, preposition, where)}", weight="Bolder", size="Medium",
             color="Warning" if a.unusual and a.outcome == "success" else TEAMS_COLOR.get(a.outcome, "Default")))]
    if a.anomalies:  # an unusual end says so first
        body.append(_text("Unusual:", weight="Bolder"))
        body += [_rich(_run(f"• {sentence}"), spacing="Small") for sentence in a.anomalies]

    # FactSet titles and values render markdown: only this module's words, states, times and numbers.
    facts = [("Outcome", a.outcome or "unknown")]
    if a.missing:
        facts = _missing_facts(a)
        body.append(_rich(_run(_missing_sentence(a, preposition, where, lambda s: s))))
        if a.outcome == "missing":
            body.append(_text(MISSING_STEP))
    elif a.stuck:
        if a.workflow_state:
            facts.append(("Stuck in", _words(a.workflow_state)))
        if a.since:
            facts.append(("Since", a.since))
    else:
        state = _words(a.workflow_state) or "unknown"
        facts.append(("State", state + (f" (after {_words(a.previous_state)})" if a.previous_state else "")))
        facts.append(("Duration", duration_text(a.duration)))
        if a.started_at:
            facts.append(("Started", a.started_at))
        if a.finished_at:
            facts.append(("Finished", a.finished_at))
    if a.late and not a.missing:
        facts.append(("Late", "yes: the batch is now " + _words(a.current_state) if a.current_state else "yes"))
    if a.detected_by:
        facts.append(("Detected by", DETECTED_BY[a.detected_by]))
    body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]})

    d = a.details
    if d is not None:
        if d.counts is not None:
            body.append(_text(f"Counts: {_count_text(d)}"))
        if d.abort_reason:
            body.append(_text("Why it stopped", weight="Bolder"))
            body.append(_rich(_run(d.abort_reason)))
        for kind, items, total in (("errors", d.errors, d.error_count), ("warnings", d.warnings, d.warning_count)):
            if items:
                body.append(_text(_items_heading(kind, total, len(items)), weight="Bolder"))
                for item in items:
                    runs = []
                    if item.file:
                        runs.append(_run(item.file, weight="Bolder", fontType="Monospace"))
                    runs.append(_run((": " if item.file else "") + item.message))
                    body.append(_rich(*runs, spacing="Small"))
        if d.facts:
            body.append(_rich(_run("Import settings: " + "; ".join(
                f"{words} {value}" if value else words for words, value in d.facts), isSubtle=True)))
    elif a.details_unavailable:
        body.append(_rich(_run(f"No details from Canvas: {a.details_unavailable}", isSubtle=True)))

    footer = " · ".join(p for p in (f"Root account {a.root_account_uuid}" if a.root_account_uuid else "",
                                    f"account {a.account_id}" if a.account_id else "",
                                    f"alert {a.alert_id}" if a.alert_id else "") if p)
    if footer:
        body.append(_rich(_run(footer, isSubtle=True, size="Small")))
    card: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.4", "body": body, "msteams": {"width": "Full"}}
    if a.page_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the import in Canvas", "url": a.page_url}]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "content": card}]}


def _text(text: str, **style: str) -> dict[str, Any]:
    """A TextBlock: markdown is rendered, so only for this module's own words and numbers."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _run(text: str, **style: Any) -> dict[str, Any]:
    """A TextRun: no markdown is rendered in it, so untrusted text goes here (already cleaned; no
    mention either, even were a renderer to look for one)."""
    return {"type": "TextRun", "text": _unmention(text), **style}


def _rich(*runs: dict[str, Any], **style: str) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **style}
