"""The scheduled reconcile pass: Canvas's SIS Import API is the truth, events the fast path.

Catches what Live Events cannot tell: `aborted` (no event), imports stuck in a state, and lost
events. A failed pass is counted (`ReconcileFailures`) and changes nothing; the next one retries.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.reconcile_pass import Reconciler

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> Reconciler:
    return wiring.reconciler()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The schedule invokes once per Canvas instance, naming it; without a name, every instance in turn.
    only = event.get("instance") if isinstance(event, dict) else None
    summary = app().run(only=only if isinstance(only, str) else None)
    for instance in summary["instances"]:
        logger.info("reconcile pass", extra={k: v for k, v in instance.items() if k != "changes"})
    return summary


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
