"""`make alerts`: the local run's recent alerts, as an email subscriber reads them.

The run appends each alert to its notifications file (NOTIFICATIONS_FILE, .local/notifications.jsonl)
as one JSON line: handy for tools, not for people. This prints the newest few (10 by default) as their
email text under their subject, oldest first so that the newest ends next to the prompt. The file keeps
the alerts of earlier runs too (it is never truncated): the header says how many it holds.
`--json` prints the lines as they are, a JSON array alone on stdout. Needs no running `make run`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from local import settings


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every alert of the file; a line that is not JSON (cut short by a crash) is kept as its text."""
    alerts = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = {"subject": f"(line {number} is not JSON)", "message": raw}
        alerts.append(line if isinstance(line, dict) else {"subject": None, "message": line})
    return alerts


def as_read(line: dict[str, Any]) -> str:
    text = line.get("email")
    if not text:  # not an alert of ours (or from before alerts had an email part): its message, indented JSON
        message = line.get("message")
        text = message if isinstance(message, str) else json.dumps(message, indent=2, ensure_ascii=False)
    rule = "-" * 78
    return f"{rule}\n{line.get('subject') or '(no subject)'}\n{rule}\n{text.rstrip()}\n"


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make alerts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--last", type=positive, default=10, metavar="N", help="the newest N alerts (default 10)")
    parser.add_argument("--all", action="store_true", help="every alert in the file")
    parser.add_argument("--json", action="store_true", help="the lines as they are, as a JSON array")
    args = parser.parse_args(argv)
    path = settings.notifications_file()
    if not path.exists():
        print(f"make alerts: no alerts yet ({path} does not exist): start `make run`, then `make send` or "
              "`make simulate`", file=sys.stderr)
        return 1
    alerts = read_lines(path)
    shown = alerts if args.all else alerts[-args.last:]
    try:
        if args.json:
            print(json.dumps(shown, indent=2, ensure_ascii=False))
        elif not alerts:
            print(f"no alerts yet in {path}")
        else:
            print(f"{len(shown)} of the {len(alerts)} alerts in {path} (it keeps earlier runs' too), oldest first:\n")
            print("\n".join(as_read(line) for line in shown), end="")
        sys.stdout.flush()
    except BrokenPipeError:  # `make alerts | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
