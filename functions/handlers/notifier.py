"""The table's stream -> SNS: one alert each time a batch's workflow_state changes into an end state.

Publishing from the stream, after the write, means a failed publish is retried and never lost.
Lambda retries a stream batch from its lowest failed record onwards, so once one record fails,
the records after it are not published in this invocation (they would be published twice).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from sis_imports import wiring
from sis_imports.alerts import alert_for, stuck_alert_for
from sis_imports.batch import Batch
from sis_imports.observability import count, logger, metrics


class EarlierRecordFailed(Exception):
    """Held back because an earlier record of the batch failed; retried with it."""


class Notifier:
    def __init__(self, publisher: Any):
        self._publisher = publisher
        self._failed = False

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._failed = False
        return process_partial_response(
            event=event,
            record_handler=self._record,
            # Report every failure the same way, even a whole batch, so Lambda resumes at the first one.
            processor=BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False),
            context=context,
        )

    def _record(self, record: DynamoDBRecord) -> str | None:
        if self._failed:
            raise EarlierRecordFailed()
        try:
            return self._publish(record)
        except Exception:
            self._failed = True
            count("AlertsFailed")
            logger.exception("an alert could not be published; it will be retried")
            raise

    def _publish(self, record: DynamoDBRecord) -> str | None:
        stream = record.dynamodb
        new = _batch(stream.new_image if stream else None)
        if new is None:  # a REMOVE (TTL expiry): nothing ended
            return None
        old = _batch(stream.old_image)
        alert = alert_for(old, new) or stuck_alert_for(old, new)
        if alert is None:
            return None
        message_id = self._publisher.publish(alert)
        count("AlertsPublished")
        logger.info(
            "alert published",
            extra={
                "sis_batch_id": alert.message["sis_batch_id"],
                "root_account_uuid": alert.message["root_account_uuid"],
                "workflow_state": alert.message["workflow_state"],
                "outcome": alert.message["outcome"],
                "message_id": message_id,
            },
        )
        return message_id


def _batch(image: dict[str, Any] | None) -> Batch | None:
    # An image without a state is not a batch yet (moto emits a keys-only INSERT before an upsert).
    return Batch.from_item(image) if image and "workflow_state" in image else None


@cache
def app() -> Notifier:
    return Notifier(wiring.alert_publisher())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event, context)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    app()  # build the clients in Lambda's init phase rather than in the first request
