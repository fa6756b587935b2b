"""`make redrive`: dead letters back where they came from, once their cause is fixed.

Where: without --stack, the local run (`make run`, found by its state file under LOCAL_STATE_DIR, as
`make status` finds it); with --stack NAME, that deployed stack, with your AWS credentials and region.
There is no default stack: production is only ever named.

First it shows what it would move: each queue's exact count from its attributes (waiting + in flight +
delayed), so that counting receives nothing and hides nothing. It moves only with --yes, or after
`yes` typed at a terminal. --dry-run shows and never asks.

What (--which, default all):
- canvas: the Canvas queue's dead-letter queue, back to the Canvas queue. Deployed: an SQS message
  move task. Locally moto has no move tasks: each message is received, sent back and deleted, in a
  loop bounded by the count.
- alerts: the alert retry queue's dead-letter queue (alerts SNS refused for a day), back to the retry
  queue, whose function publishes them (likewise a move task, or the loop locally). And the alerts the
  notifier parked on its failure queue (SNS and the retry queue both down until their stream record's
  age limit): each is sent to the retry queue, then deleted. The failure queue's other messages
  (unreadable records, Lambda's descriptions of records) stay there for a person.
- eventbridge: the EventBridge dead-letter queue (target DLQ and the function's on-failure
  destination): each event is put back on the bus, then deleted.

Exit: 0 done, nothing to move, or only shown (no --yes, or the question not answered yes); 1 it cannot
(no local run, no AWS credentials or region, AWS refused, an event the bus refused); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

DONE, CANNOT, USAGE = 0, 1, 2
from ops.redrive_queues import (  # move_back, start_move_task: called here by the tests too
    LOCAL_EVENTBRIDGE_DLQ, LOCAL_FAILURE_QUEUE, LOCAL_RETRY_QUEUE, OUTPUTS, PARKED_OTHERS, RedriveError, Step, depth,
    move_back, name_of, queue_url, redrive_eventbridge, redrive_parked_alerts, stack_outputs, start_move_task,
)

def stack_steps(session: Any, stack: str, chosen: list[str]) -> list[Step | str]:
    outputs = stack_outputs(session.client("cloudformation"), stack)
    sqs = session.client("sqs")
    steps: list[Step | str] = []  # a string: a note on what is not there

    def move_task_step(which: str, arn: str, goes: str) -> None:
        steps.append(Step(which, name_of(arn), depth(sqs, queue_url(sqs, arn)), f"{goes} (an SQS message move task)",
                          lambda: f"{which}: moving {name_of(arn)} back: SQS message move task "
                                  f"{start_move_task(sqs, arn)} started (aws sqs list-message-move-tasks "
                                  f"--source-arn {arn} follows it)"))

    for which in chosen:
        arn = outputs.get(OUTPUTS[which])
        if which == "alerts":
            failures, retry_url = outputs.get("NotifierFailureQueueArn"), outputs.get("AlertRetryQueueUrl")
            if failures and retry_url:
                steps.append(parked_step(sqs, failures, retry_url))
            else:
                steps.append("alerts: the stack has no output AlertRetryQueueUrl (deployed before it existed): parked "
                             "alerts stay on the notifier's failure queue until this version is deployed")
        if not arn:
            steps.append(f"{which}: the stack has no output {OUTPUTS[which]} (is that ingress turned off?)")
        elif which == "canvas":
            move_task_step(which, arn, "back to the Canvas queue")
        elif which == "alerts":
            move_task_step(which, arn, "back to the alert retry queue, whose function publishes them")
        elif not outputs.get("EventBusName"):
            steps.append("eventbridge: the stack has no output EventBusName to put the events back on")
        else:
            steps.append(eventbridge_step(sqs, session.client("events"), arn, outputs["EventBusName"]))
    return steps


def parked_step(sqs: Any, failures_arn: str, retry_url: str) -> Step:
    return Step("alerts", name_of(failures_arn), depth(sqs, queue_url(sqs, failures_arn)),
                f"the parked alerts among them onto the retry queue {name_of(retry_url)}; the others ({PARKED_OTHERS}) "
                "stay for a person",
                lambda: redrive_parked_alerts(sqs, failures_arn, retry_url, dry_run=False))


def eventbridge_step(sqs: Any, events: Any, arn: str, bus: str) -> Step:
    return Step("eventbridge", name_of(arn), depth(sqs, queue_url(sqs, arn)), f"each event put back on the bus {bus}",
                lambda: redrive_eventbridge(sqs, events, arn, bus, dry_run=False))


def aws_session(stack: str) -> Any:
    from ops.aws_errors import NotSignedIn, signed_in_session

    try:
        session = signed_in_session(f"redrive {stack}")
    except NotSignedIn as exc:
        raise RedriveError(str(exc)) from None
    if not session.region_name:
        raise RedriveError(f"no AWS region: set AWS_REGION (the region of {stack}) or a profile's region")
    return session


# Local: the running `make run`, on moto's server.

def local_steps(state: dict[str, Any], chosen: list[str]) -> list[Step | str]:
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")

    sqs = client("sqs")
    queues = {}  # name -> (url, attributes)
    for url in sqs.list_queues().get("QueueUrls", []):
        queues[name_of(url)] = (url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])
    by_arn = {attributes["QueueArn"]: (name, url) for name, (url, attributes) in queues.items()}

    def dead_letters_of(name: str) -> tuple[str, str] | None:
        policy = queues[name][1].get("RedrivePolicy")
        return by_arn.get(json.loads(policy)["deadLetterTargetArn"]) if policy else None

    def find(pattern: re.Pattern[str]) -> str | None:
        return next((name for name in sorted(queues) if pattern.fullmatch(name)), None)

    def move_back_step(which: str, source: str, goes: str) -> None:
        dlq = dead_letters_of(source)
        if dlq is None:
            steps.append(f"{which}: the local run's {source} has no dead-letter queue")
            return
        dlq_name, dlq_url = dlq
        counted = depth(sqs, dlq_url)

        def move() -> str:
            moved = move_back(sqs, dlq_url, queues[source][0], counted.total)
            return (f"{which}: {moved} message(s) moved back to {source} (received, sent, deleted: moto has no "
                    f"message move tasks); {dlq_name} now holds {depth(sqs, dlq_url)}")

        steps.append(Step(which, dlq_name, counted, goes, move))

    steps: list[Step | str] = []  # a string: a note on what is not there
    for which in chosen:
        if which == "canvas":
            source = name_of(state["canvas_queue_url"])
            if source not in queues:
                raise RedriveError(f"the local run has no queue {source}: is `make run` still going?")
            move_back_step(which, source, f"back to {source}, whose consumer reads them again")
        elif which == "alerts":
            retry, failures = find(LOCAL_RETRY_QUEUE), find(LOCAL_FAILURE_QUEUE)
            if retry and failures:
                failures_arn = queues[failures][1]["QueueArn"]
                steps.append(parked_step(sqs, failures_arn, queues[retry][0]))
            if retry:
                move_back_step(which, retry, f"back to {retry}, whose function publishes them")
            else:
                steps.append("alerts: the local run has no alert retry queue")
        else:
            dlq = find(LOCAL_EVENTBRIDGE_DLQ)
            if dlq is None:
                steps.append("eventbridge: the local run has no EventBridge dead-letter queue (an event its function "
                             "refuses is said in the console)")
            else:
                steps.append(eventbridge_step(sqs, client("events"), queues[dlq][1]["QueueArn"], state["bus_name"]))
    return steps


def local_state() -> dict[str, Any]:
    from local import settings

    state = settings.live_state()
    if state is None:
        raise RedriveError(f"no local run found ({settings.state_file()} is missing or its process has stopped): "
                           "start one with `make run`, or name a deployed stack with --stack NAME")
    settings.loopback_only()
    return state


# Both.

def confirmed(where: str) -> bool:
    """A `yes` typed at a terminal; never asked when nobody is there to answer."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"Move them ({where})? Type yes to move: ").strip().lower() == "yes"
    except (EOFError, KeyboardInterrupt):
        print()
        return False


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError

    from ops.aws_errors import AWS_FAILURES, one_line

    chosen = ["canvas", "alerts", "eventbridge"] if args.which == "all" else [args.which]
    where = args.stack or "local run"
    try:
        if args.stack:
            found = stack_steps(aws_session(args.stack), args.stack, chosen)
        else:
            found = local_steps(local_state(), chosen)
        for item in found:
            print(item if isinstance(item, str) else item.preview(), flush=True)
        waiting = [item for item in found if isinstance(item, Step) and item.depth.total]
        if not waiting:
            print(f"nothing to move ({where})")
            return DONE
        if args.dry_run:
            print("dry run: nothing moved")
            return DONE
        if not args.yes and not confirmed(where):
            print("nothing moved: add --yes to move them (make redrive ARGS=\"... --yes\")")
            return DONE
        for step in waiting:
            print(step.move(), flush=True)
        return DONE
    except RedriveError:
        raise
    except AWS_FAILURES as exc:
        if not args.stack and isinstance(exc, BotoCoreError) and not isinstance(exc, (NoRegionError,
                                                                                        NoCredentialsError)):
            raise RedriveError(f"the local run did not answer ({exc}); is `make run` still going?") from None
        raise RedriveError(one_line(exc, f"redrive {where}")) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="a deployed stack (CanvasSisImports-prod); default: the local run")
    parser.add_argument("--which", choices=["canvas", "alerts", "eventbridge", "all"], default="all")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true", help="move without asking")
    mode.add_argument("--dry-run", action="store_true", help="only show what waits; never ask, never move")
    args = parser.parse_args(argv)  # a usage error exits 2
    if args.stack is not None and not args.stack.strip():
        parser.error("--stack needs a stack name")
    try:
        return run(args)
    except RedriveError as exc:
        print(f"make redrive: {exc}", file=sys.stderr)
        return CANNOT


if __name__ == "__main__":
    sys.exit(main())
