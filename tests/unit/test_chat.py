"""The chat formats of an alert (functions/sis_imports/core/chat/): snapshots, limits, and what never gets in.

Snapshots: tests/unit/snapshots/chat/<case>.<format>.json, one per alert case and format (chatbot,
slack, teams). Any change to a format fails its test. When the change is meant, regenerate them and
review the diff before committing:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/test_chat.py -q
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core import chat

SNAPSHOTS = Path(__file__).parent / "snapshots" / "chat"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
FORMATS = {"chatbot": chat.chatbot, "slack": chat.slack, "teams": chat.teams}

UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
HOST = "oxana.instructure.com"


def history(*states_times: tuple[str, str]) -> list[dict[str, str]]:
    return [{"workflow_state": s, "event_time": t, "event_name": "sis_batch_updated"} for s, t in states_times]


def base(**fields: Any) -> dict[str, Any]:
    message = {
        "type": "sis_import_finished",
        "alert_id": "5f0c6f1e9a7b4c2d8e3f1a2b3c4d5e6f",
        "root_account_uuid": UUID,
        "root_account_id": "21070000000000001",
        "account_id": "1",
        "sis_batch_id": "1440177",
        "workflow_state": "failed_with_messages",
        "previous_state": "importing",
        "outcome": "failure",
        "late": False,
        "current_state": "failed_with_messages",
        "hostname": HOST,
        "started_at": "2026-11-27T15:30:00.120Z",
        "finished_at": "2026-11-27T15:31:34.127Z",
        "duration_seconds": 94.007,
        "canvas_url": f"https://{HOST}/api/v1/accounts/1/sis_imports/1440177",
        "canvas_page_url": f"https://{HOST}/accounts/1/sis_import",
        "detected_by": "live_event",
        "details": None,
        "history": history(("initializing", "2026-11-27T15:30:00.120Z"), ("importing", "2026-11-27T15:30:06.501Z"),
                           ("failed_with_messages", "2026-11-27T15:31:34.127Z")),
    }
    message.update(fields)
    return message


def details(**fields: Any) -> dict[str, Any]:
    value = {
        "counts": {"accounts": 0, "terms": 1, "abstract_courses": 0, "courses": 12, "sections": 14, "xlists": 0,
                   "users": 10, "enrollments": 200, "admins": 0, "group_categories": 0, "groups": 0,
                   "group_memberships": 0, "grade_publishing_results": 0, "batch_courses_deleted": 0,
                   "batch_sections_deleted": 0, "batch_enrollments_deleted": 3, "error_count": 12,
                   "warning_count": 1},
        "error_count": 12,
        "warning_count": 1,
        "errors": [{"file": "enrollments.csv",
                    "message": f"Improper status \"activ\" for user_id s{n:04d} (line {n + 1})"} for n in range(1, 11)],
        "warnings": [{"file": "users.csv", "message": "user s0042 has a duplicate email address"}],
        "import_type": "instructure_csv",
        "batch_mode": False,
        "batch_mode_term_id": None,
        "diffing_data_set_identifier": None,
        "diffed_against_import_id": None,
        "diffing_threshold_exceeded": False,
        "change_threshold": None,
        "skip_deletes": False,
        "abort_reason": None,
    }
    value.update(fields)
    return value


CASES: dict[str, dict[str, Any]] = {
    # A failed import with Canvas's details: counts, 12 errors (Canvas gives the first 10), 1 warning.
    "failed_import": base(details=details()),
    # A restore's end that arrived after the batch had moved on (a second restore is under way).
    "late_restore": base(
        type="sis_restore_finished", workflow_state="partially_restored", previous_state="restoring",
        outcome="warning", late=True, current_state="restoring",
        started_at="2026-11-27T16:30:00.000Z", finished_at="2026-11-27T16:31:00.000Z", duration_seconds=60.0,
        details=details(counts={}, error_count=0, warning_count=2, errors=[],
                        warnings=[{"file": None, "message": "1 enrollment could not be restored"}]),
    ),
    # A batch-mode import that Canvas aborted on its change_threshold (no Live Event: the reconciler found it).
    "aborted_threshold": base(
        workflow_state="aborted", previous_state="importing", current_state="aborted",
        finished_at="2026-11-27T15:40:00.000Z", duration_seconds=599.88, detected_by="sis_import_api",
        details=details(
            counts={"users": 0, "enrollments": 0}, error_count=0, warning_count=1, errors=[],
            warnings=[{"file": None, "message": "Diffing threshold exceeded: 37% of enrollments would change "
                                                "(threshold 10%). Import aborted."}],
            batch_mode=True, batch_mode_term_id="sis_term_2026_fall", diffing_data_set_identifier="nightly_enrollments",
            diffed_against_import_id="1440100", diffing_threshold_exceeded=True, change_threshold=10,
            abort_reason="Diffing threshold exceeded: 37% of enrollments would change (threshold 10%). Import aborted.",
        ),
    ),
    # The same abort when Canvas did not answer the notifier in time: no details, and why.
    "aborted_no_details": base(
        workflow_state="aborted", previous_state="importing", current_state="aborted",
        finished_at="2026-11-27T15:40:00.000Z", duration_seconds=599.88, detected_by="sis_import_api",
        details=None, details_unavailable="Canvas did not answer within 3 seconds",
    ),
    # An import in `importing` past its threshold; nothing ended yet.
    "stuck_import": base(
        type="sis_import_stuck", workflow_state="importing", previous_state="created", outcome="stuck",
        current_state="importing", started_at="2026-11-27T09:00:00.000Z", finished_at=None, duration_seconds=None,
        in_state_since="2026-11-27T09:00:05.000Z", detected_by="sis_import_api", details=None,
    ),
}


def unusual_anomalies() -> list[dict[str, Any]]:
    """What the notifier adds to an unusual end: core/unusual.check against 24 usual ends (the issue's example)."""
    from sis_imports.core.unusual import End, check

    usual = [End(str(n), 1_790_000_000 + 86400 * n, {"enrollments_deleted": n % 13, "duration_seconds": 240 + n})
             for n in range(24)]
    result = check({"enrollments_deleted": 4800, "duration_seconds": 4200}, usual)
    assert [a.figure for a in result.anomalies] == ["enrollments_deleted", "duration_seconds"]
    return [a.to_dict() for a in result.anomalies]


def missing_rhythm(host: str | None = HOST, uuid: str = UUID) -> Any:
    """A root account that imported hourly for a day and then stopped: core/rhythm.step finds the gap."""
    from sis_imports.core.rhythm import Rhythm, step

    last = 1_795_000_000 - 1_795_000_000 % 3600
    creations = [(str(1440000 + n), last - 3600 * (23 - n)) for n in range(24)]
    rhythm = step(Rhythm(uuid, hostname=host), creations, now=last + 3 * 3600)
    assert rhythm.gap is not None
    return rhythm


def missing_message(**rhythm: Any) -> dict[str, Any]:
    from sis_imports.core.rhythm import missing_alert

    return missing_alert(missing_rhythm(**rhythm)).message


def resumed_message(**rhythm: Any) -> dict[str, Any]:
    from sis_imports.core.rhythm import resumed_alert, step

    gapped = missing_rhythm(**rhythm)
    resumed = step(gapped, [("1440999", gapped.last_import_at + 5 * 3600)], now=gapped.last_import_at + 5 * 3600 + 60)
    assert resumed.resumed is not None
    return resumed_alert(resumed).message


CASES.update({
    # A successful import that deleted far more than usual, and took far longer (the notifier's anomalies).
    "unusual_success": base(workflow_state="imported", outcome="success", current_state="imported",
                            started_at="2026-11-27T14:21:34.127Z", duration_seconds=4200.0,
                            anomalies=unusual_anomalies(), unusual=True,
                            details=details(error_count=0, warning_count=0, errors=[], warnings=[])),
    # A failure that is also unusual: says both.
    "unusual_failure": base(details=details(), anomalies=unusual_anomalies()[:1], unusual=True),
    # No import for three hours from a root account that imports hourly; then its end.
    "missing_imports": missing_message(),
    "missing_resumed": resumed_message(),
})


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_snapshot(case, fmt):
    path = SNAPSHOTS / f"{case}.{fmt}.json"
    text = dump(FORMATS[fmt](copy.deepcopy(CASES[case])))
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 to make it, then review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: if meant, UPDATE_SNAPSHOTS=1 (see top)"


def test_every_snapshot_file_belongs_to_a_case():
    expected = {f"{case}.{fmt}.json" for case in CASES for fmt in FORMATS}
    assert {p.name for p in SNAPSHOTS.glob("*.json")} == expected


# --- limits ------------------------------------------------------------------------------------------------


def slack_texts(message: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(where, text, limit) of every text in a Slack message."""
    out = [("text", message["text"], chat.SLACK_FALLBACK_TEXT)]
    for block in message["blocks"]:
        kind = block["type"]
        if kind == "header":
            out.append(("header", block["text"]["text"], chat.SLACK_HEADER_TEXT))
        elif kind == "section":
            if "text" in block:
                out.append(("section", block["text"]["text"], chat.SLACK_SECTION_TEXT))
            for f in block.get("fields", []):
                out.append(("field", f["text"], chat.SLACK_FIELD_TEXT))
            assert len(block.get("fields", [])) <= chat.SLACK_MAX_FIELDS
        elif kind == "context":
            assert len(block["elements"]) <= 10
            out += [("context", e["text"], chat.SLACK_CONTEXT_TEXT) for e in block["elements"]]
        elif kind == "actions":
            for e in block["elements"]:
                out.append(("button", e["text"]["text"], chat.SLACK_BUTTON_TEXT))
                out.append(("url", e["url"], chat.SLACK_URL))
        else:
            raise AssertionError(f"unexpected block {kind}")
    return out


def utf16_units(text: str) -> int:
    """A length as a JavaScript client counts it (an emoji outside the basic plane is 2): never under Slack's."""
    return len(text.encode("utf-16-le")) // 2


def sent_bytes(value: Any) -> int:
    """The bytes of the JSON as it goes out (chat_webhook and the publisher write UTF-8, not escapes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def assert_within_limits(message: dict[str, Any]) -> None:
    slack = chat.slack(message)
    assert 1 <= len(slack["blocks"]) <= 50
    for where, text, limit in slack_texts(slack):
        assert 0 < utf16_units(text) <= limit, (where, utf16_units(text))
        if where in ("section", "context", "field"):
            assert text.count("```") % 2 == 0, text  # every code block closed
    teams = chat.teams(message)
    assert sent_bytes(teams) <= 28_000  # Teams' message limit (about 28 KB)
    bot = chat.chatbot(message)
    assert utf16_units(bot["content"]["description"]) <= chat.CHATBOT_DESCRIPTION
    assert bot["content"]["description"].count("```") % 2 == 0
    assert sent_bytes(bot) < 256 * 1024 - 4096  # SNS, with room for attributes


HUGE = "x" * 100_000


def huge_message() -> dict[str, Any]:
    many = [{"file": f"{HUGE}{n}.csv", "message": f"{n} {'<!channel> &' * 20_000}"} for n in range(10)]
    return base(sis_batch_id="9" * 128, hostname="h" * 8000 + ".example", details=details(
        errors=many, warnings=many, error_count=10**9, warning_count=10**9,
        abort_reason="&" * 200_000, diffing_data_set_identifier=HUGE, batch_mode=True, batch_mode_term_id=HUGE,
        counts={k: 10**12 for k in chat.COUNT_LABELS}))


def test_slack_stays_within_its_limits_with_huge_error_messages():
    message = huge_message()
    assert_within_limits(message)
    (errors,) = [b for b in chat.slack(message)["blocks"]
                 if b["type"] == "section" and "Errors" in b.get("text", {}).get("text", "")]
    text = errors["text"]["text"]
    assert text.startswith("*Errors: 1,000,000,000 (5 shown)*\n```\n") and text.endswith("…\n```")
    assert not re.search(r"&(?!amp;|lt;|gt;)", text)  # the cut never splits an entity


WORST_CHARS = {"emoji": "😀", "cjk": "字", "quote": '"', "backslash": "\\", "rtl": "\u202e", "ampersand": "&"}


def worst_message(char: str) -> dict[str, Any]:
    """The most Canvas can put in an alert's details (alert_text.details_of keeps 10 rows of 500 characters
    a file and a message, settings of 500), all in one character, with the longest ids and host name."""
    rows = [{"file": char * 500, "message": char * 500} for _ in range(10)]
    return base(sis_batch_id="9" * 128, account_id="1" * 128, root_account_uuid="U" * 128,
                hostname="h" * 249 + ".edu", late=True, current_state="restoring", details=details(
                    errors=rows, warnings=rows, error_count=10**9, warning_count=10**9, abort_reason=char * 500,
                    import_type=char * 500, batch_mode=True, batch_mode_term_id=char * 500,
                    diffing_data_set_identifier=char * 500, diffed_against_import_id=char * 500,
                    diffing_threshold_exceeded=True, change_threshold=10, skip_deletes=True,
                    counts={k: 10**12 for k in chat.COUNT_LABELS}))


@pytest.mark.parametrize("name", sorted(WORST_CHARS))
def test_every_chat_format_fits_its_limits_with_the_worst_canvas_text(name):
    message = worst_message(WORST_CHARS[name])
    assert_within_limits(message)
    assert sent_bytes(chat.teams(message)) <= chat.TEAMS_MAX_BYTES
    # Still an alert worth reading: the first error, however shortened, and the counts.
    if name != "rtl":  # an override is dropped as it is read: nothing of it is left to show
        for fmt in FORMATS:
            assert WORST_CHARS[name] * 20 in json.dumps(FORMATS[fmt](message), ensure_ascii=False) \
                .replace("&amp;", "&").replace("\\\\", "\\").replace('\\"', '"'), fmt
        assert "Errors: 1,000,000,000" in json.dumps(chat.teams(message))


def test_an_abort_reason_recorded_as_an_error_row_is_shown_once():
    terms = "Terms not found. Multi-term batch mode needs the terms of the batch in the import."
    message = base(workflow_state="aborted", details=details(
        errors=[{"file": None, "message": terms}], warnings=[], error_count=1, warning_count=0,
        abort_reason=terms, multi_term_batch_mode=True))
    for fmt in FORMATS:
        text = json.dumps(FORMATS[fmt](message), ensure_ascii=False)
        assert text.count(terms) == 1, fmt
        assert "multi-term batch mode" in text, fmt


def test_the_cases_are_within_the_limits():
    for message in CASES.values():
        assert_within_limits(message)


text_value = st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=300),
                       st.sampled_from(["<!channel>", "@here", "```", "`", "*x*", "<https://evil.example|x>", "&lt;"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({k: text_value for k in (
        "sis_batch_id", "hostname", "root_account_uuid", "root_account_id", "account_id", "workflow_state",
        "previous_state", "current_state", "started_at", "finished_at", "canvas_url", "canvas_page_url",
        "details_unavailable", "alert_id", "outcome", "type", "detected_by")}),
    items=st.lists(st.fixed_dictionaries({"file": text_value, "message": text_value}), max_size=12),
    reason=text_value,
    late=st.one_of(st.booleans(), st.none(), st.text(max_size=3)),
    duration=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text(max_size=3)),
)
def test_any_message_formats_within_the_limits_and_without_raw_mentions(fields, items, reason, late, duration):
    message = base(**fields, late=late, duration_seconds=duration,
                   details=details(errors=items, warnings=items, abort_reason=reason))
    assert_within_limits(message)
    for text in all_texts(message, "slack", "chatbot"):  # a Teams TextRun shows `<` as it is: no markup there
        assert "<!" not in text and "<@" not in text and "<#" not in text
    for text in all_texts(message):
        assert not re.search(r"@(here|channel|everyone)", text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({k: text_value for k in (
        "hostname", "root_account_uuid", "sis_batch_id", "last_import_at", "expected_by", "alert_after",
        "detected_at", "resumed_at", "rhythm", "usual_interval_seconds", "gap_seconds", "detected_by", "alert_id")}),
    outcome=st.sampled_from(["missing", "resumed", "", None, "failure"]),
    anomalies=st.one_of(st.none(), text_value, st.lists(st.one_of(
        text_value, st.fixed_dictionaries({"sentence": text_value})), max_size=12)),
)
def test_any_missing_alert_or_anomaly_list_formats_within_the_limits(fields, outcome, anomalies):
    """A missing-import alert, and an end's anomalies, whatever their fields hold."""
    for message in ({**fields, "type": "sis_import_missing", "outcome": outcome},
                    base(anomalies=anomalies, unusual=True, outcome=outcome or "success")):
        assert_within_limits(message)
        for text in all_texts(message, "slack", "chatbot"):
            assert "<!" not in text and "<@" not in text and "<#" not in text
        for text in all_texts(message):
            assert not re.search(r"@(here|channel|everyone)", text)


# --- untrusted text is inert -----------------------------------------------------------------------------

NASTY_FILE = "<@U024BE7LH>`*evil*`_x_~y~.csv"
NASTY = "```<!channel> @here @channel <https://evil.example|click> *bold* _it_ [md](https://x.example) \u202egnp.exe"


def nasty() -> dict[str, Any]:
    return base(details=details(errors=[{"file": NASTY_FILE, "message": NASTY}] * 3,
                                abort_reason=NASTY, diffing_data_set_identifier="<!here>`x`"),
                details_unavailable=None)


def all_texts(message: dict[str, Any], *formats: str) -> list[str]:
    """Every string of the formats named (default: all three)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for name in formats or FORMATS:
        walk(FORMATS[name](copy.deepcopy(message)))
    return out


def test_slack_neutralises_mentions_links_and_code_fences():
    slack = chat.slack(nasty())
    text = json.dumps(slack, ensure_ascii=False)
    assert "<!channel>" not in text and "<@U024BE7LH>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "&lt;@\u200bU024BE7LH&gt;" in text
    assert "@\u200bhere" in text and "@here" not in text and "@channel" not in text
    assert "\u202e" not in text  # no right-to-left override: a file name reads as it is
    (errors,) = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"
                 and b.get("text", {}).get("text", "").startswith("*Errors")]
    assert errors.count("```") == 2  # ours: the message's fence became look-alike ticks
    assert "ˋˋˋ&lt;!channel&gt;" in errors


def test_chatbot_leaves_no_angle_bracket_backtick_or_mention_from_canvas():
    bot = chat.chatbot(nasty())
    description = bot["content"]["description"]
    assert "‹!channel›" in description and "‹@\u200bU024BE7LH›" in description
    # Every `<`, `>` and backtick left is ours: the code fences and the inline code of states/identifiers.
    assert "<" not in description and ">" not in description
    assert re.sub(r"```|`[a-z_]+`|`[^`]*`", "", description).count("`") == 0
    assert "@here" not in json.dumps(bot, ensure_ascii=False)


def test_teams_puts_canvas_text_only_in_text_runs_which_render_no_markdown():
    card = chat.teams(nasty())["attachments"][0]["content"]
    for element in card["body"]:
        if element["type"] in ("TextBlock", "FactSet"):
            text = json.dumps(element, ensure_ascii=False)
            assert "evil" not in text and "channel" not in text and "here" not in text, element
    runs = [r["text"] for e in card["body"] if e["type"] == "RichTextBlock" for r in e["inlines"]]
    assert any(NASTY_FILE.replace("@", "@\u200b") in r for r in runs) and any("<!channel>" in r for r in runs)


def test_a_link_is_only_an_https_canvas_url_without_query_or_odd_characters():
    for bad in ("javascript:alert(1)", "http://oxana.instructure.com/accounts/1/sis_import",
                "https://oxana.instructure.com/x?access_token=abc", "https://evil.example/a|b>c",
                "https://a@b.example/",
                "https://oxana.instructure.com/files/1/download?verifier=abc"):
        message = base(canvas_page_url=bad, canvas_url=bad)
        assert bad not in json.dumps([f(message) for f in FORMATS.values()], ensure_ascii=False)
        assert "actions" not in chat.teams(message)["attachments"][0]["content"]
        assert not [b for b in chat.slack(message)["blocks"] if b["type"] == "actions"]


# --- only known fields are read ------------------------------------------------------------------------

LEAKS = ("1398~EXAMPLEdoNotUseK9fT2LqZ", "verifier=SecretVerifier77", "mysisimporterlogin", "93.184.216.34",
         "python-requests/2.31.0", "Bearer 7~CanvasApiToken", "hunter2")


def leaky() -> dict[str, Any]:
    """An alert carrying what no alert should, in fields the formatters do not know (and in history)."""
    secret = {"access_token": LEAKS[0], "user_login": LEAKS[2], "client_ip": LEAKS[3], "user_agent": LEAKS[4]}
    attachment = {"url": f"https://oxana.instructure.com/files/9/download?{LEAKS[1]}", "verifier": "SecretVerifier77"}
    message = base(
        details=details(errors_attachment=attachment, user=secret, data={"supplied_batches": [LEAKS[6]]},
                        errors=[{"file": "users.csv", "message": "bad row", "row_info": LEAKS[2], "token": LEAKS[0]}],
                        counts={"users": 3, "logins_password": LEAKS[6], LEAKS[5]: 1}),
        **secret, authorization=LEAKS[5], url=f"https://x.example/?access_token={LEAKS[0]}", password=LEAKS[6],
        errors_attachment=attachment,
    )
    message["history"].append({"workflow_state": "imported", "event_time": "2026-11-27T15:32:00.000Z",
                               "event_name": "sis_batch_updated", "user_login": LEAKS[2], "client_ip": LEAKS[3]})
    return message


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_message_carrying_secrets_in_unknown_fields_leaks_none_of_them(fmt):
    text = json.dumps(FORMATS[fmt](leaky()), ensure_ascii=False)
    for secret in LEAKS + ("verifier", "access_token", "SecretVerifier77"):
        assert secret not in text, secret
    assert "bad row" in text  # the known fields still are


def test_the_formatters_do_not_change_the_message():
    message = CASES["failed_import"]
    before = copy.deepcopy(message)
    for fmt in FORMATS.values():
        fmt(message)
    assert message == before


def test_the_chatbot_notification_has_what_aws_chatbot_requires():
    bot = chat.chatbot(CASES["failed_import"])
    assert (bot["version"], bot["source"], bot["content"]["textType"]) == ("1.0", "custom", "client-markdown")
    assert bot["metadata"]["threadId"] == f"{UUID}/1440177"
    assert bot["metadata"]["eventType"] == "sis_import_finished"
    assert all(isinstance(v, str) for v in bot["metadata"]["additionalContext"].values())
    assert all(isinstance(v, str) for v in bot["content"]["keywords"] + bot["content"]["nextSteps"])


def test_wanted_is_an_outcome_filter_like_the_subscriptions():
    assert chat.wanted(CASES["failed_import"], "failure,warning,stuck")
    assert not chat.wanted(CASES["late_restore"], "failure, stuck")
    assert chat.wanted(CASES["stuck_import"], " stuck ")
    assert not chat.wanted({"type": "sis_import_finished"}, "failure")
    # Missing imports and their ends by their own outcomes.
    assert chat.wanted(CASES["missing_imports"], "failure,missing") and not chat.wanted(CASES["missing_imports"], "failure")
    assert chat.wanted(CASES["missing_resumed"], "resumed") and not chat.wanted(CASES["missing_resumed"], "missing")
    # `unusual`: any end found unusual, whatever its outcome; an unusual success only so (or by success).
    assert chat.wanted(CASES["unusual_success"], "failure,unusual")
    assert not chat.wanted(CASES["unusual_success"], "failure,warning,stuck,missing")
    assert chat.wanted(CASES["unusual_failure"], "unusual") and chat.wanted(CASES["unusual_failure"], "failure")
    assert not chat.wanted(CASES["failed_import"], "unusual")  # not unusual: not let in by it
    assert not chat.wanted({**CASES["unusual_success"], "unusual": "true"}, "unusual")  # the message's boolean only


def test_the_outcomes_match_the_stacks():
    from infra.config import CHAT_OUTCOMES, DEFAULTS

    assert set(CHAT_OUTCOMES) == set(chat.CHAT_CHOICES) == {*chat.OUTCOMES, chat.UNUSUAL}
    assert set(DEFAULTS["chat_outcomes"].split(",")) <= set(chat.CHAT_CHOICES)


def test_a_follow_up_says_its_figures_were_read_later_in_every_format():
    message = {**CASES["unusual_success"], "follow_up": True}
    said = " (unusual, figures read later)"
    assert chat.slack(message)["blocks"][0]["text"]["text"].endswith("imported on oxana.instructure.com" + said)
    assert chat.chatbot(message)["content"]["title"].endswith(said)
    assert chat.teams(message)["attachments"][0]["content"]["body"][0]["inlines"][0]["text"].endswith(said)
    for fmt in FORMATS:  # only a follow-up says so, and only the message's boolean makes one
        assert "figures read later" not in dump(FORMATS[fmt]({**message, "follow_up": "true"}))


def test_an_unusual_end_says_unusual_and_each_sentence_first():
    sentences = [a["sentence"] for a in unusual_anomalies()]
    message = CASES["unusual_success"]
    slack = chat.slack(message)
    assert slack["blocks"][0]["text"]["text"].endswith("imported on oxana.instructure.com (unusual)")
    assert slack["blocks"][1]["text"]["text"] == "*Unusual:*\n" + "\n".join(f"• {s}" for s in sentences)
    assert slack["text"].startswith("🔍")  # not the all-clear of a success
    bot = chat.chatbot(message)
    assert bot["content"]["description"].split("\n")[:3] == ["Unusual:", *(f"• {s}" for s in sentences)]
    assert bot["content"]["title"].endswith("(unusual)") and "unusual" in bot["content"]["keywords"]
    card = chat.teams(message)["attachments"][0]["content"]["body"]
    assert card[1] == {"type": "TextBlock", "text": "Unusual:", "wrap": True, "weight": "Bolder"}
    assert [b["inlines"][0]["text"] for b in card[2:4]] == [f"• {s}" for s in sentences]
    # A failure that is also unusual says both: its outcome and, first, what was unusual.
    failure = chat.chatbot(CASES["unusual_failure"])
    lines = failure["content"]["description"].split("\n")
    assert lines[:2] == ["Unusual:", f"• {sentences[0]}"] and lines[2].startswith("Outcome: failure")
    assert failure["content"]["title"].startswith("❌")
    # An end that was not unusual reads as before: no such line.
    for fmt in FORMATS:
        assert "Unusual" not in json.dumps(FORMATS[fmt](CASES["failed_import"]), ensure_ascii=False)


def test_a_missing_import_and_its_end_are_shown_in_every_format():
    missing, resumed = CASES["missing_imports"], CASES["missing_resumed"]
    slack = chat.slack(missing)
    header = slack["blocks"][0]["text"]["text"]
    assert header == f"⏰ No SIS import on {HOST} since {chat_time(missing['last_import_at'])}"
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert "*Outcome*\nmissing" in fields and "*Usually every*\n1 h" in fields
    assert f"*Expected by*\n{chat_time(missing['expected_by'])}" in fields
    text = json.dumps(slack, ensure_ascii=False)
    assert "learnt from the last 24 imports" in text and "upload job" in text
    bot = chat.chatbot(missing)
    assert bot["metadata"]["eventType"] == "sis_import_missing"
    assert bot["metadata"]["threadId"] == f"{UUID}/missing" == chat.chatbot(resumed)["metadata"]["threadId"]
    assert bot["content"]["nextSteps"] and not chat.chatbot(resumed)["content"]["nextSteps"]
    assert bot["content"]["description"].startswith(f"No SIS import has been created on {HOST} since ")
    card = chat.teams(missing)["attachments"][0]["content"]
    facts = dict((f["title"], f["value"]) for b in card["body"] if b["type"] == "FactSet" for f in b["facts"])
    assert facts["Outcome"] == "missing" and facts["Usually every"] == "1 h"
    # Its end: when, after how long, and which import.
    bot = chat.chatbot(resumed)
    assert bot["content"]["title"] == f"🔁 SIS imports resumed on {HOST}"
    assert "import 1440999 was created at" in bot["content"]["description"]
    assert "5 h after the one before it" in bot["content"]["description"]  # the last import to the next
    card = chat.teams(resumed)["attachments"][0]["content"]
    facts = dict((f["title"], f["value"]) for b in card["body"] if b["type"] == "FactSet" for f in b["facts"])
    assert (facts["Outcome"], facts["Gap"]) == ("resumed", "5 h")


def chat_time(iso: str) -> str:
    return f"{iso[:10]} {iso[11:19]} UTC"


@pytest.mark.parametrize("host", ["h" * 249 + ".edu", None])
@pytest.mark.parametrize("name", sorted(WORST_CHARS))
def test_a_missing_import_of_the_longest_host_and_uuid_fits_and_is_inert(host, name):
    """Its host name and root account uuid come from Canvas: the longest, of the worst characters."""
    uuid = WORST_CHARS[name] * 128 + "<!channel>@here"
    for message in (missing_message(host=host and WORST_CHARS[name] * 200 + host, uuid=uuid),
                    resumed_message(host=host, uuid=uuid)):
        assert_within_limits(message)
        for text in all_texts(message, "slack", "chatbot"):
            assert "<!" not in text
        for text in all_texts(message):
            assert not re.search(r"@(here|channel|everyone)", text)


def test_an_unusual_end_with_the_most_sentences_fits_beside_the_worst_canvas_text():
    many = [{"sentence": ("x" * 300) + f" {n}"} for n in range(20)]  # more and longer than ours ever are
    for name in sorted(WORST_CHARS):
        message = {**worst_message(WORST_CHARS[name]), "anomalies": many, "unusual": True}
        assert_within_limits(message)
        assert json.dumps(chat.slack(message), ensure_ascii=False).count("• x") == 8  # one per figure checked, at most


def test_module_is_pure():
    source = "\n".join(p.read_text() for p in Path(chat.__file__).parent.glob("*.py"))  # every format's module
    assert not re.search(r"^\s*(import|from)\s+(boto3|botocore|aws_lambda_powertools)", source, re.M)


@pytest.mark.parametrize(("seconds", "text"), [(None, "unknown"), (0.4, "0.4 s"), (9.96, "10 s"),
                                               (94.007, "1 min 34 s"), (600, "10 min"), (7500, "2 h 5 min"),
                                               (7200, "2 h"), (90000, "1 d 1 h")])
def test_durations_read_as_people_say_them(seconds, text):
    assert chat.duration_text(seconds) == text
