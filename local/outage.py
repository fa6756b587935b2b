"""A local-only control route that takes SNS and SQS down for a while: `POST /_local/outage
{"seconds": 60}` (with the run's control key, like `/_local/reconcile`). Every SNS Publish and SQS
SendMessage of the run's functions then fails as a connection failure would, until the time is up:
the alert topic, the retry queue and the failure queue at once. No deployment has this route.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from botocore.exceptions import EndpointConnectionError

OUTAGE_CONTROL = "POST /_local/outage"
OPERATIONS = ("before-call.sns.Publish", "before-call.sqs.SendMessage")
MAX_SECONDS = 3600


class Outage:
    def __init__(self, clock: Any = time.monotonic):
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()
        self.refused = 0  # calls refused so far

    def install(self, session: Any) -> None:
        """On a boto3 session whose clients are yet to be made (hooks are copied into each client)."""
        for operation in OPERATIONS:
            session.events.register(operation, self._hook)

    def active(self) -> bool:
        return self._clock() < self._until

    def _hook(self, model: Any = None, **_: Any) -> None:
        if self.active():
            with self._lock:
                self.refused += 1
            raise EndpointConnectionError(endpoint_url=f"local outage ({getattr(model, 'name', 'call')})")

    def control(self, body: bytes) -> tuple[int, Any]:
        try:
            seconds = float(json.loads(body or b"{}").get("seconds"))
        except (ValueError, TypeError, AttributeError):
            seconds = -1.0
        if not 0 <= seconds <= MAX_SECONDS:
            return 400, {"error": f"seconds must be a number from 0 to {MAX_SECONDS}"}
        self._until = self._clock() + seconds
        print(f"[outage] SNS Publish and SQS SendMessage fail for {seconds:g} s", flush=True)
        return 200, {"seconds": seconds, "refused_so_far": self.refused}
