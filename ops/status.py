"""`make status`: the recent SIS imports and the pipeline's health, at a glance.

Local (the default): the running `make run`, found by its state file as `make send` finds it. The
batches come from its list route (GET /batches/{root_account_uuid}, as deployed), for every root
account its table holds; the health is its dead-letter queues' depths (moto). CloudWatch alarms exist
only in a deployed stack.

--stack NAME: a deployed stack, with your AWS credentials (and region): the batches from its list
route (QueryUrl without /{sis_batch_id}), signed with SigV4 as the route's IAM authorizer requires,
for each root account of its RootAccountUuids output; the depths of its dead-letter queues; and its
alarms in ALARM (each names its entry in docs/runbook.md).

Filters go to the route as they are: --state, --outcome, --since (a date or time, or 30m / 24h / 7d
back from now), --limit (per root account; at most 200), --next (the cursor a page printed; one root
account). Exit: 0 healthy, 3 unhealthy (dead letters waiting or an alarm in ALARM), 1 when the status
cannot be had (no local run, no credentials, the route refused), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEALTHY, FAILED, UNHEALTHY = 0, 1, 3
RELATIVE = re.compile(r"(\d{1,6})([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# Dead-letter queues among a stack's outputs (CanvasQueueDlqArn, EventBridgeDlqArn, NotifierFailureQueueArn, ...).
DEAD_LETTER_OUTPUT = re.compile(r".*(Dlq|FailureQueue)Arn")
# ... and in the local run, by name: canvas-live-events-local-dlq, canvas-sis-notifier-failures-local.
DEAD_LETTER_NAME = re.compile(r"(^|-)(dlq|dead-letters|failures)(-|$)")
# Straight to 127.0.0.1 whatever HTTP_PROXY says; the deployed API through whatever the environment sets.
LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StatusError(Exception):
    """The status cannot be had: said in one line, exit 1."""


@dataclass
class Health:
    dead_letters: dict[str, int] = field(default_factory=dict)  # queue name -> messages waiting
    alarms: list[tuple[str, str]] | None = None  # (name, description) in ALARM; None: no alarms here (local)

    @property
    def healthy(self) -> bool:
        return not any(self.dead_letters.values()) and not self.alarms


def since_value(text: str, now: datetime | None = None) -> str:
    """`--since`: `30m`, `24h`, `7d` back from now become a time; anything else goes as written."""
    match = RELATIVE.fullmatch(text.strip())
    if not match:
        return text.strip()
    now = now or datetime.now(timezone.utc)
    moment = now - timedelta(**{UNITS[match[2]]: int(match[1])})
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def list_query(args: argparse.Namespace) -> dict[str, str]:
    query = {"state": args.state, "outcome": args.outcome, "limit": args.limit, "next": args.next}
    if args.since:
        query["since"] = since_value(args.since)
    return {k: str(v) for k, v in query.items() if v is not None}


def read_json(opener: urllib.request.OpenerDirector, request: urllib.request.Request) -> dict[str, Any]:
    try:
        with opener.open(request, timeout=15) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            body = {}
        if exc.code == 400 and body.get("field"):
            raise StatusError(f"the list route refused {body['field']}: {body.get('reason') or body.get('error')}") from None
        if exc.code == 403:
            raise StatusError("the list route answered 403: these credentials may not call it "
                              "(execute-api:Invoke on GET /batches/*)") from None
        raise StatusError(f"the list route answered {exc.code}: {body.get('error') or body.get('message') or ''}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StatusError(f"cannot reach {request.full_url.split('?')[0]}: {getattr(exc, 'reason', exc)}") from None


# Local: the running `make run`.

def local_status(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None, Health]:
    from local import settings

    state = settings.read_state()  # SystemExit with the reason when no run is going
    settings.loopback_only()
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")

    try:
        accounts = args.root_account or local_root_accounts(client("dynamodb"))
        base = f"http://127.0.0.1:{state['port']}/batches/"
        batches, cursor = fetch_all(accounts, list_query(args), lambda url: read_json(
            LOCAL_OPENER, urllib.request.Request(url, headers={"accept": "application/json"})), base)
        health = Health(dead_letters=local_dead_letters(client("sqs")))
    except StatusError:
        raise
    except Exception as exc:  # moto gone away mid-way: one line
        raise StatusError(f"the local run did not answer ({type(exc).__name__}: {exc}); is `make run` still going?") \
            from None
    return batches, cursor, health


def local_root_accounts(dynamodb: Any) -> list[str]:
    """The root accounts the local table holds batches of (a scan: fine in moto, never done deployed)."""
    tables = dynamodb.list_tables()["TableNames"]
    table = next((t for t in tables if t.startswith("canvas-sis-batches-")), None)
    if table is None:
        return []
    found: set[str] = set()
    kwargs: dict[str, Any] = {}
    while True:
        page = dynamodb.scan(TableName=table, ProjectionExpression="root_account_uuid", **kwargs)
        found |= {item["root_account_uuid"]["S"] for item in page.get("Items", [])}
        if "LastEvaluatedKey" not in page:
            return sorted(found)
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def local_dead_letters(sqs: Any) -> dict[str, int]:
    """Every queue another queue's redrive policy names, and every queue named as one (…-dlq)."""
    urls = sqs.list_queues().get("QueueUrls", [])
    attributes = {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in urls}
    targets = set()
    for attrs in attributes.values():
        if "RedrivePolicy" in attrs:
            targets.add(json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"])
    return {url.rsplit("/", 1)[-1]: int(attrs.get("ApproximateNumberOfMessages", 0))
            for url, attrs in attributes.items()
            if attrs.get("QueueArn") in targets or DEAD_LETTER_NAME.search(url.rsplit("/", 1)[-1])}


# Deployed: a stack, with the caller's AWS credentials.

def stack_status(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None, Health]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    session = boto3.Session()
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise StatusError(f"cannot read AWS credentials: {exc}") from None
    if credentials is None:
        raise StatusError(f"no AWS credentials found: sign in (aws sso login, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                          f"AWS_SECRET_ACCESS_KEY) to read {args.stack}")
    try:
        cloudformation = session.client("cloudformation")
        (description,) = cloudformation.describe_stacks(StackName=args.stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        if "QueryUrl" not in outputs:
            raise StatusError(f"{args.stack} has no QueryUrl output: is it a Canvas SIS imports stack?")
        base = outputs["QueryUrl"].removesuffix("{sis_batch_id}").replace("{root_account_uuid}/", "")
        accounts = args.root_account or [a for a in outputs.get("RootAccountUuids", "").split(",") if a and a != "*"]
        if not accounts:
            raise StatusError(f"{args.stack} lets in any root account: name one with --root-account <uuid>")
        signer = Signer(credentials.get_frozen_credentials(), region_of(base, session.region_name))
        batches, cursor = fetch_all(accounts, list_query(args), signer.get, base)
        health = Health(dead_letters=stack_dead_letters(session.client("sqs"), outputs),
                        alarms=stack_alarms(cloudformation, session.client("cloudwatch"), args.stack))
    except NoRegionError:
        raise StatusError("no AWS region: set AWS_REGION (the stack's region) or a profile's region") from None
    except NoCredentialsError:
        raise StatusError(f"no AWS credentials found: sign in to read {args.stack}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StatusError(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise StatusError(f"AWS could not be asked: {exc}") from None
    return batches, cursor, health


def region_of(url: str, fallback: str | None) -> str:
    """execute-api URLs name their region; a custom domain's is the session's."""
    host = urllib.parse.urlsplit(url).hostname or ""
    match = re.fullmatch(r"[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?", host)
    if match:
        return match[1]
    if not fallback:
        raise StatusError("no AWS region: set AWS_REGION (the stack's region) or a profile's region")
    return fallback


class Signer:
    """A GET signed with SigV4 for execute-api, as the route's IAM authorizer checks it."""

    def __init__(self, credentials: Any, region: str):
        self._credentials = credentials
        self._region = region

    def get(self, url: str) -> dict[str, Any]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="GET", url=url, headers={"accept": "application/json"})
        SigV4Auth(self._credentials, "execute-api", self._region).add_auth(request)
        prepared = request.prepare()
        return read_json(urllib.request.build_opener(), urllib.request.Request(
            prepared.url, headers=dict(prepared.headers), method="GET"))


def stack_dead_letters(sqs: Any, outputs: dict[str, str]) -> dict[str, int]:
    depths = {}
    for key, arn in sorted(outputs.items()):
        if not DEAD_LETTER_OUTPUT.fullmatch(key):
            continue
        _, _, _, _, account, name = arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depths[name] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return depths


def stack_alarms(cloudformation: Any, cloudwatch: Any, stack: str) -> list[tuple[str, str]]:
    """The stack's alarms that are in ALARM: those its resources list (exactly its own, whatever another
    stack's name); when it lists none, those named as its alarms are, `<stack>-<what>`."""
    names = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        names += [r["PhysicalResourceId"] for r in page["StackResourceSummaries"]
                  if r["ResourceType"] == "AWS::CloudWatch::Alarm" and r.get("PhysicalResourceId")]
    pages = ([{"AlarmNames": names[start:start + 100]} for start in range(0, len(names), 100)] if names
             else [{"AlarmNamePrefix": f"{stack}-"}])
    firing = []
    for query in pages:
        for page in cloudwatch.get_paginator("describe_alarms").paginate(StateValue="ALARM", **query):
            firing += [(alarm["AlarmName"], alarm.get("AlarmDescription", "")) for alarm in page["MetricAlarms"]
                       if alarm.get("StateValue") == "ALARM"]  # asked already; said again for emulators that ignore it
    return sorted(firing)


# Both.

def fetch_all(accounts: list[str], query: dict[str, str], get: Any, base: str) -> tuple[list[dict[str, Any]], str | None]:
    """One page per root account, merged newest first; the cursor only when one account was asked."""
    if query.get("next") and len(accounts) != 1:
        raise StatusError("--next goes with one root account: add --root-account <uuid>")
    batches, cursor = [], None
    suffix = ("?" + urllib.parse.urlencode(query)) if query else ""
    for account in accounts:
        page = get(base + urllib.parse.quote(account, safe="") + suffix)
        batches += page.get("batches", [])
        cursor = page.get("next")
    batches.sort(key=lambda b: b.get("last_event_at") or "", reverse=True)
    limit = int(query.get("limit", 50))
    return batches[:limit], cursor if len(accounts) == 1 else None


COLUMNS = (("last activity", "last_event_at"), ("root account", "root_account_uuid"), ("batch", "sis_batch_id"),
           ("state", "workflow_state"), ("outcome", "outcome"), ("first event", "first_event_at"),
           ("host", "hostname"))


def table(batches: list[dict[str, Any]]) -> str:
    rows = [[str(b.get(key) or "-") for _, key in COLUMNS] for b in batches]
    widths = [max([len(title), *(len(row[i]) for row in rows)]) for i, (title, _) in enumerate(COLUMNS)]
    lines = ["  ".join(title.ljust(w) for (title, _), w in zip(COLUMNS, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def describe_health(health: Health, where: str) -> str:
    queues = ", ".join(f"{name} {depth}" for name, depth in health.dead_letters.items()) or "none found"
    if health.healthy:
        alarms = "none in ALARM" if health.alarms is not None else "none locally (CloudWatch alarms are deployed only)"
        return f"pipeline: healthy ({where}; dead letters: {queues}; alarms: {alarms})"
    lines = [f"pipeline: UNHEALTHY ({where})"]
    for name, depth in health.dead_letters.items():
        if depth:
            lines.append(f"  dead letters: {name} holds {depth} message(s): docs/runbook.md, then make redrive")
    for name, description in health.alarms or []:
        lines.append(f"  alarm in ALARM: {name}: {description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make status", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="a deployed stack (CanvasSisImports-prod); default: the local run")
    parser.add_argument("--root-account", action="append", metavar="UUID",
                        help="list this root account's batches (repeatable); default: all of them")
    parser.add_argument("--state", help="only batches in this workflow_state (failed, importing, ...)")
    parser.add_argument("--outcome", help="only batches that ended so: success, warning, failure")
    parser.add_argument("--since", help="last activity at or after: 2026-11-28, 2026-11-28T09:00:00Z, or 24h / 7d / 30m")
    parser.add_argument("--limit", type=int, help="at most this many batches (per root account; the route's default 50)")
    parser.add_argument("--next", help="the cursor a previous page printed (with one root account)")
    parser.add_argument("--json", action="store_true", help="print {batches, next, health} as JSON")
    args = parser.parse_args(argv)
    try:
        batches, cursor, health = stack_status(args) if args.stack else local_status(args)
    except StatusError as exc:
        print(f"make status: {exc}", file=sys.stderr)
        return FAILED
    if args.json:
        print(json.dumps({"batches": batches, "next": cursor, "health": {
            "healthy": health.healthy, "dead_letters": health.dead_letters, "alarms": health.alarms}}, indent=2))
    else:
        print(table(batches) if batches else "no batches" + (" match" if list_query(args) else " yet"))
        if cursor:
            given = list(argv if argv is not None else sys.argv[1:])
            if "--next" in given:
                del given[given.index("--next"):given.index("--next") + 2]
            print(f"more: make status ARGS=\"{' '.join([*given, '--next', cursor])}\"")
        print(describe_health(health, args.stack or "local run"))
    return HEALTHY if health.healthy else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
