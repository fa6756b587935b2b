"""Real concurrency: reconcile passes run back to back in two threads (two warm containers) against a
slow Canvas (each answer delayed up to 2 s, Canvas reading its data somewhere inside the delay), while
80 imports live their lives in real time and their Live Events reach the real store (moto) late,
shuffled and duplicated, from two delivery threads. Many ends happen while a pass waits for Canvas.

The promise, checked from the stream as Lambda would deliver it: every end of every import is alerted
exactly once (counted by batch and end state: no import here reaches one end state twice), and no
write ever moves a batch back in its life.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter, defaultdict

import boto3
import pytest
from moto import mock_aws

from local.canvas_simulator import CanvasSimulator
from sis_imports.adapters.canvas_api import CanvasApi
from sis_imports.core.events import parse_event
from sis_imports.adapters.publisher import AlertPublisher
from sis_imports.core.reconcile import DEFAULT_STUCK_MINUTES
from sis_imports.usecases.reconcile_pass import Instance, Reconciler
from sis_imports.core.states import RANK, WorkflowState
from sis_imports.adapters.store import BatchStore
from tests.aws_env import TABLE_NAME, AwsEnv

TOKEN = "race-canvas-token-7~SECRET"
IMPORTS = 80
ENDS = ("imported", "imported_with_messages", "failed", "failed_with_messages")


def history_of(image: dict) -> list[tuple]:
    return [(e["M"]["workflow_state"]["S"], e["M"]["event_time"]["S"], e["M"]["event_name"]["S"],
             e["M"].get("asked_at", {}).get("S")) for e in image["history"]["L"]]


class Atomic:
    """A client whose requests do not overlap: DynamoDB applies each request atomically, moto's
    in-process backend does not (a read can see an item half updated). Interleaving stays per request."""

    _lock = threading.Lock()

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            with self._lock:
                return method(*args, **kwargs)

        return call


class Deliveries:
    """Canvas's Live Events, each delivered 1-2 times, each copy 0-3 s late: shuffled by lateness."""

    def __init__(self, store: BatchStore, rng: random.Random):
        self._store, self._rng = store, rng
        self._heap: list[tuple[float, int, dict]] = []
        self._lock = threading.Condition()
        self._n = 0
        self.closed = False
        self.errors: list[BaseException] = []

    def on_event(self, event: dict) -> None:  # called by the simulator under its lock: never blocks
        with self._lock:
            for _ in range(self._rng.randint(1, 2)):
                self._n += 1
                heapq.heappush(self._heap, (time.monotonic() + self._rng.uniform(0, 3), self._n, event))
            self._lock.notify_all()

    def worker(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if self.closed and not self._heap:
                        return
                    self._lock.wait(0.05)
                _, _, event = heapq.heappop(self._heap)
            try:
                self._store.apply(parse_event(event))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)


def test_passes_racing_live_events_alert_every_end_once_and_never_move_a_batch_back():
    rng = random.Random(14)
    with mock_aws():
        env = AwsEnv.create()
        import sis_imports.usecases.notify as notifier

        store = BatchStore(Atomic(env.dynamodb), TABLE_NAME)
        deliveries = Deliveries(store, random.Random(7))
        simulator = CanvasSimulator(token=TOKEN, on_event=deliveries.on_event, answer_delay=2.0, seed=3,
                                    one_import_at_a_time=False)  # 80 lives overlapping: a test of timing
        simulator.start()
        windows: list[tuple[float, float]] = []  # each pass's Canvas requests: (sent, answered)

        def reconciler() -> Reconciler:
            api = CanvasApi(simulator.base_url, lambda: TOKEN, timeout=10)
            send = api._send

            def timed(*args, **kwargs):
                sent = time.time()
                try:
                    return send(*args, **kwargs)
                finally:
                    windows.append((sent, time.time()))

            api._send = timed
            return Reconciler(store, [Instance(simulator.base_url, api)], allowed_root_accounts=None,
                              lookback_hours=48, stuck_minutes={s: 10**6 for s in DEFAULT_STUCK_MINUTES})

        containers = [reconciler(), reconciler()]
        for container in containers:
            container.run()  # deployed before the first import: nothing to record
        stop = threading.Event()
        failures: list[str] = []

        def passes(container: Reconciler, offset: float) -> None:
            time.sleep(offset)
            while not stop.is_set():
                started = time.monotonic()
                for summary in container.run()["instances"]:
                    if not summary["ok"]:
                        failures.append(summary["error"])
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # a pass at least every second

        ends: dict[str, list[tuple[str, float]]] = defaultdict(list)  # the truth: each import's ends

        def life(sis_id: int) -> None:
            time.sleep(rng.uniform(0.1, 1.5))
            simulator.advance(sis_id, "importing")
            time.sleep(rng.uniform(0.1, 2.5))
            if rng.random() < 0.15:
                simulator.abort(sis_id, "api")  # no Live Event: only a pass can tell
                ends[str(sis_id)].append(("aborted", time.time()))
                return
            end = rng.choice(ENDS)
            simulator.advance(sis_id, end)
            ends[str(sis_id)].append((end, time.time()))
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.1, 2.0))
                partial = rng.random() < 0.5
                simulator.restore(sis_id, partial=partial)
                ends[str(sis_id)].append(("partially_restored" if partial else "restored", time.time()))

        workers = [threading.Thread(target=deliveries.worker) for _ in range(2)]
        reconcilers = [threading.Thread(target=passes, args=(c, n * 0.5)) for n, c in enumerate(containers)]
        for thread in workers + reconcilers:
            thread.start()
        lives = []
        for _ in range(IMPORTS):
            sis_id = simulator.create_import()
            thread = threading.Thread(target=life, args=(sis_id,))
            thread.start()
            lives.append(thread)
            time.sleep(rng.uniform(0.05, 0.4))
        for thread in lives:
            thread.join()
        deliveries.closed = True
        for thread in workers:
            thread.join()
        time.sleep(2.5)  # a last pass or two after everything: every silent abort is read
        stop.set()
        for thread in reconcilers:
            thread.join()
        simulator.stop()

        assert not deliveries.errors and not failures
        # The test's power: ends that happened while a pass waited for Canvas's answer.
        in_flight = sum(1 for batch in ends.values() for _, t in batch if any(a < t < b for a, b in windows))
        assert in_flight >= 10, in_flight

        records = env.new_stream_records()
        images: dict[str, list[dict]] = defaultdict(list)
        for record in records:
            image = record["dynamodb"].get("NewImage")
            if image and "workflow_state" in image:
                images[image["sis_batch_id"]["S"]].append(image)
        for sis_batch_id, seen in images.items():
            ranks = [RANK[WorkflowState(image["workflow_state"]["S"])] for image in seen]
            assert ranks == sorted(ranks), (sis_batch_id, [history_of(image) for image in seen])  # never back

        handler = notifier.Notifier(AlertPublisher(boto3.client("sns"), env.topic_arn))
        env._pending.extend(records)
        env.pump_stream(lambda event, context: handler.handle(event, context))
        alerted = Counter((a["message"]["sis_batch_id"], a["message"]["workflow_state"]) for a in env.alerts())
        expected = Counter((sis_id, state) for sis_id, batch in ends.items() for state, _ in batch)
        assert sum(expected.values()) >= IMPORTS
        assert alerted == expected, {"missing": expected - alerted, "repeated": alerted - expected}
        for sis_id in ends:
            batch = store.get(simulator.root_account_uuid, sis_id)
            assert batch.workflow_state.value == ends[sis_id][-1][0]
            ranks = [RANK[e.workflow_state] for e in batch.history]
            assert ranks == sorted(ranks), (sis_id, batch.history)
