"""Powertools logger and metrics shared by the handlers (service and namespace from env)."""

from __future__ import annotations

import json
import os
from functools import partial

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "canvas-sis-imports")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CanvasSisImports")

# ASCII-only JSON: text that is not valid Unicode (a lone surrogate in an event) is escaped rather
# than failing the write to stdout, so that no log line is ever lost to odd characters.
logger = Logger(
    service=SERVICE,
    json_serializer=partial(json.dumps, default=str, separators=(",", ":"), ensure_ascii=True),
)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Metrics no alarm reads: emitted only with DETAILED_METRICS=true (context detailed_metrics, or dashboard,
# which draws them), since each costs $0.30 a month and the notifier's and the ingest's a log blob per call.
# What they count is had otherwise: EventsApplied is EventsAccepted less EventsLate and EventsDuplicate;
# AlertsPublished is the alert topic's own NumberOfMessagesPublished (free); the imports finished, by outcome
# and with their durations, are the alerts themselves and the list route; ImportsSeen, CanvasRequests and
# ImportsOpen are in each reconcile pass's log line (`seen`, `requests`, `open`).
DETAILED_ONLY = frozenset({"EventsApplied", "AlertsPublished", "ImportsSeen", "CanvasRequests", "ImportsOpen",
                           "ImportsFinished", "ImportDuration"})


def detailed() -> bool:
    return os.environ.get("DETAILED_METRICS", "").lower() == "true"


def count(name: str, value: int = 1) -> None:
    """Adds `value` to the metric `name`; a zero is not emitted: CloudWatch bills a custom metric for
    every hour it receives a value, and a period without data reads as 0 on graphs and alarms alike.
    A metric of DETAILED_ONLY is emitted only when DETAILED_METRICS is true."""
    if value and (name not in DETAILED_ONLY or detailed()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def import_finished(outcome: str, duration_seconds: float | None) -> None:
    """ImportsFinished by `outcome` (the dashboard's imports per outcome), and ImportDuration: DETAILED_ONLY."""
    if not detailed():
        return
    with single_metric(name="ImportsFinished", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="outcome", value=outcome or "unknown")
    if duration_seconds is not None:
        metrics.add_metric(name="ImportDuration", unit=MetricUnit.Seconds, value=duration_seconds)


def count_rejected(reason: str) -> None:
    """EventsRejected in total, and once more under a `reason` dimension (invalid, unauthorized, ...)."""
    count("EventsRejected")
    with single_metric(name="EventsRejected", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="reason", value=reason)
