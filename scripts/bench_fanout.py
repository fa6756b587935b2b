"""A consortium's reconcile passes: N Canvas instances, each its own invocation (the schedule's fan-out).

The real reconciler and store on moto (in-process), one Canvas simulator per instance on 127.0.0.1, each
with `--per-day` imports a day over the 48-hour window (a root account of its own). Every invocation is a
cold container (a new Reconciler: the worst case), as the deployed function's `run(only=<instance>)`:
1. the first pass after the deploy (each instance's history learnt: baselines and rhythm seeded);
2. a pass an interval later, with one new import per instance, in a cold container (from the high-water mark);
3. the same with the mark lost (an older marker): the whole window listed, compared before any write.
Prints, per pass: the slowest and mean invocation, Canvas and DynamoDB requests per invocation, DynamoDB
writes, and whether the N invocations fit one interval at the stack's reserved concurrency. Asserts nothing.

    python -m scripts.bench_fanout [--instances 100] [--per-day 300] [--interval-minutes 5]
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from scripts.bench_env import prepare

prepare()

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--interval-minutes", type=int, default=5)
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from infra.reconciler import MAX_PARALLEL
    from local import resources
    from local.canvas_simulator import CanvasSimulator
    from sis_imports.adapters.canvas_api import CanvasApi
    from sis_imports.adapters.observability import metrics
    from sis_imports.adapters.store import BatchStore
    from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES
    from sis_imports.usecases.reconcile_pass import Instance, Reconciler
    from sis_imports.usecases.school_history import HistoryOptions, SchoolHistory

    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=48)
    now = [start]
    calls: collections.Counter[str] = collections.Counter()
    every = timedelta(days=1) / args.per_day
    rows = []
    with mock_aws():
        resources.create(token=None)
        session = boto3.Session()
        session.events.register("before-call.dynamodb", lambda model, **kw: calls.update([model.name]))
        store = BatchStore(session.client("dynamodb"), resources.TABLE_NAME, clock=lambda: now[0].timestamp())
        canvases = [CanvasSimulator(token="bench", clock=lambda: now[0], root_account_uuid=f"bench-root-{n:03d}",
                                    hostname=f"school{n}.example.edu") for n in range(args.instances)]
        for canvas in canvases:
            canvas.start()
        try:
            built = time.perf_counter()
            per_instance = int(48 * 3600 / every.total_seconds())
            for i in range(per_instance):  # every instance imports at the same rhythm, in step
                for canvas in canvases:
                    sis_id = canvas.create_import(at=now[0])
                    canvas.run(sis_id, "imported" if i % 10 else "imported_with_messages")
                now[0] += every
            built = time.perf_counter() - built
            apis = [CanvasApi(c.base_url, lambda: "bench", sleep=lambda s: None) for c in canvases]

            def invocations(label: str) -> None:
                durations, canvas_requests, dynamo, writes = [], [], [], []
                for api in apis:
                    reconciler = Reconciler(  # a cold container: nothing remembered
                        store, [Instance(a.base_url, a) for a in apis], allowed_root_accounts=None,
                        lookback_hours=48, stuck_minutes=dict(DEFAULT_STUCK_MINUTES), clock=lambda: now[0].timestamp(),
                        history=SchoolHistory(store, HistoryOptions()))
                    calls.clear()
                    began = time.perf_counter()
                    (summary,) = reconciler.run(only=api.base_url)["instances"]
                    durations.append(time.perf_counter() - began)
                    metrics.clear_metrics()  # each invocation's own, as Lambda's flush would leave them
                    canvas_requests.append(summary["requests"])
                    dynamo.append(sum(calls.values()))
                    writes.append(sum(calls[w] for w in WRITES))
                    if not summary["ok"]:
                        raise SystemExit(f"{label}: {summary['error']}")
                waves = math.ceil(len(apis) / min(len(apis), MAX_PARALLEL))
                rows.append((label, max(durations), statistics.mean(durations), statistics.mean(canvas_requests),
                             max(canvas_requests), statistics.mean(dynamo), max(writes), waves * max(durations)))

            invocations("1 first pass after the deploy")
            now[0] += timedelta(minutes=args.interval_minutes)
            for canvas in canvases:  # one new import each since
                canvas.run(canvas.create_import(at=now[0] - timedelta(minutes=2)), "imported")
            invocations("2 next interval, cold, 1 new import")
            now[0] += timedelta(minutes=args.interval_minutes)
            for canvas in canvases:
                store._client.update_item(TableName=resources.TABLE_NAME,
                                          Key=store.key(canvas.root_account_uuid, "#reconciler"),
                                          UpdateExpression="REMOVE listed_through")
            invocations("3 mark lost: whole window, cold")
        finally:
            for canvas in canvases:
                canvas.stop()
    period = args.interval_minutes * 60
    print(f"reconciler fan-out: {args.instances} instances x {args.per_day} imports a day "
          f"({per_instance} each in the 48 h window; built in {built:.0f} s), one cold invocation per instance, "
          f"moto DynamoDB, reserved concurrency {min(args.instances, MAX_PARALLEL)}, interval {period} s")
    print(f"{'pass':38} {'slowest s':>9} {'mean s':>7} {'canvas/inv':>10} {'max':>5} {'dynamodb/inv':>12} "
          f"{'max writes':>10} {'all done s':>10}  fits")
    for label, slowest, mean, requests, most, dynamo, writes, wall in rows:
        print(f"{label:38} {slowest:>9.1f} {mean:>7.2f} {requests:>10.1f} {most:>5} {dynamo:>12.1f} {writes:>10} "
              f"{wall:>10.0f}  {'yes' if wall <= period and slowest < 60 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
