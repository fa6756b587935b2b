"""The queues `make redrive` reads and moves: exact depths from attributes (nothing received or hidden),
the local receive/send/delete move, parked alerts and EventBridge dead letters (ops/redrive.py drives them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

OUTPUTS = {"canvas": "CanvasQueueDlqArn", "alerts": "AlertRetryDlqArn", "eventbridge": "EventBridgeDlqArn"}
DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"]
PARKED_OTHERS = "unreadable records, Lambda's descriptions"
# The local run's queues, by the names local/resources.py gives them (stage `local`).
LOCAL_RETRY_QUEUE = re.compile(r"canvas-sis-alert-retries-[a-z0-9-]+")
LOCAL_FAILURE_QUEUE = re.compile(r"canvas-sis-notifier-failures-[a-z0-9-]+")
LOCAL_EVENTBRIDGE_DLQ = re.compile(r".*eventbridge.*(dlq|dead-letters).*")


class RedriveError(Exception):
    """The redrive cannot be done (or finished): said in one line, exit 1."""


@dataclass(frozen=True)
class Depth:
    waiting: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.waiting + self.in_flight + self.delayed

    def __str__(self) -> str:
        return (f"{self.total} message(s) ({self.waiting} waiting, {self.in_flight} in flight, "
                f"{self.delayed} delayed)")


@dataclass
class Step:
    """One queue to empty: what it holds, where its messages go, and the move itself."""

    which: str
    queue: str
    depth: Depth
    goes: str
    move: Callable[[], str]

    def preview(self) -> str:
        if not self.depth.total:
            return f"{self.which}: {self.queue} is empty"
        return f"{self.which}: {self.queue} holds {self.depth}; with --yes: {self.goes}"


def depth(sqs: Any, url: str) -> Depth:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTH_ATTRIBUTES)["Attributes"]
    return Depth(*(int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES))


def name_of(arn_or_url: str) -> str:
    return re.split(r"[:/]", arn_or_url)[-1]


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def queue_url(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def _receive(sqs: Any, url: str, visibility: int) -> list[dict[str, Any]]:
    # Long polling (1 s): every SQS server is asked, so an empty answer means an empty queue.
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility,
                               WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])


def _rounds(expected: int) -> range:
    """Receives enough for what was counted, with a margin for answers of fewer than 10: never endless."""
    return range(expected // 10 + 5)


def _show_again(sqs: Any, url: str, left: list[dict[str, Any]]) -> None:
    """Messages looked at and left: visible again now, not after their visibility timeout."""
    for message in left:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def start_move_task(sqs: Any, dlq_arn: str) -> str:
    # Without DestinationArn, SQS moves each message back to the queue it came from.
    return sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]


def move_back(sqs: Any, dlq_url: str, source_url: str, expected: int) -> int:
    """What a message move task does, for moto, which has none: each message received, sent to its
    source queue (body and attributes) and deleted. Returns how many were moved."""
    moved, seen = 0, set()
    for _ in _rounds(expected):
        fresh = [m for m in _receive(sqs, dlq_url, 30) if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            attributes = {name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                          for name, value in (message.get("MessageAttributes") or {}).items()}
            sqs.send_message(QueueUrl=source_url, MessageBody=message["Body"],
                             **({"MessageAttributes": attributes} if attributes else {}))
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def parked_alert(message: dict[str, Any]) -> dict[str, Any] | None:
    try:
        alert = json.loads(message["Body"]).get("alert")
    except (ValueError, AttributeError):
        return None
    return alert if isinstance(alert, dict) else None


def redrive_parked_alerts(sqs: Any, failures_arn: str, retry_queue_url: str, dry_run: bool) -> str:
    """Alerts the notifier parked on its failure queue, each put on the retry queue (its body is the
    retry queue's own format) and then deleted; everything else on that queue is left alone.

    dry_run only peeks (visibility 0: nothing hidden); SQS answers a receive with a sample, so on a
    long queue the peek may see only some of the alerts, and says "at least"."""
    url = queue_url(sqs, failures_arn)
    moved, left, seen, kept = 0, 0, set(), []
    for _ in _rounds(depth(sqs, url).total):
        fresh = [m for m in _receive(sqs, url, 0 if dry_run else 30) if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            alert = parked_alert(message)
            if alert is None:
                left += 1
                kept.append(message)
                continue
            if not dry_run:
                sqs.send_message(QueueUrl=retry_queue_url, MessageBody=json.dumps(alert, separators=(",", ":")))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    if not dry_run:
        _show_again(sqs, url, kept)
    if dry_run:
        return (f"alerts: at least {moved} parked alert(s) waiting and {left} other message(s) on the notifier's "
                f"failure queue (a peek)")
    return (f"alerts: {moved} parked alert(s) put back on the retry queue; {left} other message(s) on the notifier's "
            f"failure queue ({PARKED_OTHERS}) left for a person")


def redrive_eventbridge(sqs: Any, events: Any, dlq_arn: str, bus_name: str, dry_run: bool) -> str:
    """Each dead event put back on the bus, then deleted. dry_run counts from the queue's attributes."""
    url = queue_url(sqs, dlq_arn)
    counted = depth(sqs, url)
    if dry_run:
        return f"eventbridge: {name_of(dlq_arn)} holds {counted} (dry run: nothing received)"
    moved, seen, kept, refused = 0, set(), [], []
    for _ in _rounds(counted.total):
        fresh = [m for m in _receive(sqs, url, 60) if m["MessageId"] not in seen]
        if not fresh:
            break
        entries, messages = [], []
        for message in fresh:
            seen.add(message["MessageId"])
            entry = bus_entry(message["Body"], bus_name)
            if entry is None:
                kept.append(message)
                continue
            entries.append(entry)
            messages.append(message)
        if not entries:
            continue
        result = events.put_events(Entries=entries)
        for message, answer in zip(messages, result["Entries"]):
            if answer.get("ErrorCode"):
                refused.append(answer["ErrorCode"])
                kept.append(message)
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    _show_again(sqs, url, kept)
    line = f"eventbridge: {moved} event(s) put back on {bus_name}"
    if refused:
        raise RedriveError(f"{line}; the bus refused {len(refused)} ({', '.join(sorted(set(refused)))}): they stay "
                           f"in {name_of(dlq_arn)}; run again")
    unreadable = len(kept)
    return line + (f"; {unreadable} message(s) that are not an event left in {name_of(dlq_arn)}" if unreadable else "")


def bus_entry(body: str, bus_name: str) -> dict[str, Any] | None:
    """A dead letter as a PutEvents entry; None when it holds no event."""
    try:
        event = json.loads(body)
        # Lambda's on-failure destination wraps the event; EventBridge's target DLQ does not.
        event = event.get("requestPayload", event)
        return {"EventBusName": bus_name, "Source": event.get("source", "canvas.live-events"),
                "DetailType": str(event["detail-type"]), "Detail": json.dumps(event["detail"])}
    except (ValueError, AttributeError, KeyError, TypeError):
        return None


# Deployed: a stack's outputs, with the caller's AWS credentials.
