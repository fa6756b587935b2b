"""`make simulate`: scenarios on the running `make run`'s Canvas simulator, then one reconcile pass,
then what the notifications file shows.

  normal        created, importing, imported; every Live Event delivered
  failure       ends failed_with_messages, with errors; every Live Event delivered
  silent abort  batch mode, importing, then aborted by its change_threshold: Canvas sends no event
  stuck         left in initializing, created (backdated) beyond the initializing threshold
  lost events   ends imported_with_messages; every one of its Live Events lost inside Canvas
  long import   batch mode, importing for over 2 h (backdated), now in cleanup_batch: not stuck
  queued        3 uploads (backdated) waiting in created behind the long import: queued, not stuck

After the pass and its alerts, Canvas goes on: the long import ends and the queued ones run in
turn, one at a time as Canvas runs them, each alerting once when it ends.

Then the school (a second simulated Canvas, local/school.py), on an hourly rhythm:

  history       24 hourly imports of about 340 enrollments, ended 27 to 4 hours ago, no Live Event;
                the school's first pass learns them (baseline, rhythm), alerting nothing
  unusual       3 hours ago, an import that deletes 4,800 enrollments: alerted once as unusual,
                with the usual range
  silence       nothing since: the next pass alerts one sis_import_missing (missing)
  resumed       an import now: the next pass alerts one sis_import_missing (resumed); its end is routine

Once per run (the school's past stays in the table); a later `make simulate` plays the rest alone.

The simulator is driven through its control routes (/_simulator/..., 127.0.0.1, with the run's
control key from its state file); the pass through the run's local-only POST /_local/reconcile.
Every wait is bounded. Exits 1 when an alert is missing, comes more than once, or was not owed. Needs the simulator:
a run started with CANVAS_API_URL has none.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from local import settings
from local.canvas_simulator import CONTROL_HEADER, event_time
from local.reconcile import describe, request_pass

DELIVERY_WAIT_SECONDS = 30  # the simulator's Live Events reaching the webhook
ALERT_WAIT_SECONDS = 30  # the alerts reaching the notifications file after the pass
SETTLE_SECONDS = 1.5  # after the last expected alert: time for a duplicate to show, if there were one
DEFAULT_STUCK_MINUTES = {"initializing": 60.0, "created": 60.0, "importing": 360.0, "cleanup_batch": 60.0}
QUEUED = 3
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 whatever HTTP_PROXY says


class SimulatorError(Exception):
    pass


class Simulator:
    """The control routes of the run's Canvas simulator."""

    def __init__(self, base_url: str, control_key: str):
        self.base_url, self.control_key = base_url, control_key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base_url}/_simulator/{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={CONTROL_HEADER: self.control_key, "content-type": "application/json"})
        try:
            with OPENER.open(request, timeout=15) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SimulatorError(f"the simulator answered {exc.code} to {method} /_simulator/{path}: "
                                 f"{exc.read().decode(errors='replace')[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SimulatorError(f"cannot reach the simulator at {self.base_url} "
                                 f"({getattr(exc, 'reason', exc)}); is `make run` still going?") from None

    def status(self) -> dict[str, Any]:
        return self.call("GET", "status")

    def create(self, **args: Any) -> int:
        return int(self.call("POST", "imports", args)["id"])

    def act(self, sis_id: int, action: str, **args: Any) -> dict[str, Any]:
        return self.call("POST", f"imports/{sis_id}/{action}", args)


# A Live Event and a reconcile pass may both report an end; it is alerted once, by whichever came first.
EITHER = ("live_event", "sis_import_api")


@dataclass
class Expected:
    """One alert owed for a batch: the message fields it must have."""

    fields: dict[str, Any]

    def matches(self, message: dict[str, Any]) -> bool:
        # A tuple: any of these values (how an end was learnt depends on who told it first).
        return all(message.get(k) in v if isinstance(v, tuple) else message.get(k) == v
                   for k, v in self.fields.items())

    def text(self) -> str:
        f = self.fields
        if f.get("type") == "sis_import_stuck":
            return f"one sis_import_stuck alert (state {f.get('workflow_state')})"
        how = f.get("detected_by")
        how = " or ".join(how) if isinstance(how, tuple) else how
        return f"one alert: {f.get('workflow_state')}, outcome {f.get('outcome')}, detected_by {how}"


@dataclass
class Scenario:
    """Imports played alike: each owes `alerts` once the pass is done, and `later` too once Canvas
    has gone on (`go_on`)."""

    name: str
    what: str
    expect: str
    sis_batch_id: str = ""
    alerts: list[Expected] = field(default_factory=list)
    later: list[Expected] = field(default_factory=list)
    more_ids: list[str] = field(default_factory=list)  # played alike with the first

    @property
    def ids(self) -> list[str]:
        return [self.sis_batch_id, *self.more_ids]

    def owed(self, gone_on: bool) -> list[Expected]:
        return self.alerts + self.later if gone_on else self.alerts

    @property
    def label(self) -> str:
        return f"import {self.ids[0]}" if len(self.ids) == 1 else f"imports {', '.join(self.ids)}"


def play(sim: Simulator, stuck_minutes: dict[str, float]) -> list[Scenario]:
    """Creates the imports; answers what each should come to. The long import and the queued ones
    come last: Canvas runs one import at a time, and they hold the slot until `go_on`."""
    now = datetime.now(timezone.utc)
    scenarios = []

    normal = sim.create()
    sim.act(normal, "run", outcome="imported")
    scenarios.append(Scenario(
        "normal", "created, importing, imported; every Live Event delivered",
        "alerted once, from its Live Event (or from a scheduled pass that read the end first: still once); "
        "the pass agrees and changes nothing", str(normal),
        [Expected({"type": "sis_import_finished", "workflow_state": "imported", "outcome": "success",
                   "detected_by": EITHER})]))

    failed = sim.create()
    sim.act(failed, "run", outcome="failed_with_messages",
            errors=[["enrollments.csv", "Unknown course id CRS-404 referenced in enrollment"],
                    ["users.csv", "user u-9 has no login id"]])
    scenarios.append(Scenario(
        "failure", "ends failed_with_messages, with 2 errors; every Live Event delivered",
        "alerted once, from its Live Event (or a scheduled pass that read it first); the pass changes nothing",
        str(failed),
        [Expected({"type": "sis_import_finished", "workflow_state": "failed_with_messages", "outcome": "failure",
                   "detected_by": EITHER})]))

    aborted = sim.create(options={"batch_mode": True, "batch_mode_term_id": "1", "change_threshold": 10})
    sim.act(aborted, "advance", state="importing")
    sim.act(aborted, "advance", state="cleanup_batch")  # the import has run; cleanup refuses to delete
    sim.act(aborted, "abort", how="change_threshold", deletes=250)
    scenarios.append(Scenario(
        "silent abort", "batch mode, importing (delivered), cleanup_batch, then aborted by change_threshold 10%: "
        "no Live Event",
        "alerted within one pass as aborted, outcome failure, detected_by sis_import_api (corrected importing -> "
        "aborted)", str(aborted),
        [Expected({"type": "sis_import_finished", "workflow_state": "aborted", "outcome": "failure",
                   "detected_by": "sis_import_api"})]))

    initializing = stuck_minutes["initializing"]
    backdated = now - timedelta(minutes=initializing + 30)
    stuck = sim.create(strand=True, at=event_time(backdated))
    scenarios.append(Scenario(
        "stuck", f"created at {event_time(backdated)} ({initializing + 30:g} min ago) and left in initializing "
        "(its sis_batch_created delivered)",
        f"alerted within one pass as sis_import_stuck (initializing longer than {initializing:g} min), "
        "once: later passes do not repeat it", str(stuck),
        [Expected({"type": "sis_import_stuck", "workflow_state": "initializing"})]))

    lost = sim.create(lose=["initializing", "created", "importing", "imported_with_messages"])
    sim.act(lost, "run", outcome="imported_with_messages")
    scenarios.append(Scenario(
        "lost events", "ends imported_with_messages; all 4 of its Live Events lost inside Canvas",
        "alerted within one pass with its real end, imported_with_messages, outcome warning, detected_by "
        "sis_import_api (counted as missed)", str(lost),
        [Expected({"type": "sis_import_finished", "workflow_state": "imported_with_messages", "outcome": "warning",
                   "detected_by": "sis_import_api"})]))

    imported = Expected({"type": "sis_import_finished", "workflow_state": "imported", "outcome": "success",
                         "detected_by": EITHER})
    ran = stuck_minutes["cleanup_batch"] + 70  # longer than cleanup_batch's limit, counted from the start
    long = sim.create(options={"batch_mode": True, "batch_mode_term_id": "1"},
                      at=event_time(now - timedelta(minutes=ran + 5)))
    start_next(sim, long, at=event_time(now - timedelta(minutes=ran)))
    sim.act(long, "advance", state="cleanup_batch")
    scenarios.append(Scenario(
        "long import", f"batch mode, importing since {ran:g} min ago, now in cleanup_batch (no Live Event)",
        f"no stuck alert from the pass (cleanup_batch counts from when it began, not from the start {ran:g} min "
        "ago); once it ends, one alert: imported", str(long), [], [imported]))

    waited = stuck_minutes["created"] + 30
    queued = [sim.create(at=event_time(now - timedelta(minutes=waited + 5 * (QUEUED - 1 - n))))
              for n in range(QUEUED)]
    scenarios.append(Scenario(
        "queued", f"{QUEUED} uploads created {waited:g} min ago or more, waiting in created behind the long import",
        f"no stuck alert (queued behind a running import, not stuck, though older than {stuck_minutes['created']:g} "
        "min); then each runs in turn and alerts once: imported", str(queued[0]), [], [imported],
        [str(n) for n in queued[1:]]))
    return scenarios


def go_on(sim: Simulator, scenarios: list[Scenario]) -> None:
    """Canvas after the pass: the long import ends, and its job starts each queued upload in turn."""
    by_name = {s.name: s for s in scenarios}
    sim.act(int(by_name["long import"].ids[0]), "advance", state="imported")
    for sis_id in by_name["queued"].ids:
        start_next(sim, int(sis_id))
        sim.act(int(sis_id), "advance", state="imported")


def start_next(sim: Simulator, expected: int, at: str | None = None) -> None:
    """What Canvas's job does when nothing runs: the oldest `created` import starts."""
    started = sim.call("POST", "start_next", {"at": at})["id"]
    if started != expected:
        raise SimulatorError(f"Canvas's job started import {started} where {expected} was next (an import left "
                             "running or waiting by an interrupted `make simulate`? restart `make run`)")


def read_alerts(path: Path, offset: int) -> list[dict[str, Any]]:
    """The notifications file's lines written after `offset` (complete lines only)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    lines = []
    for raw in data.split(b"\n")[:-1]:  # the last piece is empty or a line still being written
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("message"), dict):
            lines.append(line)
    return lines


def check(scenarios: list[Scenario], alerts: list[dict[str, Any]], root: str,
          gone_on: bool = True) -> dict[str, list[str]]:
    """Per scenario, what is wrong (empty: as expected), before or after Canvas has gone on."""
    problems: dict[str, list[str]] = {}
    for scenario in scenarios:
        wrong = []
        for sis_batch_id in scenario.ids:
            # A `resumed` sis_import_missing alert names the import that came: it is about the root account's
            # rhythm (enough `make simulate` runs in one `make run` teach it one), not about this import's life.
            mine = [a["message"] for a in alerts
                    if str(a["message"].get("sis_batch_id")) == sis_batch_id
                    and a["message"].get("root_account_uuid") == root
                    and a["message"].get("type") != "sis_import_missing"]
            where = f" (import {sis_batch_id})" if len(scenario.ids) > 1 else ""
            owed = scenario.owed(gone_on)
            for expected in owed:
                found = [m for m in mine if expected.matches(m)]
                if not found:
                    wrong.append(f"missing{where}: {expected.text()}")
                elif len(found) > 1:
                    wrong.append(f"{len(found)} alerts where one was owed{where}: {expected.text()}")
            extra = [m for m in mine if not any(e.matches(m) for e in owed)]
            wrong += [f"unexpected alert{where}: {alert_line(m)}" for m in extra]
        problems[scenario.name] = wrong
    return problems


def wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def delivered_all(sim: Simulator) -> None:
    if not wait_for(lambda: sim.status()["events_pending"] == 0, DELIVERY_WAIT_SECONDS):
        print(f"the simulator's Live Events were still being delivered after {DELIVERY_WAIT_SECONDS} s; "
              "going on anyway", flush=True)


def alert_line(message: dict[str, Any]) -> str:
    return (f"{message.get('type')} {message.get('workflow_state')} outcome {message.get('outcome')} "
            f"detected_by {message.get('detected_by')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make simulate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    state = settings.read_state()
    settings.loopback_only()
    if not state.get("simulator_url"):
        print(f"make simulate: this local run reconciles against {state.get('canvas_url') or 'another Canvas'} "
              "(CANVAS_API_URL) and has no simulator; start `make run` without CANVAS_API_URL to play scenarios",
              file=sys.stderr)
        return 2
    if not state.get("control_key"):
        print("make simulate: this local run has no control key (started by an older version?): restart `make run`",
              file=sys.stderr)
        return 2
    sim = Simulator(state["simulator_url"], state["control_key"])
    thresholds = dict(DEFAULT_STUCK_MINUTES)
    for part in str(state.get("stuck_minutes") or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() in thresholds:
            try:
                thresholds[name.strip()] = float(value)
            except ValueError:
                pass
    notifications = Path(state["notifications_file"])
    offset = notifications.stat().st_size if notifications.exists() else 0

    try:
        status = sim.status()
        root = status["root_account_uuid"]
        print(f"Canvas simulator at {sim.base_url} (root account {root}, host {status['hostname']})\n", flush=True)
        scenarios = play(sim, thresholds)
        for n, s in enumerate(scenarios, 1):
            print(f"  {n}. {s.name:12} {s.label}: {s.what}\n"
                  f"     {'':12} expect: {s.expect}", flush=True)
        print(flush=True)
        delivered_all(sim)
    except SimulatorError as exc:
        print(f"make simulate: {exc}", file=sys.stderr)
        return 1
    delivered = sim.status()
    print(f"Live Events: {delivered['events_announced'] - delivered['events_lost']} delivered to the webhook, "
          f"{delivered['events_lost']} lost inside Canvas (as announced so far)\n", flush=True)

    print("One reconcile pass now (as `make reconcile`):", flush=True)
    try:
        summary = request_pass(state)
    except RuntimeError as exc:
        print(f"make simulate: {exc}", file=sys.stderr)
        return 1
    print(describe(summary), flush=True)
    queued = sum(int(i.get("queued") or 0) for i in summary.get("instances") or [] if isinstance(i, dict))
    print(f"  queued behind a running import (not stuck): {queued}\n", flush=True)

    def settled(gone_on: bool) -> bool:
        return all(not p for p in check(scenarios, read_alerts(notifications, offset), root, gone_on).values())

    # The pass's alerts first (a wrong stuck alert among them would show now), then Canvas goes on.
    if wait_for(lambda: settled(False), ALERT_WAIT_SECONDS):
        time.sleep(SETTLE_SECONDS)
    print("Canvas goes on: the long import ends, and the queued ones run one at a time, each after the one "
          "ahead.\n", flush=True)
    try:
        go_on(sim, scenarios)
        delivered_all(sim)
    except SimulatorError as exc:
        print(f"make simulate: {exc}", file=sys.stderr)
        return 1
    done = wait_for(lambda: settled(True), ALERT_WAIT_SECONDS)
    if done:
        time.sleep(SETTLE_SECONDS)  # a duplicate would show up now
    alerts = read_alerts(notifications, offset)
    problems = check(scenarios, alerts, root)
    print(f"What {notifications} shows{'' if done else f' after {ALERT_WAIT_SECONDS} s'}:", flush=True)
    for s in scenarios:
        verdict = "as expected" if not problems[s.name] else "NOT as expected: " + "; ".join(problems[s.name])
        print(f"  {s.name:12} {s.label}: {verdict}", flush=True)
        for message in (a["message"] for a in alerts):
            if str(message.get("sis_batch_id")) in s.ids and message.get("root_account_uuid") == root:
                print(f"  {'':12} import {message.get('sis_batch_id')}: {alert_line(message)}", flush=True)
    from local.school_story import play_school  # the school's part (it imports this module's helpers)

    school_problems = play_school(state, notifications, offset)
    print("\nA second `make reconcile` should change nothing (and alert nothing).", flush=True)
    return 0 if all(not p for p in problems.values()) and not school_problems else 1


if __name__ == "__main__":
    sys.exit(main())
