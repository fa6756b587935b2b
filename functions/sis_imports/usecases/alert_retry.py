"""The retry queue -> SNS: alerts the notifier could not publish, published again.

A message that fails comes back after the queue's visibility timeout (minutes, not seconds), for a
day; then it waits in the dead-letter queue until `make redrive` moves it back. Nothing is lost to
an SNS outage. The alert keeps its `alert_id`, so subscribers can drop a repeat. A message is started
only while the invocation has its worst case left (the alert topic and the chat topic, each at the SNS
client's limits): the rest of the batch comes back later rather than risk a timeout after a publish,
which would make SQS deliver the published ones again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..adapters.aws import remaining_ms, worst_seconds
from ..adapters.observability import count, logger
from ..adapters.publisher import AlertPublisher, deferred_alert

# One message at worst: the alert topic, then the chat topic, each at the SNS client's limits, and a margin.
NEEDED_MS = int(1000 * (2 * worst_seconds("sns") + 1))


class NotNow(Exception):
    """Too little time left in this invocation to publish safely: the message comes back later."""


class AlertRetry:
    def __init__(self, publisher: AlertPublisher):
        self._publisher = publisher
        self._context: Any = None

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._context = context
        return process_partial_response(
            event=event, record_handler=self._record, context=context,
            processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        )

    def _remaining_ms(self) -> int:
        return remaining_ms(self._context)

    def _record(self, record: SQSRecord) -> str:
        if self._remaining_ms() < NEEDED_MS:
            raise NotNow("too little time left to publish safely; it comes back after the visibility timeout")
        alert, targets = deferred_alert(record.body)
        try:
            self._publisher.publish(alert, targets)
        except Exception:
            count("AlertsFailed")
            logger.warning("a deferred alert could not be published yet; it comes back later",
                           extra={"alert_id": alert.message.get("alert_id"), "receive_count": record.attributes.approximate_receive_count})
            raise
        count("AlertsPublished")
        count("AlertsRepublished")
        logger.info("deferred alert published", extra={"alert_id": alert.message.get("alert_id")})
        return "published"
