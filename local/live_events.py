"""The Canvas simulator's Live Events, delivered to the local webhook as Canvas's HTTPS transport does:
one POST per event, signed with the development key (SIS_AUTH=jwt, as "Sign Payload") or with
?token= (token mode), 15 s timeout, a few retries on a refusal. From a thread of its own, in the
order announced: the simulator only queues, so its HTTP answers never wait on a delivery.
"""

from __future__ import annotations

import queue
import threading
import urllib.error
from typing import Any

from local.send import Refused, label, send_https

RETRY_SECONDS = (0.5, 1.0, 2.0)  # Canvas: 3 more tries over 10-20 minutes; locally, sooner


class WebhookDelivery(threading.Thread):
    """`state` is what local.send needs of the run: port, auth, signing_key, jwt_issuer, token."""

    def __init__(self, stop: threading.Event, state: dict[str, Any]):
        super().__init__(name="canvas-live-events", daemon=True)
        self.stop_event, self.state = stop, state
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.delivered = self.refused = 0

    def enqueue(self, event: dict[str, Any]) -> None:
        """The simulator's on_event: never blocks."""
        self.queue.put_nowait(event)

    def pending(self) -> int:
        """Events queued or being delivered."""
        return self.queue.unfinished_tasks

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                event = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._deliver(event)
            finally:
                self.queue.task_done()

    def _deliver(self, event: dict[str, Any]) -> None:
        for attempt in range(len(RETRY_SECONDS) + 1):
            try:
                send_https(self.state, event)
                self.delivered += 1
                return
            except Refused as exc:
                reason = str(exc)
            except (urllib.error.URLError, OSError) as exc:
                reason = f"not reached ({getattr(exc, 'reason', exc)})"
            if attempt == len(RETRY_SECONDS) or self.stop_event.wait(RETRY_SECONDS[attempt]):
                break
        self.refused += 1
        print(f"[canvas] Live Event {label(event)} not delivered after {attempt + 1} tries: {reason}", flush=True)
