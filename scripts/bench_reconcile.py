"""What a reconcile pass costs, in Canvas requests and DynamoDB requests, for N imports in the window.

The real reconciler, the real store on moto (in-process) and the Canvas simulator on 127.0.0.1.
Pass 1 is a cold start (accounts/self, every answer a candidate); pass 2 has nothing to change;
pass 3 follows one abort and 10 old open batches; pass 4 is a cold container listing the whole window
again (its high-water mark lost), which compares with our table before it writes. Prints figures;
asserts nothing.

    python -m scripts.bench_reconcile [--imports 1000]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from datetime import datetime, timedelta, timezone

from scripts.bench_env import prepare

prepare()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imports", type=int, default=1000)
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from local import resources
    from local.canvas_simulator import CanvasSimulator
    from sis_imports.adapters.canvas_api import CanvasApi
    from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES
    from sis_imports.usecases.reconcile_pass import Instance, Reconciler
    from sis_imports.adapters.store import BatchStore

    now = [datetime.now(timezone.utc) - timedelta(hours=40)]
    calls: collections.Counter[str] = collections.Counter()
    with mock_aws():
        resources.create(token=None)
        session = boto3.Session()
        session.events.register("before-call.dynamodb", lambda model, **kw: calls.update([model.name]))
        store = BatchStore(session.client("dynamodb"), resources.TABLE_NAME, clock=lambda: now[0].timestamp())
        with CanvasSimulator(token="bench", clock=lambda: now[0]) as canvas:
            old_open = []
            for n in range(10):  # open batches created before the window: fetched by id
                old_open.append(canvas.create_import(strand=True))
                now[0] += timedelta(seconds=1)
            now[0] += timedelta(hours=40)  # they are now older than the 48 h window... almost
            for n in range(args.imports):
                sis_id = canvas.create_import()
                canvas.run(sis_id, "imported" if n % 10 else "failed_with_messages")
                now[0] += timedelta(seconds=5)
            api = CanvasApi(canvas.base_url, lambda: "bench", sleep=lambda s: None)
            reconciler = Reconciler(store, [Instance(canvas.base_url, api)], allowed_root_accounts=None,
                                    lookback_hours=48, stuck_minutes=dict(DEFAULT_STUCK_MINUTES),
                                    clock=lambda: now[0].timestamp())
            rows = []
            for label, before in (("pass 1 (cold start, first pass)", None), ("pass 2 (nothing changed)", None),
                                  ("pass 3 (one abort, old open batches)", "abort")):
                if before == "abort":
                    now[0] += timedelta(hours=10)  # the stranded ones are now older than the window
                    canvas.abort(old_open[0])
                calls.clear()
                started = time.perf_counter()
                (summary,) = reconciler.run()["instances"]
                took = time.perf_counter() - started
                rows.append((label, summary["seen"], summary["requests"], summary["throttled"], dict(calls),
                             summary["corrected"], summary["stuck"], took))
                now[0] += timedelta(minutes=5)
            # A cold container (nothing remembered) whose marker has no high-water mark: the whole window listed
            # again, every ended import compared with our table before any write.
            store._client.update_item(TableName=resources.TABLE_NAME, Key=store.key(canvas.root_account_uuid,
                                                                                      "#reconciler"),
                                      UpdateExpression="REMOVE listed_through")
            cold = Reconciler(store, [Instance(canvas.base_url, api)], allowed_root_accounts=None,
                              lookback_hours=48, stuck_minutes=dict(DEFAULT_STUCK_MINUTES),
                              clock=lambda: now[0].timestamp())
            calls.clear()
            started = time.perf_counter()
            (summary,) = cold.run()["instances"]
            took = time.perf_counter() - started
            rows.append(("pass 4 (cold container, whole window)", summary["seen"], summary["requests"],
                         summary["throttled"], dict(calls), summary["corrected"], summary["stuck"], took))
    print(f"reconcile pass, {args.imports} imports in the window (+10 stranded), Canvas simulator, moto DynamoDB")
    print(f"{'pass':38} {'seen':>5} {'canvas':>7} {'403/429':>7} {'corrected':>9} {'stuck':>5} {'s':>6}  dynamodb")
    for label, seen, requests, throttled, dynamo, corrected, stuck, took in rows:
        print(f"{label:38} {seen:>5} {requests:>7} {throttled:>7} {corrected:>9} {stuck:>5} {took:>6.1f}  {dynamo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
