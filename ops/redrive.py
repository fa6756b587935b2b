"""Moves dead letters back once their cause is fixed.

- The Canvas queue's dead-letter queue: an SQS message move task back to the source queue.
- The alert retry queue's dead-letter queue (alerts SNS refused for a day): likewise, back to the
  retry queue, whose function publishes them. And the alerts the notifier parked on its failure
  queue (SNS and the retry queue both down until their stream record's age limit): each is sent to
  the retry queue, then deleted. The failure queue's other messages (unreadable records, Lambda's
  descriptions of records) stay there for a person.
- The EventBridge dead-letter queue (target DLQ and the function's on-failure destination): each
  event is put back on the bus, then deleted.

Usage: python -m ops.redrive --stack CanvasSisImports-prod [--which canvas|alerts|eventbridge|all] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

OUTPUTS = {"canvas": "CanvasQueueDlqArn", "alerts": "AlertRetryDlqArn", "eventbridge": "EventBridgeDlqArn"}


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def queue_url(sqs: Any, arn: str) -> str:
    _, _, _, region, account, name = arn.split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def redrive_canvas(sqs: Any, dlq_arn: str, dry_run: bool, label: str = "canvas") -> str:
    depth = sqs.get_queue_attributes(QueueUrl=queue_url(sqs, dlq_arn), AttributeNames=["ApproximateNumberOfMessages"])
    count = int(depth["Attributes"]["ApproximateNumberOfMessages"])
    if dry_run or count == 0:
        return f"{label}: {count} message(s) in the dead-letter queue" + (" (dry run)" if dry_run and count else "")
    # Without DestinationArn, SQS moves each message back to the queue it came from.
    task = sqs.start_message_move_task(SourceArn=dlq_arn)
    return f"{label}: moving about {count} message(s) back (task {task['TaskHandle'][:16]}…)"


def redrive_parked_alerts(sqs: Any, failures_arn: str, retry_queue_url: str, dry_run: bool) -> str:
    """Alerts the notifier parked on its failure queue, each put on the retry queue (its body is the
    retry queue's own format) and then deleted; everything else on that queue is left alone."""
    url = queue_url(sqs, failures_arn)
    moved, left, seen = 0, 0, set()
    while True:
        # Left messages come back after 30 s: by then the loop has seen them all and stopped.
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                       WaitTimeSeconds=1).get("Messages", [])  # long polling: every server asked
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            try:
                alert = json.loads(message["Body"]).get("alert")
            except (ValueError, AttributeError):
                alert = None
            if not isinstance(alert, dict):
                left += 1
                continue
            if not dry_run:
                sqs.send_message(QueueUrl=retry_queue_url, MessageBody=json.dumps(alert, separators=(",", ":")))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    done = "waiting" if dry_run else "put back on the retry queue"
    return (f"alerts: {moved} parked alert(s) {done}; {left} other message(s) on the notifier's failure queue "
            "(unreadable records, Lambda's descriptions) left for a person")


def redrive_eventbridge(sqs: Any, events: Any, dlq_arn: str, bus_name: str, dry_run: bool) -> str:
    url = queue_url(sqs, dlq_arn)
    moved = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for message in messages:
            event = json.loads(message["Body"])
            # Lambda's on-failure destination wraps the event; EventBridge's target DLQ does not.
            event = event.get("requestPayload", event)
            if dry_run:
                moved += 1
                continue
            entry = {
                "EventBusName": bus_name,
                "Source": event.get("source", "canvas.live-events"),
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
            result = events.put_events(Entries=[entry])
            if result.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused an event: {result['Entries'][0].get('ErrorMessage')}")
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        if dry_run:
            break
    return f"eventbridge: {moved} event(s) {'waiting' if dry_run else 'put back on ' + bus_name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="CanvasSisImports-prod", help="the CloudFormation stack name")
    parser.add_argument("--which", choices=["canvas", "alerts", "eventbridge", "all"], default="all")
    parser.add_argument("--dry-run", action="store_true", help="only count what is waiting")
    args = parser.parse_args(argv)

    import boto3

    outputs = stack_outputs(boto3.client("cloudformation"), args.stack)
    sqs = boto3.client("sqs")
    chosen = ["canvas", "alerts", "eventbridge"] if args.which == "all" else [args.which]
    for which in chosen:
        arn = outputs.get(OUTPUTS[which])
        if not arn:
            print(f"{which}: the stack has no output {OUTPUTS[which]} (is that ingress turned off?)")
            continue
        if which == "alerts":
            failures, retry_url = outputs.get("NotifierFailureQueueArn"), outputs.get("AlertRetryQueueUrl")
            if failures and retry_url:
                print(redrive_parked_alerts(sqs, failures, retry_url, args.dry_run))
            else:
                print("alerts: the stack has no output AlertRetryQueueUrl (deployed before it existed): parked "
                      "alerts stay on the notifier's failure queue until this version is deployed")
        if which in ("canvas", "alerts"):
            print(redrive_canvas(sqs, arn, args.dry_run, which))
        else:
            print(redrive_eventbridge(sqs, boto3.client("events"), arn, outputs["EventBusName"], args.dry_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
