"""make run's school (local/school.py) with a stand-in reconciler: opened once, its past placed before its
first pass (under the reconciler's lock), the unusual import after it; then hourly imports once the story
has come to the import that resumed them. The Canvas simulator is real; times are relative to now."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from local.canvas_simulator import CanvasSimulator
from local.school import DELETED, School, instance_url


class Reconciler:
    def __init__(self, simulator: CanvasSimulator, app: SimpleNamespace):
        self.lock = threading.RLock()
        self.simulator, self.app, self.passes = simulator, app, []

    def run_pass(self, why: str) -> dict:
        taken = []  # a scheduled pass, on another thread, cannot take the lock: the school holds it
        other = threading.Thread(target=lambda: taken.append(self.lock.acquire(blocking=False)))
        other.start()
        other.join()
        assert taken == [False]
        self.passes.append((why, len(self.simulator.imports), [i.url for i in self.app.instances]))
        return {"instances": [{"url": i.url, "seen": len(self.simulator.imports)} for i in self.app.instances]}


def school(now: datetime) -> tuple[School, CanvasSimulator, Reconciler, threading.Event]:
    simulator = CanvasSimulator(token="t", seed=3)
    simulator.start()
    url = instance_url(simulator)
    app = SimpleNamespace(instances=[SimpleNamespace(url="http://127.0.0.1:1"), SimpleNamespace(url=url)])
    reconciler, stop = Reconciler(simulator, app), threading.Event()
    made = School(simulator, reconciler, app, stop)
    assert [i.url for i in app.instances] == ["http://127.0.0.1:1"]  # held back until the story starts
    return made, simulator, reconciler, stop


def test_opened_once_its_first_pass_between_its_past_and_the_unusual_import():
    now = datetime.now(timezone.utc)
    made, simulator, reconciler, stop = school(now)
    try:
        status, opened = made.open(now)
        assert status == 200 and len(opened["history"]) == 24
        # The first pass read the school with its 24 imports and not yet the unusual one.
        assert reconciler.passes == [("the school's first pass", 24, ["http://127.0.0.1:1", instance_url(simulator)])]
        unusual = simulator.sis_import(int(opened["unusual"]))
        assert unusual["data"]["counts"]["batch_enrollments_deleted"] == DELETED
        assert unusual["created_at"] == (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        last = simulator.sis_import(int(opened["history"][-1]))["created_at"]
        assert last == (now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, again = made.open(now)
        assert status == 409 and "played already" in again["error"] and len(reconciler.passes) == 1
    finally:
        stop.set()
        simulator.stop()


def test_hourly_imports_start_only_after_the_import_that_resumed_them():
    now = datetime.now(timezone.utc)
    made, simulator, reconciler, stop = school(now)
    made.check_seconds = 0.05
    try:
        made.open(now - timedelta(hours=2))  # the story two hours back, so that its resumption is an hour old
        time.sleep(0.5)
        assert len(simulator.imports) == 25  # the silence is the story's: nothing is made up for it
        simulator.school_import(now - timedelta(minutes=61))  # the import that resumed the rhythm
        deadline = time.monotonic() + 10
        while len(simulator.imports) < 27 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(simulator.imports) == 27
        time.sleep(0.5)
        assert len(simulator.imports) == 27  # the next one an hour after it, not before
        newest = simulator.sis_import(max(simulator.imports))
        assert newest["workflow_state"] == "imported" and newest["created_at"] >= now.strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        stop.set()
        simulator.stop()
