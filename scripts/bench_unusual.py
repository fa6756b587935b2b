"""What the school's history costs (issue 17): DynamoDB requests and bytes per import end for the baseline,
and a reconcile pass's added cost with the missing-import check, for 1 and 100 root accounts.

The real store on moto (in-process), the real reconciler and notifier use cases, Canvas simulators on
127.0.0.1 holding 24 hourly imports each. Requests are counted with botocore's event hooks (per
operation); bytes are the JSON on the wire both ways, and the baseline item's size by DynamoDB's sizing
rule (what capacity is billed on). 100 root accounts are 100 Canvas instances in one Reconciler (one
scheduled invocation), each a simulator of its own. A pass's cost is measured with the history
(SchoolHistory) and without it, on the same imports. Prints figures; asserts nothing.

    python -m scripts.bench_unusual [--accounts 1 100]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import math
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from scripts.bench_env import prepare

prepare()


class Meter:
    """DynamoDB requests per operation and bytes on the wire (request and response bodies), by event hooks."""

    def __init__(self, session: Any):
        self.calls: collections.Counter[str] = collections.Counter()
        self.sent = self.received = 0
        self.items: list[dict[str, Any]] = []  # the items written whole, as sent
        session.events.register("before-parameter-build.dynamodb", self._params)
        session.events.register("before-send.dynamodb", self._send)
        session.events.register("after-call.dynamodb", self._answer)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "PutItem":
            self.items.append(params["Item"])
        elif model.name == "UpdateItem" and str(params.get("UpdateExpression", "")).startswith("SET #a0 "):
            # A whole history item (adapters/store/rhythm.py): `#aN` names the attribute `:vN` holds.
            names, values = params["ExpressionAttributeNames"], params["ExpressionAttributeValues"]
            self.items.append({**params["Key"], **{name: values[":v" + key[2:]] for key, name in names.items()
                                                   if key.startswith("#a") and ":v" + key[2:] in values}})

    def _send(self, request: Any, **_: Any) -> None:
        self.sent += len(request.body or b"")

    def _answer(self, http_response: Any, **_: Any) -> None:
        self.received += len(http_response.content or b"")

    def clear(self) -> None:
        self.calls.clear()
        self.items.clear()
        self.sent = self.received = 0

    def total(self) -> int:
        return sum(self.calls.values())


def item_size(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rule: names plus values (strings in UTF-8, binary its length, numbers about
    a byte per two digits plus one, lists and maps 3 bytes plus a byte per element)."""
    def value(v: dict[str, Any]) -> int:
        (kind, data), = v.items()
        if kind == "S":
            return len(data.encode())
        if kind == "B":  # bytes as handed to boto3 (base64 only on the wire)
            return len(data)
        if kind == "N":
            return (len(data.lstrip("-").replace(".", "").strip("0")) + 1) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(value(e) + 1 for e in data)
        if kind == "M":
            return 3 + sum(len(k.encode()) + value(e) + 1 for k, e in data.items())
        return len(str(data))
    return sum(len(name.encode()) + value(v) for name, v in item.items())


def schools(count: int, now: datetime) -> list[Any]:
    from local.canvas_simulator import CanvasSimulator

    made = []
    for n in range(count):
        canvas = CanvasSimulator(token="bench", seed=n, first_id=1000)
        canvas.history(24, last_at=now - timedelta(minutes=30))
        canvas.start()
        made.append(canvas)
    return made


def baseline_per_end(meter: Meter, store: Any) -> list[str]:
    """The reconciler's read and write of a shape's baseline for a new end, the notifier's read for its alert."""
    from sis_imports.core.alerts import Alert
    from sis_imports.core.reconcile import CanvasImport
    from sis_imports.core.unusual import figures_of, shape_of
    from sis_imports.usecases.school_history import HistoryOptions, SchoolHistory
    from sis_imports.usecases.unusual_ends import UnusualEnds

    from local.canvas_simulator import CanvasSimulator

    canvas = CanvasSimulator(token="bench", seed=7)
    now = datetime.now(timezone.utc)
    ids = canvas.history(31, last_at=now - timedelta(minutes=30))
    raws = [canvas.sis_import(i) for i in ids]
    uuid = canvas.root_account_uuid
    history = SchoolHistory(store, HistoryOptions())

    def record(raw: dict[str, Any]) -> None:
        answer = CanvasImport.of(raw, now.timestamp(), now.timestamp())
        history.record(uuid, "bench.test", [(answer, raw)], store.rhythm(uuid), now.timestamp())

    for raw in raws[:30]:  # 30 ends kept: the item at its full size
        record(raw)
    rhythm_size = item_size([i for i in meter.items if i["sis_batch_id"]["S"] == "#rhythm"][-1])
    history._store = _OnlyBaseline(store)  # the rhythm's read and write are the pass's (measured below)
    meter.clear()
    record(raws[30])
    rhythm_reads = 1  # record() is handed the rhythm: its GetItem is counted with the pass
    calls = dict(meter.calls)
    calls["GetItem"] = calls.get("GetItem", 0) - rhythm_reads
    size = item_size([i for i in meter.items if i["sis_batch_id"]["S"].startswith("#baseline#")][-1])
    lines = [f"  reconciler, a new successful end: {calls}, {meter.sent} bytes sent, {meter.received} received; "
             f"the baseline item with 30 ends: {size} bytes ({math.ceil(size / 4096)} RCU strongly consistent, "
             f"{math.ceil(size / 1024)} WCU); the rhythm item (30 creations): {rhythm_size} bytes"]
    lines += largest_items(meter, store, uuid, shape_of(raws[30]))

    unusual = UnusualEnds(store, sensitivity=5, min_history=10)
    batch = _Batch(uuid, str(ids[30]))
    details = {"figures": figures_of(raws[30]), "import_shape": shape_of(raws[30])}
    alert = Alert("s", {"type": "sis_import_finished", "alert_id": "x"}, {})
    for what, figures in (("routine", details["figures"]),
                          ("unusual: its batch marked too", {**details["figures"], "enrollments_deleted": 4800})):
        meter.clear()
        unusual.annotate(batch, alert, {**details, "figures": figures})
        lines.append(f"  notifier, an end's alert ({what}): {dict(meter.calls)}, {meter.sent} bytes sent, "
                     f"{meter.received} received")
    return lines


def largest_items(meter: Meter, store: Any, uuid: str, shape: str) -> list[str]:
    """The items at their largest, written through the store: a baseline of 30 ends with every figure present and
    the largest values Canvas reports (20-digit ids of one instance's id sequence, thousands of other imports
    apart; ends at any hour of a month; every count anywhere in 0 to 9,999,999; durations up to 10 days), and
    the rhythm at its full 120 creations (7-digit ids, hourly)."""
    import random

    from sis_imports.core.rhythm import KEEP as RHYTHM_KEEP
    from sis_imports.core.rhythm import Rhythm
    from sis_imports.core.unusual import FIGURES, KEEP, Baseline, End

    rng, now = random.Random(17), int(time.time())
    ids = sorted(rng.sample(range(98_765_432_109_876_500_000, 98_765_432_109_876_590_000), KEEP))
    times = sorted(now - rng.randrange(30 * 86_400) for _ in range(KEEP))
    ends = [End(str(i), t, {n: rng.randrange(864_000 if n == "duration_seconds" else 10_000_000) for n in FIGURES})
            for i, t in zip(ids, times)]
    ends[0] = End(ends[0].sis_batch_id, ends[0].ended_at, {n: 0 for n in FIGURES})  # each figure's full range
    ends[1] = End(ends[1].sis_batch_id, ends[1].ended_at,
                  {n: 863_999 if n == "duration_seconds" else 9_999_999 for n in FIGURES})
    meter.clear()
    store.save_baseline(Baseline(uuid, shape, tuple(ends), version=9_998))
    worst = item_size(meter.items[-1])
    creations = tuple((str(4_100_000 + 7 * n), now - 3_600 * (RHYTHM_KEEP - n)) for n in range(RHYTHM_KEEP))
    meter.clear()
    store.save_rhythm(Rhythm("w" + uuid[1:], creations, hostname="canvas.example.edu"))
    rhythm = item_size(meter.items[-1])
    return [f"  the baseline item at its largest (30 ends, every figure, 20-digit ids, counts to 9,999,999, "
            f"durations to 10 days; shape {shape!r}): {worst} bytes ({math.ceil(worst / 1024)} WCU); "
            f"the rhythm item at its full {RHYTHM_KEEP} creations: {rhythm} bytes ({math.ceil(rhythm / 4096)} RCU, "
            f"{math.ceil(rhythm / 1024)} WCU)"]


class _Batch:
    def __init__(self, root_account_uuid: str, sis_batch_id: str):
        self.root_account_uuid, self.sis_batch_id = root_account_uuid, sis_batch_id


class _OnlyBaseline:
    """The store with the rhythm's write left out, so that the baseline's cost per end is counted alone."""

    def __init__(self, store: Any):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save_rhythm(self, rhythm: Any) -> bool:
        return True


def passes(meter: Meter, store: Any, count: int, with_history: bool) -> list[tuple[str, int, dict[str, int], int,
                                                                                  int, float]]:
    from sis_imports.adapters.canvas_api import CanvasApi
    from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES
    from sis_imports.usecases.reconcile_pass import Instance, Reconciler
    from sis_imports.usecases.school_history import HistoryOptions, SchoolHistory

    now = datetime.now(timezone.utc)
    made = schools(count, now)
    try:
        instances = [Instance(c.base_url, CanvasApi(c.base_url, lambda: "bench", sleep=lambda s: None)) for c in made]
        reconciler = Reconciler(store, instances, allowed_root_accounts=None, lookback_hours=48,
                                stuck_minutes=dict(DEFAULT_STUCK_MINUTES),
                                history=SchoolHistory(store, HistoryOptions()) if with_history else None)
        rows = []
        for label in ("first pass (seeds)", "nothing new", "one new end each"):
            if label == "one new end each":
                for canvas in made:
                    canvas.school_import(now)
            meter.clear()
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # Powertools flushes its metrics every 100 values
                summary = reconciler.run()["instances"]
            took = time.perf_counter() - started
            canvas_requests = sum(s["requests"] for s in summary)
            rows.append((label, meter.total(), dict(meter.calls), meter.sent + meter.received, canvas_requests, took))
    finally:
        for canvas in made:
            canvas.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, nargs="+", default=[1, 100])
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from local import resources
    from sis_imports.adapters.store import BatchStore

    def fresh() -> tuple[Meter, Any]:
        resources.create(token=None)
        session = boto3.Session()
        meter = Meter(session)
        return meter, BatchStore(session.client("dynamodb"), resources.TABLE_NAME)

    print("the school's history, per import end (moto DynamoDB; a Canvas simulator)")
    with mock_aws():
        meter, store = fresh()
        for line in baseline_per_end(meter, store):
            print(line)
    print("\na reconcile pass with and without the school's history (baselines, rhythm, the missing-import check); "
          "N root accounts = N Canvas instances in one Reconciler, 24 hourly imports each")
    print(f"{'N':>4} {'pass':20} {'history':8} {'dynamodb':>8} {'bytes':>9} {'canvas':>6} {'s':>6}  by operation")
    for count in args.accounts:
        for with_history in (False, True):
            with mock_aws():
                meter, store = fresh()
                for label, total, calls, size, canvas, took in passes(meter, store, count, with_history):
                    print(f"{count:>4} {label:20} {'with' if with_history else 'without':8} {total:>8} {size:>9} "
                          f"{canvas:>6} {took:>6.2f}  {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
