"""`make reconcile`: one reconcile pass now, against the running `make run`, and what it found and changed.

The local run calls the real reconciler (handlers.reconciler) at start, every RECONCILE_SECONDS, and
when asked through its local-only control route `POST /_local/reconcile` (no deployment has it; in
AWS a schedule invokes the function). This module is both sides: `LocalReconciler` in the run, and
the command, which finds the run the way `make send` does (its state file) and prints the summary:
per Canvas instance, imports seen, states corrected, imports never heard of (missed), stuck, Canvas
requests and throttled answers, and each change. `--json` prints the summary as the function
returned it, alone on stdout (so that it pipes into jq or `python3 -m json.tool`). Exits 1 when a pass
failed for an instance.

The run also records its last pass (when, ok or not, why) in its state folder, for `make status`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from local import settings
from local.gateway import CONTROL_HEADER, RECONCILE_CONTROL

PASS_TIMEOUT_SECONDS = 300  # a pass against a throttling Canvas backs off; bounded all the same


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge schedule hands the function (the reconciler ignores it)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile-local"],
            "detail": {}}


def last_pass_file() -> Any:
    return settings.state_dir() / "reconcile-last.json"


def record_last_pass(summary: dict[str, Any] | None, error: str | None = None) -> None:
    """The pass's verdict for `make status`: when, whether every instance was read, the reasons (no token:
    the reconciler's errors never hold one). Tagged with this run's pid, so that a stale file is ignored."""
    instances = (summary or {}).get("instances") or []
    failures = [f"{i.get('url')}: {i.get('error')}" for i in instances if not i.get("ok")]
    if error:
        failures.append(error)
    record = {"pid": os.getpid(), "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "ok": not failures, "why": "; ".join(failures) or None}
    path = last_pass_file()
    try:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(path)  # whole or not at all, for a reader at the same moment
    except OSError:
        pass  # the state folder gone (the run stopping): nothing to tell


def read_last_pass(pid: Any) -> dict[str, Any] | None:
    """The last pass recorded by the run whose pid this is; None when it has recorded none."""
    try:
        record = json.loads(last_pass_file().read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("pid") == pid else None


def _state(value: Any) -> str:
    return "(never heard of)" if value is None else str(value)


def describe(summary: dict[str, Any]) -> str:
    """The summary in a few lines: one per instance, one per change."""
    instances = summary.get("instances") if isinstance(summary, dict) else None
    if not isinstance(instances, list):
        return f"reconcile: unexpected answer {json.dumps(summary)[:500]}"
    if not instances:
        return "reconcile: no Canvas instance configured (CANVAS_INSTANCES is empty)"
    lines = []
    for one in instances:
        root = one.get("root_account_uuid") or "?"
        head = f"reconcile {one.get('url')} (root account {root}{', first pass' if one.get('first_pass') else ''})"
        if not one.get("ok"):
            lines.append(f"{head}: FAILED: {one.get('error')}; nothing changed, the next pass tries again")
        else:
            lines.append(f"{head}: seen {one.get('seen', 0)}, corrected {one.get('corrected', 0)}, "
                         f"missed {one.get('missed', 0)}, stuck {one.get('stuck', 0)}; "
                         f"{one.get('requests', 0)} Canvas requests, {one.get('throttled', 0)} throttled")
        changes = one.get("changes") or []
        for change in changes:
            lines.append(f"  import {change.get('sis_batch_id')}: {_state(change.get('from'))} -> {change.get('to')}")
        if one.get("ok") and not changes:
            lines.append("  no change")
        if one.get("figures_rechecked"):
            lines.append(f"  the figures of {one['figures_rechecked']} end(s) Canvas did not give when alerted: "
                         "asked for again")
    return "\n".join(lines)


def eventful(summary: dict[str, Any]) -> bool:
    """Whether a scheduled pass is worth a console line (a failure, a change, a stuck import, figures asked for again)."""
    return any(not i.get("ok") or i.get("changes") or i.get("stuck") or i.get("first_pass")
               or i.get("figures_rechecked")
               for i in summary.get("instances") or [])


class LocalReconciler(threading.Thread):
    """In the run: the reconciler function every `interval` seconds, and on request, one pass at a
    time (local.invoke serialises it with the other functions)."""

    def __init__(self, stop: threading.Event, handler: Callable[[dict[str, Any], Any], Any], interval: float):
        super().__init__(name="reconciler", daemon=True)
        self.stop_event, self.handler, self.interval = stop, handler, interval
        self.last: dict[str, Any] | None = None
        self.first_pass_now = False  # a pass as soon as the thread starts, then every interval
        self.lock = threading.RLock()  # held by a pass; local/school.py holds it across its first pass too

    def run_pass(self, why: str, quiet: bool = False) -> dict[str, Any]:
        from local.invoke import invoke

        try:
            with self.lock:
                summary = invoke(self.handler, scheduled_event(), "reconciler")
        except Exception as exc:  # in AWS: a failed invocation, retried by the next schedule
            if not self.stop_event.is_set():  # on shutdown moto goes away under it: not worth a word
                print(f"[reconcile] ({why}) the function raised {type(exc).__name__}: {exc}", flush=True)
                record_last_pass(None, f"the function raised {type(exc).__name__}: {exc}")
            raise
        self.last = summary
        record_last_pass(summary)
        if not quiet or eventful(summary):
            print(f"[reconcile] ({why})\n" + describe(summary), flush=True)
        return summary

    def run(self) -> None:
        if self.first_pass_now:
            try:
                self.run_pass("at start")
            except Exception:
                pass
        while not self.stop_event.wait(self.interval):
            try:
                self.run_pass(f"every {self.interval:g} s", quiet=True)
            except Exception:
                pass  # said above; the next pass tries again

    def control(self, body: bytes) -> tuple[int, Any]:
        """The local-only route behind `make reconcile`."""
        try:
            return 200, self.run_pass("make reconcile")
        except Exception as exc:
            return 500, {"error": f"the reconciler raised {type(exc).__name__}: {exc}"}


def request_pass(state: dict[str, Any], timeout: float = PASS_TIMEOUT_SECONDS) -> dict[str, Any]:
    """One pass in the running local run; its summary. RuntimeError with a reason when it could not run."""
    if not state.get("control_key"):
        raise RuntimeError("this local run has no control route (started by an older version?): restart `make run`")
    url = f"http://127.0.0.1:{state['port']}{RECONCILE_CONTROL.split(' ', 1)[1]}"
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "content-type": "application/json", CONTROL_HEADER: state["control_key"]})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error")
        except (ValueError, AttributeError):
            reason = None
        raise RuntimeError(f"the local run answered {exc.code}" + (f": {reason}" if reason else "")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"cannot reach the local run ({getattr(exc, 'reason', exc)}); "
                           "is `make run` still going?") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make reconcile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the function's summary as JSON")
    args = parser.parse_args(argv)
    state = settings.read_state()
    settings.loopback_only()
    try:
        summary = request_pass(state)
    except RuntimeError as exc:
        print(f"make reconcile: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(summary, indent=2) if args.json else describe(summary), flush=True)
    except BrokenPipeError:  # `make reconcile | head`: the reader has gone; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if all(i.get("ok") for i in summary.get("instances") or []) else 1


if __name__ == "__main__":
    sys.exit(main())
