"""One Lambda invocation at a time, as if each function ran in its own sandbox.

In AWS every function has its own process. Here they share one, and Powertools' logger keeps the
invocation's context (function name, request id, correlation id) in process-wide state: two
handlers running at once on different threads would stamp each other's log lines. The first
call of each handler also builds its boto3 clients, which is not safe to do on several threads
at once. Serialising invocations avoids both; locally nothing needs the throughput.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Callable

from local.lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

_LOCK = threading.Lock()

# POWERTOOLS_METRICS_DISABLED keeps EMF off the console, but Powertools still warns on every
# invocation that has no metrics; the warning says nothing about the pipeline.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def invoke(handler: Handler, event: dict[str, Any], function_name: str) -> Any:
    with _LOCK:
        return handler(event, LambdaContext(function_name=function_name))


def init(build: Callable[[], Any]) -> Any:
    """Lambda's init phase: build a handler's app (its clients and config) before any event."""
    with _LOCK:
        return build()
