"""The words of a chat message and the escapes that make untrusted text inert (chat/__init__.py says
which renderer needs which)."""

from __future__ import annotations

from typing import Any

from .frame import COUNT_LABELS, EMOJI, UNUSUAL_EMOJI, ZWSP, _Alert, _Details, _Item, _PLAIN_ID


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


def _emoji(a: _Alert) -> str:
    if a.unusual and a.outcome == "success":
        return UNUSUAL_EMOJI
    return EMOJI.get(a.outcome, "ℹ️")


def _unusual_suffix(a: _Alert) -> str:
    """After the headline, as the alert's subject says it."""
    if not a.unusual or a.missing:
        return ""
    return " (unusual, figures read later)" if a.follow_up else " (unusual)"


def _headline(a: _Alert, preposition: str, where: str, code: Any = lambda s: s) -> str:
    """What happened, in one line: `where` (untrusted) already made safe by the caller, ids by `code`."""
    if a.missing and a.outcome == "resumed":
        return f"SIS imports resumed {preposition} {where}"
    if a.missing:
        return f"No SIS import {preposition} {where} since {a.last_import_at or 'a while'}"
    batch = code(a.sis_batch_id) if a.sis_batch_id else "(no id)"
    return f"SIS {'restore of import' if a.restore else 'import'} {batch} {_ended(a)} {preposition} {where}" \
        + _unusual_suffix(a)


def _rhythm_words(a: _Alert, code: Any) -> str:
    """`learnt from the last 25 imports`, or the setting that gave it (as `code`)."""
    return a.rhythm if a.rhythm.startswith("learnt") else (f"set by {code(a.rhythm)}" if a.rhythm else "")


def _missing_facts(a: _Alert) -> list[tuple[str, str]]:
    """(label, value) of a missing or resumed import: this module's words, times and durations only."""
    usual = [("Usually every", duration_text(a.usual_seconds))] if a.usual_seconds else []
    if a.outcome == "resumed":
        return [("Outcome", "resumed"), ("Resumed at", a.resumed_at or "unknown"),
                ("Gap", duration_text(a.gap_seconds)), ("Last import before", a.last_import_at or "unknown"), *usual]
    return [("Outcome", a.outcome or "missing"), ("Last import", a.last_import_at or "unknown"), *usual,
            ("Expected by", a.expected_by or "unknown"), *([("Detected", a.detected_at)] if a.detected_at else [])]


def _missing_sentence(a: _Alert, preposition: str, where: str, code: Any) -> str:
    """The missing alert's summary in this module's words; `where` and the batch id made safe by the caller."""
    rhythm = _rhythm_words(a, code)
    if a.outcome == "resumed":
        batch = code(a.sis_batch_id) if a.sis_batch_id else "(no id)"
        return (f"SIS imports resumed {preposition} {where}: import {batch} was created at {a.resumed_at or 'an unknown time'}, "
                f"{duration_text(a.gap_seconds)} after the one before it.")
    usual = f"one usually comes every {duration_text(a.usual_seconds)}" + (f" ({rhythm})" if rhythm else "")
    return (f"No SIS import has been created {preposition} {where} since {a.last_import_at or 'an unknown time'}; "
            f"{usual}, so the next was expected by {a.expected_by or 'an unknown time'}.")


MISSING_STEP = "Check the SIS export and its upload job: did it run, and did its upload reach Canvas?"


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
    if a.missing:
        return [MISSING_STEP] if a.outcome == "missing" else []
    if a.unusual:
        steps.append("Check in Canvas that the unusual figures above were meant before the next import")
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



# --- shared by the markdown formats (Chatbot, Slack) --------------------------------------------


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
