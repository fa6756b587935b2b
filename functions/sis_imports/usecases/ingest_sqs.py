"""Canvas's SQS transport: each message body is one Live Event (unsigned JSON).

Powertools' BatchProcessor reports failed messages only, so one bad message never makes the good
ones retry. A message that is invalid stays failed on every receive and the queue's redrive
policy moves it to the dead-letter queue; its reason is logged with its messageId. An event that
names a root account this deployment does not serve is dropped, valid or not (counted and logged by
the core): retrying it could never succeed, and keeping it would keep another customer's data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..adapters.observability import count_rejected, logger
from ..core.admission import NotAllowed
from ..core.events import FieldError, InvalidEvent, NotJson, decode_json
from .ingest import SisBatchIngest


class SqsConsumer:
    def __init__(self, ingest: SisBatchIngest):
        self._ingest = ingest

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(
            event=event,
            record_handler=self._record,
            # A batch of only bad messages is reported like any other, not raised as a function error.
            processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
            context=context,
        )

    def _record(self, record: SQSRecord) -> str:
        try:
            try:
                raw = decode_json(record.body)
            except NotJson as exc:
                raise InvalidEvent([FieldError(field="(message body)", message=str(exc))]) from None
            return self._ingest.ingest(raw).status
        except NotAllowed:
            return "refused"  # deleted from the queue: no retries, no dead letter
        except InvalidEvent as exc:
            count_rejected("invalid")
            logger.warning(
                "invalid message; it will reach the dead-letter queue",
                extra={"message_id": record.message_id, "reason": str(exc)},
            )
            raise
