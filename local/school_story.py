"""`make simulate`'s last part: the school's story (issue 17) on the run's second simulated Canvas, whose
past local/school.py places when asked (POST /_local/school). Checks that each of its alerts came exactly
once with its sentence: the unusual end, the missing imports, their resumption, the routine end of the
import that resumed them, and an unusual end whose figures Canvas withheld at first (alerted without
them, then followed up after the next pass); and that the school had no other alert."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.reconcile import describe, request_pass
from local.school import DELETED
from local.simulate import (ALERT_WAIT_SECONDS, OPENER, SETTLE_SECONDS, Simulator, SimulatorError, alert_line,
                            delivered_all, read_alerts, wait_for)


@dataclass
class Owed:
    what: str
    test: Any  # message -> bool

    def count(self, messages: list[dict[str, Any]]) -> int:
        return sum(1 for m in messages if self.test(m))


def school_owed(unusual: str, resumed: str | None, unread: str | None = None) -> list[Owed]:
    def end(sis_batch_id: str | None, flagged: bool) -> Any:
        return lambda m: (m.get("type") == "sis_import_finished" and str(m.get("sis_batch_id")) == sis_batch_id
                          and m.get("unusual") is flagged)

    owed = [Owed(f"import {unusual} alerted once as unusual, naming its 4,800 deleted enrollments and the usual range",
                 lambda m: end(unusual, True)(m) and any(
                     a.get("figure") == "enrollments_deleted" and a.get("value") == 4800 and "usually" in a.get(
                         "sentence", "") for a in m.get("anomalies") or [])),
            Owed("one sis_import_missing alert (missing) for the silent hours",
                 lambda m: m.get("type") == "sis_import_missing" and m.get("outcome") == "missing")]
    if resumed is not None:
        owed += [Owed(f"one sis_import_missing alert (resumed) naming import {resumed}",
                      lambda m: m.get("type") == "sis_import_missing" and m.get("outcome") == "resumed"
                      and str(m.get("sis_batch_id")) == resumed),
                 Owed(f"import {resumed} alerted once as a routine end (compared, not unusual)", end(resumed, False))]
    if unread is not None:
        owed += [Owed(f"import {unread} alerted once without its figures (Canvas throttled the notifier's reads)",
                      lambda m: end(unread, False)(m) and m.get("details") is None and not m.get("follow_up")),
                 Owed(f"import {unread} followed up once as unusual, its figures read after the next pass",
                      lambda m: end(unread, True)(m) and m.get("follow_up") is True and any(
                          a.get("figure") == "enrollments_deleted" for a in m.get("anomalies") or []))]
    return owed


def school_check(owed: list[Owed], messages: list[dict[str, Any]]) -> list[str]:
    wrong = [f"{'missing' if o.count(messages) == 0 else f'{o.count(messages)} alerts'}: {o.what}"
             for o in owed if o.count(messages) != 1]
    wrong += [f"unexpected alert: {alert_line(m)}" for m in messages if not any(o.test(m) for o in owed)]
    return wrong


def open_school(state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /_local/school: the school's past placed and its first pass done (local/school.py)."""
    request = urllib.request.Request(f"http://127.0.0.1:{state['port']}/_local/school", data=b"{}", method="POST",
                                     headers={"content-type": "application/json", "X-Local-Control": state["control_key"]})
    try:
        with OPENER.open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def play_school(state: dict[str, Any], notifications: Path, offset: int) -> list[str]:
    """The school's story; what is wrong (empty: as expected, or no school in this run)."""
    print("\nThe school (issue 17): unusual and missing imports", flush=True)
    if not state.get("school_url"):
        print("  this run has no school (its banner says why); nothing to play", flush=True)
        return []
    root = state["school_root_account_uuid"]

    def mine() -> list[dict[str, Any]]:
        return [a["message"] for a in read_alerts(notifications, offset) if a["message"].get("root_account_uuid") == root]

    try:
        status, opened = open_school(state)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"make simulate: the school could not be opened: {exc}", file=sys.stderr)
        return ["not opened"]
    if status == 409:
        print(f"  {opened.get('error')}", flush=True)
        return []
    if status != 200:
        print(f"make simulate: the school could not be opened: {status} {opened.get('error')}", file=sys.stderr)
        return ["not opened"]
    first = opened.get("first_pass") or {}
    history, unusual = opened["history"], opened["unusual"]
    print(f"  root account {root} (host {opened['hostname']})\n"
          f"  1. history   imports {history[0]}-{history[-1]}: {len(history)} hourly imports of about 340 "
          "enrollments, created 27 to 4 hours ago, no Live Event (as a new deployment finds them)\n"
          f"     {'':9} the school's first pass: seen {first.get('seen')}, {first.get('baseline_ends')} ends into its "
          "baseline, its rhythm learnt; nothing alerted\n"
          f"  2. unusual   import {unusual}: created 3 hours ago, imported, deleting 4,800 enrollments; Live Events "
          f"timed then\n     {'':9} expect: alerted once as unusual, with the usual range", flush=True)
    sim = Simulator(state["school_url"], state["control_key"])
    owed = school_owed(unusual, None)
    try:
        delivered_all(sim)
        wait_for(lambda: owed[0].count(mine()) >= 1, ALERT_WAIT_SECONDS)
        print("  3. silence   nothing created since; a pass now (the learnt rhythm allows 1.5 h):\n"
              f"     {'':9} expect: one sis_import_missing alert", flush=True)
        describe_lines(request_pass(state), root)
        wait_for(lambda: owed[1].count(mine()) >= 1, ALERT_WAIT_SECONDS)
        resumed = str(sim.call("POST", "school_import", {})["id"])
        print(f"  4. resumed   import {resumed}: created now, imported as usual; a pass:\n"
              f"     {'':9} expect: one resumed alert, and its end alerted as routine", flush=True)
        delivered_all(sim)
        describe_lines(request_pass(state), root)
        wait_for(lambda: school_owed(unusual, resumed)[3].count(mine()) >= 1, ALERT_WAIT_SECONDS)
        unread = str(sim.call("POST", "school_import", {"deleted": DELETED, "throttle_reads": 3})["id"])
        print(f"  5. unread    import {unread}: created now, deleting {DELETED:,} enrollments; Canvas throttles the "
              f"notifier's three reads of it:\n     {'':9} expect: its end alerted without figures, then, after a "
              "pass, one follow-up alert as unusual", flush=True)
        delivered_all(sim)
        wait_for(lambda: school_owed(unusual, resumed, unread)[4].count(mine()) >= 1, ALERT_WAIT_SECONDS)
        describe_lines(request_pass(state), root)
    except (SimulatorError, RuntimeError) as exc:
        print(f"make simulate: {exc}", file=sys.stderr)
        return [str(exc)]
    owed = school_owed(unusual, resumed, unread)
    if wait_for(lambda: not school_check(owed, mine()), ALERT_WAIT_SECONDS):
        time.sleep(SETTLE_SECONDS)  # a duplicate would show up now
    wrong = school_check(owed, mine())
    print(f"  the school's alerts: {'as expected' if not wrong else 'NOT as expected: ' + '; '.join(wrong)}",
          flush=True)
    for message in mine():
        said = [a.get("sentence") for a in message.get("anomalies") or []] or [
            message.get("summary") or message.get("anomaly_check") or "compared with its history: nothing unusual"]
        label = message.get("outcome") if message.get("type") == "sis_import_missing" else \
            f"import {message.get('sis_batch_id')} {message.get('workflow_state')}" + \
            (" (unusual)" if message.get("unusual") else "") + (" (follow-up)" if message.get("follow_up") else "")
        print(f"  {'':12} {message.get('type')} {label}: {' / '.join(str(x) for x in said if x)}", flush=True)
    return wrong


def describe_lines(summary: dict[str, Any], root: str) -> None:
    """The pass's lines for the school only."""
    school = [i for i in summary.get("instances") or [] if i.get("root_account_uuid") == root]
    lines = describe({"instances": school}).splitlines() if school else ["the pass did not read the school"]
    print("\n".join(f"     {'':9} {line}" for line in lines), flush=True)

