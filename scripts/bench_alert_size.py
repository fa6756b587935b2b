"""The largest alert the code can produce, per channel, for the worst input Canvas can send.

For each kind of text (emoji, CJK, `"`, backslash, control characters, ASCII): a failed import whose
SisImport answer holds 24 errors and 24 warnings (Canvas's most) whose file names and messages are
500 characters of it, every setting 500 characters of it, the longest ids and host name, a late end
and a full history. The alert goes through the real code: alert_text.details_of, alerts.end_alert,
the publisher's Publish calls (measured as SNS counts them) and the chat formats. Prints bytes per
channel, and what the same alert would have cost as six escaped JSON copies; exits 1 if any is over
its limit.

    python -m scripts.bench_alert_size [--history 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))

KINDS = {"emoji": "😀", "cjk": "字", "quote": '"', "backslash": "\\", "control": "\x01", "ascii": "x"}
SNS_LIMIT = 262_144
TEAMS_LIMIT = 28_000
SLACK_TEXT_LIMIT = 3_000


def worst_alert(char: str, history: int) -> Any:
    from sis_imports.core.alert_text import details_of
    from sis_imports.core.alerts import end_alert, owed
    from sis_imports.core.batch import Batch, HistoryEntry
    from sis_imports.core.states import WorkflowState

    text = char * 500
    answer = {"workflow_state": "failed_with_messages", "batch_mode": True, "batch_mode_term_id": text,
              "multi_term_batch_mode": True, "diffing_data_set_identifier": text, "diffed_against_import_id": text,
              "diffing_threshold_exceeded": True, "change_threshold": 10, "skip_deletes": True,
              "processing_errors": [[text, text]] * 24, "processing_warnings": [[text, text]] * 24,
              "data": {"import_type": text, "counts": {key: 10**12 for key in (
                  "accounts", "terms", "abstract_courses", "courses", "sections", "xlists", "users", "user_observers",
                  "enrollments", "groups", "group_memberships", "grade_publishing_results", "admins", "change_sis_ids",
                  "logins", "error_count", "warning_count", "batch_courses_deleted", "batch_sections_deleted",
                  "batch_enrollments_deleted")}}}
    states = [WorkflowState.IMPORTING] * (history - 2) + [WorkflowState.FAILED_WITH_MESSAGES, WorkflowState.RESTORING]
    entries = tuple(HistoryEntry(state, f"2026-11-27T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                                 "sis_batch_updated") for n, state in enumerate(states))
    batch = Batch.from_item({
        "root_account_uuid": "U" * 128, "root_account_id": "1" * 128, "account_id": "2" * 128,
        "sis_batch_id": "9" * 128, "hostname": "h" * 249 + ".edu", "workflow_state": entries[-1].workflow_state.value,
        "event_time": entries[-1].event_time, "event_name": "sis_batch_updated",
        "first_event_at": entries[0].event_time,
        "history": [e.to_dict() for e in entries], "version": 1})
    (occurrence,) = owed(None, batch)
    return end_alert(batch, occurrence, details_of(answer))


def six_escaped_copies(alert: Any) -> int:
    """The former layout: the JSON (ASCII escapes) under six protocols, plus the email, escaped again."""
    from sis_imports.core.alert_text import email_text

    body = json.dumps(alert.message, separators=(",", ":"))
    per_protocol = {p: body for p in ("default", "email-json", "sqs", "lambda", "http", "https")}
    per_protocol.update(email=email_text(alert.message), sms=alert.subject)
    return len(json.dumps(per_protocol, separators=(",", ":")).encode()) + len(alert.subject)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=50, help="history entries (the table keeps 50 by default)")
    args = parser.parse_args()

    from sis_imports.core import chat
    from sis_imports.adapters.publisher import AlertPublisher, sns_size

    publisher = AlertPublisher(None, "arn:aws:sns:us-east-1:123456789012:" + "t" * 256,
                               "arn:aws:sns:us-east-1:123456789012:" + "c" * 256)
    over: list[str] = []
    largest = 0
    print(f"{'text':<10} {'SNS alert':>10} {'(6 copies)':>11} {'shrunk':>7} {'SNS chat':>9} {'Slack':>7} "
          f"{'Slack text':>10} {'blocks':>6} {'Teams':>7}")
    for kind, char in KINDS.items():
        alert = worst_alert(char, args.history)
        params = publisher.publish_params(alert)
        size = sns_size(params)
        largest = max(largest, size)
        shrunk = json.loads(json.loads(params["Message"])["default"]) != alert.message
        chat_size = sns_size(publisher.chat_params(alert))
        slack = chat.slack(alert.message)
        slack_bytes = len(json.dumps(slack, ensure_ascii=False).encode())
        texts = [b["text"]["text"] for b in slack["blocks"] if "text" in b and b["type"] == "section"]
        slack_text = max(len(t.encode("utf-16-le")) // 2 for t in texts)
        teams_bytes = len(json.dumps(chat.teams(alert.message), ensure_ascii=False).encode())
        print(f"{kind:<10} {size:>10,} {six_escaped_copies(alert):>11,} {'yes' if shrunk else 'no':>7} "
              f"{chat_size:>9,} {slack_bytes:>7,} {slack_text:>10,} {len(slack['blocks']):>6} {teams_bytes:>7,}")
        for name, value, limit in (("SNS alert", size, SNS_LIMIT), ("SNS chat", chat_size, SNS_LIMIT),
                                   ("Slack text", slack_text, SLACK_TEXT_LIMIT), ("Teams", teams_bytes, TEAMS_LIMIT),
                                   ("Slack blocks", len(slack["blocks"]), 50)):
            if value > limit:
                over.append(f"{kind}: {name} {value:,} > {limit:,}")
    print(f"largest SNS message: {largest:,} bytes (limit {SNS_LIMIT:,}); history of {args.history} entries")
    for line in over:
        print("OVER THE LIMIT:", line)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
