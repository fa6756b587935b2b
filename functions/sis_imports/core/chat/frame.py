"""The frame every chat format shares: the alert message read field by field (known fields only),
the limits of untrusted values, and which outcomes a chat gets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..untrusted import one_line


OUTCOMES = ("success", "warning", "failure", "stuck", "missing", "resumed")
TYPES = ("sis_import_finished", "sis_restore_finished", "sis_import_stuck", "sis_import_missing")
# Not an outcome: any end the notifier found unusual (its `unusual` attribute), whatever its outcome.
UNUSUAL = "unusual"
CHAT_CHOICES = (*OUTCOMES, UNUSUAL)  # what `chat_outcomes` may name
SHOWN_ANOMALIES = 8  # one per figure core/unusual.py checks

SHOWN_ERRORS = 5
SHOWN_WARNINGS = 3


# Each untrusted value is cut to this many characters before it is escaped.
MAX_ID = 128
MAX_FILE = 200
MAX_MESSAGE = 500
MAX_REASON = 1500
MAX_URL = 2000
MAX_SENTENCE = 160  # an anomaly's sentence (ours: about 90 at most), so that eight fit any format

EMOJI = {"success": "✅", "warning": "⚠️", "failure": "❌", "stuck": "⏳", "missing": "⏰", "resumed": "🔁"}
UNUSUAL_EMOJI = "🔍"  # a success that is unusual: not the all-clear of ✅
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
# The rhythm's source as core/rhythm.py words it; anything else is not shown.
_RHYTHM = re.compile(r"learnt from the last \d{1,5} imports|expected_import_every")
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
    # An end the notifier compared with the school's usual ends: its sentences, in the message's order.
    anomalies: tuple[str, ...] = ()
    unusual: bool = False
    follow_up: bool = False  # the same end, alerted before without its figures (core/alerts.follow_up)
    # A missing import (type sis_import_missing): the rhythm it was measured against.
    last_import_at: str = ""
    expected_by: str = ""
    detected_at: str = ""
    resumed_at: str = ""
    usual_seconds: float | None = None
    gap_seconds: float | None = None
    rhythm: str = ""

    @property
    def missing(self) -> bool:
        return self.type == "sis_import_missing"

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


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 <= value < 10**9 else None


def _anomalies(value: Any) -> tuple[str, ...]:
    """The sentences of the notifier's anomalies (our words; cleaned all the same, as any field is)."""
    if not isinstance(value, list):
        return ()
    sentences = (_clean(a.get("sentence"), MAX_SENTENCE) for a in value if isinstance(a, dict))
    return tuple(s for s in sentences if s)[:SHOWN_ANOMALIES]


def _read(message: dict[str, Any]) -> _Alert:
    if not isinstance(message, dict):
        raise TypeError("an alert message is a JSON object")
    get = message.get
    duration = get("duration_seconds")
    anomalies = _anomalies(get("anomalies"))
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
        duration=_seconds(duration),
        page_url=_url(get("canvas_page_url")),
        api_url=_url(get("canvas_url")),
        detected_by=get("detected_by") if get("detected_by") in DETECTED_BY else "",
        alert_id=get("alert_id") if isinstance(get("alert_id"), str) and _ALERT_ID.fullmatch(get("alert_id")) else "",
        details=_details(get("details")),
        details_unavailable=_clean(get("details_unavailable"), MAX_REASON) if get("details") is None else "",
        anomalies=anomalies,
        unusual=get("unusual") is True or bool(anomalies),
        follow_up=get("follow_up") is True,
        last_import_at=_time(get("last_import_at")),
        expected_by=_time(get("expected_by")),
        detected_at=_time(get("detected_at")),
        resumed_at=_time(get("resumed_at")),
        usual_seconds=_seconds(get("usual_interval_seconds")),
        gap_seconds=_seconds(get("gap_seconds")),
        rhythm=get("rhythm") if isinstance(get("rhythm"), str) and _RHYTHM.fullmatch(get("rhythm")) else "",
    )



def wanted(message: dict[str, Any], outcomes: str) -> bool:
    """Whether a chat gets this alert: its `outcome` is one of `outcomes` (comma-separated, as the
    stack's `chat_outcomes`), or `unusual` is among them and the end was found unusual: the same test
    as the webhook subscriptions' SNS filter policy on the `outcome` and `unusual` attributes."""
    allowed = {part.strip() for part in outcomes.split(",") if part.strip()}
    if not isinstance(message, dict):
        return False
    return message.get("outcome") in allowed or (UNUSUAL in allowed and message.get("unusual") is True)
