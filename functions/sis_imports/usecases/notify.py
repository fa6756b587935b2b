"""The table's stream -> SNS: one alert for each end of an import or a restore, and for each stuck state.

Publishing from the stream, after the write, means an alert is owed by a durable record. Delivery:
- Records of one batch keep their order. A record that cannot be read (a bug, a damaged item) goes
  to the failure queue with its reason, and so do the later records of that batch in the same
  invocation ("held back"); other batches are never blocked.
- When SNS fails, the alert goes to the retry queue, re-published with backoff for a day by the
  alert_retry function (then its dead-letter queue, which `make redrive` moves back): an SNS outage
  loses nothing. Later alerts of that batch in the invocation follow it there, in order.
- Only when even that fails does a record fail; Lambda then retries from it, and the records after
  it are held back rather than published twice. Lambda retries a record until its age limit, not a
  count (core/delivery.py); in the last hour of that limit an alert that can still go neither
  out nor to the retry queue is parked, whole, on the failure queue, where `make redrive --which
  alerts` puts it back on the retry queue. Later alerts of that batch in the invocation follow it.
- Before each record the remaining time is checked against the record's worst case (every call at
  its client's limits): a record is never started so late that a timeout could strike after its
  publish (a timeout makes Lambda deliver the batch again).
Every alert carries an `alert_id`, the same on every repeat.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from ..adapters.alert_details import worst_seconds as details_worst_seconds
from ..adapters.aws import remaining_ms, worst_seconds
from ..adapters.observability import count, import_finished, logger
from ..adapters.publisher import CHAT, TOPIC, ChatPublishFailed
from ..core import delivery
from ..core.alerts import Alert, end_alert, figures_recheck_owed, owed, stuck_alert_for
from ..core.batch import Batch

# Worst cases, in seconds, with every call at its client's limits (adapters/aws.py). The why of an
# end: the Canvas token's secret, then Canvas's answer (adapters/alert_details.py: learning root accounts,
# the read and its retries when throttled).
DETAILS_WORST_S = worst_seconds("secretsmanager") + details_worst_seconds()
# One alert: the alert topic, the chat topic, the retry queue, and parking it on the failure queue.
ALERT_WORST_S = 2 * worst_seconds("sns") + 2 * worst_seconds("sqs")
MARGIN_S = 1.0  # the handler's own work around the calls


# Unusual or not (usecases/unusual_ends.py): the shape's baseline read, the batch marked when it is, and the
# end recorded into the baseline (two attempts, the second after reading it again).
UNUSUAL_WORST_S = 5 * worst_seconds("dynamodb")


def needed_ms(ends: int, stuck: int = 0, details: bool = False, unusual: bool = False) -> int:
    """What must be left of an invocation to start a record that owes `ends` end alerts (each asks
    Canvas for its why when `details`, and is checked against the school's history when `unusual`) and
    `stuck` stuck (or missing-import) alerts."""
    per_end = (DETAILS_WORST_S if details else 0) + (UNUSUAL_WORST_S if details and unusual else 0)
    return int(1000 * (ends * per_end + (ends + stuck) * ALERT_WORST_S + MARGIN_S))


class EarlierRecordFailed(Exception):
    """Held back because an earlier record failed; Lambda delivers it again with that one."""


class Notifier:
    def __init__(self, publisher: Any, failures: Any = None, retries: Any = None, details: Any = None,
                 unusual: Any = None):
        self._publisher = publisher
        self._unusual = unusual  # the school's history, for an import's end (None: the check is off)
        self._failures = failures  # unreadable records, with their reason
        self._retries = retries  # alerts SNS refused, re-published later
        self._details = details  # Canvas's SIS Import API, for the why of an end
        self._failed = False
        self._held: set[tuple[str, str]] = set()
        self._deferred: set[tuple[str, str]] = set()
        self._parked: set[tuple[str, str]] = set()
        self._context: Any = None
        self._fresh_ms = 0  # what the invocation had when it started
        self._near_age_limit = False  # the current record is in the last stretch of its age limit
        self._sequence_number: str | None = None

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._failed, self._held, self._deferred, self._parked, self._context = False, set(), set(), set(), context
        self._fresh_ms = self._remaining_ms()
        return process_partial_response(
            event=event,
            record_handler=self._record,
            # Report every failure the same way, even a whole batch, so Lambda resumes at the first one.
            processor=BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False),
            context=context,
        )

    def _remaining_ms(self) -> int:
        return remaining_ms(self._context)

    def _record(self, record: DynamoDBRecord) -> str:
        if self._failed:
            raise EarlierRecordFailed()
        stream = record.dynamodb
        keys = stream.keys if stream and stream.keys else {}
        key = (str(keys.get("root_account_uuid", "")), str(keys.get("sis_batch_id", "")))
        if key in self._held:
            return self._fail_record(record, key, "held back: an earlier record of this batch could not be read")
        if stream and stream.new_image and stream.new_image.get("kind") == "rhythm":
            return self._rhythm(record, key)
        try:
            old, new = _batch(stream.old_image if stream else None), _batch(stream.new_image if stream else None)
            if new is None:  # a REMOVE (TTL expiry), or the reconciler's marker: nothing ended
                return "nothing owed"
            occurrences = owed(old, new)
            stuck = stuck_alert_for(old, new)
            checking = self._unusual is not None and self._details is not None
            recheck = figures_recheck_owed(old, new) if checking else None
        except Exception as exc:
            return self._fail_record(record, key, f"the record could not be read: {type(exc).__name__}: {exc}")
        ends = len(occurrences) + (recheck is not None)
        self._begin(stream, bool(ends or stuck), needed_ms(ends, stuck is not None, self._details is not None,
                                                           self._unusual is not None))
        host = None
        if ends and self._details is not None:  # its time is in `needed` (DETAILS_WORST_S)
            host = self._details.host_for(new)
            if host and host != new.hostname:  # the alert names the instance's own host, not an alias
                new = replace(new, hostname=host)
                stuck = stuck_alert_for(old, new)
        for occurrence in occurrences:
            details, unavailable = self._why(new)
            alert = end_alert(new, occurrence, details, unavailable)
            if checking:  # its time is in `needed`
                alert = self._unusual.annotate(new, alert, details)
                if details is None and host and alert.message["type"] == "sis_import_finished":
                    self._unusual.owe(new)  # Canvas did not answer: the reconciler's next pass asks again
            import_finished(alert.message["outcome"], alert.message["duration_seconds"])
            self._deliver(key, alert)
        if recheck is not None:  # the reconciler asked for an end's figures again: alerted only when unusual
            details, unavailable = self._why(new)
            follow_up = self._unusual.recheck(new, end_alert(new, recheck, details, unavailable), details,
                                              owe_again=bool(host))
            if follow_up is not None:
                self._deliver(key, follow_up)
        if stuck is not None:
            self._deliver(key, stuck)
        return "ok"

    def _begin(self, stream: Any, owes: bool, needed: int) -> None:
        """Start a record that `owes` alerts needing `needed` ms, or hand it back to Lambda (a record owing more
        than a whole invocation could ever fit is started only first in one); note its age and sequence."""
        if owes and self._remaining_ms() < min(needed, self._fresh_ms - 500):
            self._failed = True
            raise EarlierRecordFailed("too little time left to publish safely; delivered again")
        created = stream.approximate_creation_date_time if stream else None
        age = time.time() - created if created is not None else 0.0
        self._near_age_limit = age >= delivery.STREAM_MAX_RECORD_AGE_SECONDS - delivery.PARK_WITHIN_SECONDS
        self._sequence_number = stream.sequence_number if stream else None

    def _rhythm(self, record: DynamoDBRecord, key: tuple[str, str]) -> str:
        """A root account's rhythm item changed: a missing-import gap was found, or one ended (core/rhythm.py)."""
        from ..core.rhythm import missing_alert, missing_owed, resumed_alert, resumed_owed, rhythm_from_item

        stream = record.dynamodb
        try:
            old = rhythm_from_item(key[0], stream.old_image) if stream and stream.old_image else None
            new = rhythm_from_item(key[0], stream.new_image if stream else None)
            alerts = [missing_alert(new)] * missing_owed(old, new) + [resumed_alert(new)] * resumed_owed(old, new)
        except Exception as exc:
            return self._fail_record(record, key, f"the rhythm record could not be read: {type(exc).__name__}: {exc}")
        self._begin(stream, bool(alerts), needed_ms(0, len(alerts)))
        for alert in alerts:
            self._deliver(key, alert)
        return "ok" if alerts else "nothing owed"

    def _why(self, batch: Batch) -> tuple[dict[str, Any] | None, str | None]:
        if self._details is None:
            return None, "no Canvas instance is configured for the reconciler"
        # The record was started only with the time for this read left (or first in its invocation).
        return self._details.fetch(batch)

    def _deliver(self, key: tuple[str, str], alert: Alert) -> None:
        targets: tuple[str, ...] = (TOPIC, CHAT)
        if key in self._parked:  # an earlier alert of this batch is parked: this one follows, in order
            return self._park(key, alert, targets, "an earlier alert of this batch was parked")
        if key not in self._deferred:
            try:
                message_id = self._publisher.publish(alert)
                count("AlertsPublished")
                # A line per alert: at INFO for every alert that needs a person; a plain success (most
                # alerts) at DEBUG, written only by the invocations sampled at DEBUG (event_log_sample_rate).
                _log("alert published", alert, debug=_plain_success(alert), message_id=message_id)
                return
            except ChatPublishFailed:
                count("AlertsPublished")
                targets = (CHAT,)  # out on the alert topic; only the chat copy is owed
                logger.exception("the chat topic refused an alert; it goes to the retry queue")
            except Exception:
                count("AlertsFailed")
                logger.exception("SNS refused an alert; it goes to the retry queue",
                                 extra={"alert_id": alert.message["alert_id"]})
        try:
            if self._retries is None:
                raise RuntimeError("the alert could not be published and there is no retry queue")
            self._retries.defer(alert, targets)
        except Exception:
            logger.exception("the alert could not be queued for a retry either")
            if self._near_age_limit and self._failures is not None:
                return self._park(key, alert, targets, "neither SNS nor the retry queue took it before its "
                                  "stream record's age limit")
            self._failed = True  # neither SNS nor SQS: Lambda delivers the record again
            raise
        self._deferred.add(key)  # this batch's later alerts follow it, in order
        count("AlertsDeferred")
        _log("alert deferred to the retry queue", alert)

    def _park(self, key: tuple[str, str], alert: Alert, targets: tuple[str, ...], reason: str) -> None:
        """The alert, whole, on the failure queue: Lambda would soon give the record up and keep only its
        shard and sequence numbers. `make redrive --which alerts` puts it on the retry queue."""
        try:
            self._failures.park(alert, targets, reason, sequence_number=self._sequence_number)
        except Exception:
            self._failed = True  # nowhere to put it: Lambda delivers the record again while it may
            logger.exception("the alert could not be parked on the failure queue either")
            raise
        self._parked.add(key)
        count("AlertsParked")
        _log("alert parked on the failure queue", alert, reason=reason)

    def _fail_record(self, record: DynamoDBRecord, key: tuple[str, str], reason: str) -> str:
        self._held.add(key)
        count("RecordsUnreadable")
        logger.error("stream record sent to the failure queue",
                     extra={"reason": reason, "root_account_uuid": key[0], "sis_batch_id": key[1],
                            "sequence_number": record.dynamodb.sequence_number if record.dynamodb else None})
        if self._failures is None:
            self._failed = True
            raise RuntimeError(reason)
        self._failures.send(record.raw_event, reason)
        return "sent to the failure queue"


def _plain_success(alert: Alert) -> bool:
    """A success whose figures are not unusual: the alert no one needs to act on."""
    return alert.message["outcome"] == "success" and not alert.message.get("unusual")


def _log(message: str, alert: Alert, *, debug: bool = False, **extra: Any) -> None:
    (logger.debug if debug else logger.info)(message, extra={
        "alert_id": alert.message["alert_id"], "type": alert.message["type"],
        "sis_batch_id": alert.message.get("sis_batch_id"), "root_account_uuid": alert.message["root_account_uuid"],
        "workflow_state": alert.message.get("workflow_state"), "outcome": alert.message["outcome"],
        "unusual": alert.message.get("unusual"), **extra})


def _batch(image: dict[str, Any] | None) -> Batch | None:
    # An image without a state is not a batch (moto emits a keys-only INSERT before an upsert; the
    # reconciler's marker item has none).
    return Batch.from_item(image) if image and "workflow_state" in image else None
