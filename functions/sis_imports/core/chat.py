"""Chat formats of an alert: AWS Chatbot custom notifications, Slack Block Kit, Teams Adaptive Cards.

Pure: no AWS import. Each formatter takes the alert message (the JSON the notifier publishes) and
reads only the fields it knows, one by one: whatever else a message carries (it carries no token,
verifier, login, IP address or user agent, but a future field might) never reaches a chat.

Text that comes from Canvas or from an uploader (error messages, file names, abort reasons, data set
identifiers, even ids and host names) is untrusted: it is cut to a length, stripped of control and
bidirectional characters, and made inert for the renderer that shows it, so that it can neither
mention anyone (`<!channel>`, `@here`), nor link, format or break out of a code block:

- Slack mrkdwn: `&`, `<`, `>` as Slack's entities; free text inside code blocks (backticks replaced);
  `@` followed by a zero-width space.
- AWS Chatbot (`client-markdown`, rendered as Slack's or Teams' markdown, whichever the channel is):
  `<`, `>` and backticks replaced by look-alikes (no entity or escape means the same on both), free
  text inside code blocks, `@` followed by a zero-width space.
- Teams: untrusted text only in `TextRun`s, which render no markdown; `TextBlock`s and `FactSet`s
  (which do) only hold this module's own words and numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .alert_text import shrink
from .untrusted import one_line

OUTCOMES = ("success", "warning", "failure", "stuck")
TYPES = ("sis_import_finished", "sis_restore_finished", "sis_import_stuck")

SHOWN_ERRORS = 5
SHOWN_WARNINGS = 3

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

# Each untrusted value is cut to this many characters before it is escaped.
MAX_ID = 128
MAX_FILE = 200
MAX_MESSAGE = 500
MAX_REASON = 1500
MAX_URL = 2000

EMOJI = {"success": "✅", "warning": "⚠️", "failure": "❌", "stuck": "⏳"}
TEAMS_COLOR = {"success": "Good", "warning": "Warning", "failure": "Attention", "stuck": "Warning"}
DETECTED_BY = {"live_event": "a Canvas Live Event", "sis_import_api": "the SIS Import API (reconciler)"}

# The counts Canvas keeps in an SIS import's data.counts, in the order shown, with their words;
# an unknown key is not shown (only known fields are read).
COUNT_LABELS = {
    "accounts": "accounts",
    "terms": "terms",
    "abstract_courses": "abstract courses",
    "courses": "courses",
    "sections": "sections",
    "xlists": "cross-listings",
    "users": "users",
    "logins": "logins",
    "enrollments": "enrollments",
    "admins": "admins",
    "user_observers": "observers",
    "group_categories": "group categories",
    "groups": "groups",
    "group_memberships": "group memberships",
    "grade_publishing_results": "grade publishing results",
    "change_sis_ids": "SIS id changes",
    "batch_courses_deleted": "courses deleted by batch mode",
    "batch_sections_deleted": "sections deleted by batch mode",
    "batch_enrollments_deleted": "enrollments deleted by batch mode",
}

_STATE = re.compile(r"[a-z][a-z_]{0,39}")
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d{1,9})?Z")
_PLAIN_ID = re.compile(r"[A-Za-z0-9.-]{1,128}")  # shown as is in markdown: nothing in it can format
# A link we show: https, a host, a path of unreserved characters; no query, no `@`, `&`, `|` or `>`,
# so that it reads the same in every renderer and inside a Slack `<url|text>` link.
_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~%/-]*)?")
_ALERT_ID = re.compile(r"[0-9a-f]{32}")
ZWSP = "\u200b"


# --- reading the message: known fields only ------------------------------------------------------


_clean = one_line  # the email's cleaning too (untrusted.py): one rule for every place Canvas's text shows


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _state(value: Any) -> str:
    return value if isinstance(value, str) and _STATE.fullmatch(value) else ""


def _time(value: Any) -> str:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    return f"{match[1]} {match[2]} UTC" if match else ""


def _url(value: Any) -> str:
    return value if isinstance(value, str) and len(value) <= MAX_URL and _URL.fullmatch(value) else ""


@dataclass(frozen=True)
class _Item:
    file: str
    message: str


@dataclass(frozen=True)
class _Details:
    counts: tuple[tuple[str, int], ...] | None  # None: Canvas gave none (a restore)
    error_count: int | None
    warning_count: int | None
    errors: tuple[_Item, ...]
    warnings: tuple[_Item, ...]
    facts: tuple[tuple[str, str], ...]  # (our words, untrusted identifier or "")
    abort_reason: str


@dataclass(frozen=True)
class _Alert:
    type: str
    sis_batch_id: str
    host: str
    root_account_uuid: str
    root_account_id: str
    account_id: str
    workflow_state: str
    previous_state: str
    current_state: str
    outcome: str
    late: bool
    started_at: str
    finished_at: str
    since: str
    duration: float | None
    page_url: str
    api_url: str
    detected_by: str
    alert_id: str
    details: _Details | None
    details_unavailable: str

    @property
    def restore(self) -> bool:
        return self.type == "sis_restore_finished"

    @property
    def stuck(self) -> bool:
        return self.type == "sis_import_stuck" or self.outcome == "stuck"


def _items(value: Any, shown: int) -> tuple[_Item, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for entry in value:
        if isinstance(entry, dict):
            item = _Item(_clean(entry.get("file"), MAX_FILE), _clean(entry.get("message"), MAX_MESSAGE))
            if item.file or item.message:
                out.append(item)
        if len(out) == shown:
            break
    return tuple(out)


def _details(value: Any) -> _Details | None:
    if not isinstance(value, dict):
        return None
    raw_counts = value.get("counts") if isinstance(value.get("counts"), dict) else {}
    counts = tuple((key, n) for key in COUNT_LABELS if (n := _count(raw_counts.get(key)))) if raw_counts else None
    abort_reason = _clean(value.get("abort_reason"), MAX_REASON)
    error_count = _count(value.get("error_count"))
    warning_count = _count(value.get("warning_count"))
    if error_count is None:
        error_count = _count(raw_counts.get("error_count"))
    if warning_count is None:
        warning_count = _count(raw_counts.get("warning_count"))
    facts: list[tuple[str, str]] = []
    import_type = _clean(value.get("import_type"), MAX_ID)
    if import_type:
        facts.append(("import type", import_type))
    if value.get("batch_mode") is True:
        term = _clean(value.get("batch_mode_term_id"), MAX_ID)
        facts.append(("batch mode, term", term) if term else ("batch mode", ""))
    if value.get("multi_term_batch_mode") is True:
        facts.append(("multi-term batch mode", ""))
    data_set = _clean(value.get("diffing_data_set_identifier"), MAX_ID)
    if data_set:
        facts.append(("diffing data set", data_set))
    against = _clean(value.get("diffed_against_import_id"), MAX_ID)
    if against:
        facts.append(("diffed against import", against))
    if value.get("diffing_threshold_exceeded") is True:
        facts.append(("diffing threshold exceeded", ""))
    threshold = value.get("change_threshold")
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 <= threshold <= 100:
        facts.append((f"change threshold {threshold:g}%", ""))
    if value.get("skip_deletes") is True:
        facts.append(("deletes skipped", ""))
    return _Details(
        counts=counts,
        error_count=error_count,
        warning_count=warning_count,
        # Canvas also records an abort's reason as a row without a file: shown once, as the reason.
        errors=tuple(e for e in _items(value.get("errors"), SHOWN_ERRORS + 1)
                     if not (abort_reason and not e.file and e.message in abort_reason))[:SHOWN_ERRORS],
        warnings=tuple(w for w in _items(value.get("warnings"), SHOWN_WARNINGS + 1)
                       if not (abort_reason and not w.file and w.message in abort_reason))[:SHOWN_WARNINGS],
        facts=tuple(facts),
        abort_reason=abort_reason,
    )


def _read(message: dict[str, Any]) -> _Alert:
    if not isinstance(message, dict):
        raise TypeError("an alert message is a JSON object")
    get = message.get
    duration = get("duration_seconds")
    outcome = get("outcome") if get("outcome") in OUTCOMES else ""
    return _Alert(
        type=get("type") if get("type") in TYPES else "",
        sis_batch_id=_clean(get("sis_batch_id"), MAX_ID),
        host=_clean(get("hostname"), MAX_ID),
        root_account_uuid=_clean(get("root_account_uuid"), MAX_ID),
        root_account_id=_clean(get("root_account_id"), MAX_ID),
        account_id=_clean(get("account_id"), MAX_ID),
        workflow_state=_state(get("workflow_state")),
        previous_state=_state(get("previous_state")),
        current_state=_state(get("current_state")),
        outcome=outcome,
        late=get("late") is True,
        started_at=_time(get("started_at")),
        finished_at=_time(get("finished_at")),
        since=_time(get("in_state_since")) or _time(get("started_at")),
        duration=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool)
        and 0 <= duration < 10**9 else None,
        page_url=_url(get("canvas_page_url")),
        api_url=_url(get("canvas_url")),
        detected_by=get("detected_by") if get("detected_by") in DETECTED_BY else "",
        alert_id=get("alert_id") if isinstance(get("alert_id"), str) and _ALERT_ID.fullmatch(get("alert_id")) else "",
        details=_details(get("details")),
        details_unavailable=_clean(get("details_unavailable"), MAX_REASON) if get("details") is None else "",
    )


# --- words -----------------------------------------------------------------------------------------


def _words(state: str) -> str:
    return state.replace("_", " ")


def duration_text(seconds: float | None) -> str:
    """`1 min 34 s`, `2 h 5 min`, `3 d 4 h`; `unknown` when the start was not seen."""
    if seconds is None:
        return "unknown"
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def _what(a: _Alert) -> str:
    """`SIS import 1440177`, `SIS restore of import 1440177`."""
    return f"SIS {'restore of import' if a.restore else 'import'} {a.sis_batch_id or '(no id)'}"


def _ended(a: _Alert) -> str:
    if a.stuck:
        return f"stuck in {_words(a.workflow_state) or 'a state'}"
    return _words(a.workflow_state) or "ended"


def _where_words(a: _Alert) -> tuple[str, str]:
    """(preposition, untrusted name): ("on", host) or ("in root account", id)."""
    if a.host:
        return "on", a.host
    return "in root account", a.root_account_id or a.root_account_uuid or "(unknown)"


def _count_text(d: _Details) -> str:
    if not d.counts:
        return "nothing created, updated or deleted"
    return ", ".join(f"{COUNT_LABELS[key]} {n:,}" for key, n in d.counts)


def _late_text(a: _Alert, code: Any) -> str:
    now = f" and is now {code(a.current_state)}" if a.current_state else ""
    return f"This end arrived late: the batch had already moved on{now}."


def _items_heading(kind: str, total: int | None, shown: int) -> str:
    """`Errors: 12 (5 shown)`; `Warnings: 1`."""
    if total is None or total <= shown:
        return f"{kind.capitalize()}: {max(total or 0, shown):,}"
    return f"{kind.capitalize()}: {total:,} ({shown} shown)"


def _next_steps(a: _Alert) -> list[str]:
    """What to do, in this module's own words (the URLs are checked: https, no odd characters)."""
    steps = []
    d = a.details
    if a.stuck:
        steps.append("Check the import in Canvas: it has been in this state longer than its threshold")
    elif a.late:
        steps.append("The batch has moved on since: check its current state before acting")
    if d and d.abort_reason:
        steps.append("Check why the import stopped (above) before importing again")
    elif d and d.errors:
        steps.append("Fix the rows the errors name, then import the corrected files again")
    elif a.outcome == "warning" and d and d.warnings:
        steps.append("Review the warnings; the import's page lists them all")
    if a.details_unavailable:
        steps.append("Canvas's details could not be read for this alert: the import's page has them")
    if a.page_url:
        steps.append(f"Open the import in Canvas: {a.page_url}")
    if a.api_url:
        steps.append(f"API record (needs a token with SIS import rights): {a.api_url}")
    return steps


# --- making text inert -----------------------------------------------------------------------------


def _unmention(text: str) -> str:
    return text.replace("@", "@" + ZWSP)


def _slack(text: str) -> str:
    """Untrusted text for Slack mrkdwn or plain_text: entities for its control characters, no mentions."""
    return _unmention(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _neutral(text: str) -> str:
    """Untrusted text for markdown rendered by another program (AWS Chatbot): look-alikes, no escapes."""
    return _unmention(text.replace("<", "‹").replace(">", "›").replace("`", "ˋ"))


def _no_ticks(text: str) -> str:
    return text.replace("`", "ˋ")


def _slack_code(text: str) -> str:
    """An identifier in Slack mrkdwn: as is when nothing in it can format, else inline code."""
    return text if _PLAIN_ID.fullmatch(text) else f"`{_slack(_no_ticks(text))}`"


def _chatbot_code(text: str) -> str:
    return text if _PLAIN_ID.fullmatch(text) else f"`{_neutral(text)}`"


def _state_code(state: str) -> str:
    return f"`{state}`"


def _units(text: str) -> int:
    """A text's length as chats count it, safely: UTF-16 code units (an emoji outside the basic plane
    is two), never fewer than Python's characters."""
    return len(text) + sum(1 for c in text if c > "\uffff") if not text.isascii() else len(text)


def _cut_units(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` units (a last resort: callers build texts that fit)."""
    if _units(text) <= limit:
        return text
    used = 0
    for i, c in enumerate(text):
        used += 2 if c > "\uffff" else 1
        if used > limit:
            return text[:i]
    return text


def _fit(raw: str, limit: int, escape: Any = lambda s: s) -> str:
    """`escape(raw)` in at most `limit` units: cut the raw text (never an entity or escape), then
    escape, ending with an ellipsis when cut."""
    text = escape(raw)
    if _units(text) <= limit:
        return text
    low, high = 0, len(raw)
    while low < high:  # the longest prefix whose escaped form, with the ellipsis, fits
        mid = (low + high + 1) // 2
        if _units(escape(raw[:mid])) + 1 <= limit:
            low = mid
        else:
            high = mid - 1
    return escape(raw[:low]) + "…"


def _code_block(raw_lines: list[str], limit: int, escape: Any) -> str:
    """Untrusted lines, escaped, in a code block of at most `limit` characters: whole lines while they
    fit, then the next one cut (before escaping, so that no entity is split), then nothing."""
    fence = "```"
    budget = limit - 2 * len(fence) - 2
    kept: list[str] = []
    used = 0
    for raw in raw_lines:
        line = escape(raw)
        sep = 1 if kept else 0
        if used + sep + _units(line) > budget:
            room = budget - used - sep
            if room > 20:
                kept.append(_fit(raw, room, escape))
            break
        kept.append(line)
        used += sep + _units(line)
    return f"{fence}\n" + "\n".join(kept) + f"\n{fence}"


def _item_line(item: _Item) -> str:
    """`file: message`, raw (escaped where it is shown)."""
    if item.file and item.message:
        return f"{item.file}: {item.message}"
    return item.file or item.message


def _slack_free(text: str) -> str:
    """Untrusted free text inside a Slack code block."""
    return _slack(_no_ticks(text))


# --- AWS Chatbot (Amazon Q Developer in chat applications) ---------------------------------------------

CHATBOT_DESCRIPTION = 3500  # what reads well in one chat message; Slack and Teams both take it


def chatbot(message: dict[str, Any]) -> dict[str, Any]:
    """The AWS Chatbot custom notification of an alert (publish it as the SNS message body)."""
    a = _read(message)
    preposition, where = _where_words(a)
    emoji = EMOJI.get(a.outcome, "ℹ️")
    title = f"{emoji} {_what_md(a, _chatbot_code)} {_ended(a)} {preposition} {_chatbot_code(where)}"
    summary = f"{_what(a)} {_ended(a)} {preposition} {where}"

    lines = [_outcome_line(a, _state_code)]
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

    keywords = [k for k in (a.outcome, a.workflow_state, "late" if a.late else "", "restore" if a.restore else "",
                            _neutral(_clean(a.host, 60))) if k]
    context = {
        "alert_id": a.alert_id,
        "root_account_uuid": _neutral(a.root_account_uuid),
        "account_id": _neutral(a.account_id),
        "sis_batch_id": _neutral(a.sis_batch_id),
        "workflow_state": a.workflow_state,
        "outcome": a.outcome,
        "late": "true" if a.late else "false",
        "current_state": a.current_state,
        "detected_by": a.detected_by,
        "duration_seconds": f"{a.duration:g}" if a.duration is not None else "",
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
        "threadId": _neutral(f"{a.root_account_uuid}/{a.sis_batch_id}"),  # one thread per batch
        "summary": _neutral(summary),
        "eventType": a.type or "sis_import_alert",
        "relatedResources": [url for url in (a.page_url, a.api_url) if url],
        "additionalContext": {k: v for k, v in context.items() if v},
    }
    return notification


def _what_md(a: _Alert, code: Any) -> str:
    """`_what` in markdown: the id as inline code when anything in it could format."""
    batch = code(a.sis_batch_id) if a.sis_batch_id else "(no id)"
    return f"SIS {'restore of import' if a.restore else 'import'} {batch}"


def _outcome_line(a: _Alert, code: Any) -> str:
    outcome = a.outcome or "unknown"
    if a.stuck:
        return f"Outcome: {outcome}, in {code(a.workflow_state)}" if a.workflow_state else f"Outcome: {outcome}"
    state = code(a.workflow_state) if a.workflow_state else "an end state"
    after = f", after {code(a.previous_state)}" if a.previous_state else ""
    return f"Outcome: {outcome} ({state}{after})"


def _time_lines(a: _Alert) -> list[str]:
    if a.stuck:
        return [f"In this state since {a.since}."] if a.since else []
    span = f" ({a.started_at} to {a.finished_at})" if a.started_at and a.finished_at else (
        f" (ended {a.finished_at})" if a.finished_at else "")
    return [f"Duration: {duration_text(a.duration)}{span}."]


def _facts_text(d: _Details, code: Any) -> str:
    parts = [f"{words} {code(value)}" if value else words for words, value in d.facts]
    return "Import settings: " + "; ".join(parts)


# --- Slack (incoming webhook, Block Kit) ---------------------------------------------------------------


def slack(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification's fallback) and Block Kit `blocks`."""
    a = _read(message)
    preposition, where = _where_words(a)
    emoji = EMOJI.get(a.outcome, "ℹ️")
    header = _fit(f"{emoji} {_what(a)} {_ended(a)} {preposition} {where}", SLACK_HEADER_TEXT, _slack)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]

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
    fallback = _fit(f"{emoji} {_what(a)} {_ended(a)} {preposition} {where} ({a.outcome or 'unknown'})",
                    SLACK_FALLBACK_TEXT, _slack)
    return {"text": fallback, "blocks": blocks[:SLACK_MAX_BLOCKS]}


def _slack_section(text: str) -> dict[str, Any]:
    # Every caller builds text within the limit (code blocks included); the cut is a last resort.
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut_units(text, SLACK_SECTION_TEXT)}}


def _slack_context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut_units(text, SLACK_CONTEXT_TEXT)}]}


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
    emoji = EMOJI.get(a.outcome, "ℹ️")
    body: list[dict[str, Any]] = [_rich(
        _run(f"{emoji} {_what(a)} {_ended(a)} {preposition} {where}", weight="Bolder", size="Medium",
             color=TEAMS_COLOR.get(a.outcome, "Default")))]

    # FactSet titles and values render markdown: only this module's words, states, times and numbers.
    facts = [("Outcome", a.outcome or "unknown")]
    if a.stuck:
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
    if a.late:
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


def wanted(message: dict[str, Any], outcomes: str) -> bool:
    """Whether a chat gets this alert: its `outcome` is one of `outcomes` (comma-separated, as the
    stack's `chat_outcomes`), the same test as an SNS filter policy on the `outcome` attribute."""
    allowed = {part.strip() for part in outcomes.split(",") if part.strip()}
    return isinstance(message, dict) and message.get("outcome") in allowed
