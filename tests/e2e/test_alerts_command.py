"""`make alerts`: the notifications file's newest alerts, as an email subscriber reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "alert_failed_import.json").read_text())
EMAIL = (ROOT / "examples" / "alert_failed_import.txt").read_text()


def alerts(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "local.alerts", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NOTIFICATIONS_FILE": str(path)}, timeout=60)


def line(sis_batch_id: str) -> str:
    """A notifications-file line as the run writes it (local.pollers), from an SNS envelope."""
    from local.pollers import notification_line

    message = {**EXAMPLE, "sis_batch_id": sis_batch_id}
    return json.dumps(notification_line({"Subject": f"SIS import {sis_batch_id} failed",
                                         "Message": json.dumps(message), "MessageAttributes": {}}))


def test_the_newest_alerts_read_as_their_email_oldest_first(tmp_path):
    path = tmp_path / "notifications.jsonl"
    path.write_text("\n".join(line(str(n)) for n in range(1001, 1013)) + "\n")
    out = alerts(path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"10 of the 12 alerts in {path} (it keeps earlier runs' too), oldest first:")
    subjects = [row for row in out.stdout.splitlines() if row.startswith("SIS import ")]
    assert subjects == [f"SIS import {n} failed" for n in range(1003, 1013)]
    assert "\\n" not in out.stdout and '"workflow_state"' not in out.stdout  # text, not escaped JSON
    last = alerts(path, "--last", "1")
    assert [row for row in last.stdout.splitlines() if row.startswith("SIS import ")] == ["SIS import 1012 failed"]
    first_email_line = EMAIL.splitlines()[0].replace("1001", "1012")
    assert first_email_line in last.stdout
    assert len([r for r in alerts(path, "--all").stdout.splitlines() if r.startswith("SIS import ")]) == 12
    shown = json.loads(alerts(path, "--json", "--last", "2").stdout)
    assert [a["message"]["sis_batch_id"] for a in shown] == ["1011", "1012"]


def test_a_damaged_line_is_shown_not_fatal_and_no_file_is_one_line(tmp_path):
    path = tmp_path / "notifications.jsonl"
    path.write_text(line("1001") + "\n" + '{"subject": "cut sh' + "\n")
    out = alerts(path)
    assert out.returncode == 0 and "(line 2 is not JSON)" in out.stdout and "SIS import 1001 failed" in out.stdout
    missing = alerts(tmp_path / "none.jsonl")
    assert missing.returncode == 1 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "no alerts yet" in missing.stderr
    bad = alerts(path, "--last", "0")
    assert bad.returncode == 2 and "--last: '0': a whole number from 1" in bad.stderr
