"""`make status`: the recent SIS imports and the pipeline's health, at a glance.

Local (the default): the running `make run`, found by its state file as `make send` finds it. The
batches come from its list route (GET /batches/{root_account_uuid}, as deployed), for every root
account its table holds; the health is its dead-letter queues' depths (moto) and the reconciler's last
pass (the run records each one). CloudWatch alarms exist only in a deployed stack.

--stack NAME: a deployed stack, with your AWS credentials (and region): the batches from its list
route (QueryUrl without /{sis_batch_id}), signed with SigV4 as the route's IAM authorizer requires,
for each root account of its RootAccountUuids output; the depths of its dead-letter queues; its
alarms in ALARM (each names its entry in docs/runbook.md); and the reconciler's last pass, from its
log group (the "reconcile pass" line it writes per Canvas instance).

Filters go to the route: --state, --outcome (success, warning, failure, or stuck: open imports the
reconciler found stuck), --unusual (the ends found unusual), --since (a date or time, or 30m / 24h / 7d back from now), --limit (at most
this many rows in all, 1 to 200; default 50), --next (the cursor a page printed; one root account).
When more batches match than are shown, it says so and how to see them. Each batch says the figures its
end was unusual in; each root account, its rhythm (usual interval, last import, next expected, missing).
Exit: 0 healthy, 3 unhealthy (dead letters waiting, an alarm in ALARM, the reconciler's last pass
failed), 1 when the status cannot be had (no local run, no credentials, the route failed), 2 for a
usage error (a bad option or value).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ops.status_view import (COLUMNS, Health, LastPass, Page, cell, describe_health, describe_pass,  # noqa: F401
                             describe_rhythms, table)

ROOT = Path(__file__).resolve().parent.parent
HEALTHY, FAILED, USAGE, UNHEALTHY = 0, 1, 2, 3
RELATIVE = re.compile(r"(\d{1,6})([mhd])")
# What the list route takes for since= (handlers/query.py): checked here too, so that a typo is a usage error.
SINCE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?")
STATES = ("initializing", "created", "importing", "cleanup_batch", "imported", "imported_with_messages", "failed",
          "failed_with_messages", "aborted", "restoring", "partially_restored", "restored")
OUTCOMES = ("success", "warning", "failure", "stuck")
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
# On AWS, how far back the reconciler's log is read for its last pass: reconcile_minutes is at most 60.
RECONCILE_LOOKBACK_HOURS = 3
RECONCILE_LOG = "FunctionsReconcilerLogs"  # its log group's logical id starts so (infra/functions.py)
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# Dead-letter queues among a stack's outputs (CanvasQueueDlqArn, EventBridgeDlqArn, NotifierFailureQueueArn, ...).
DEAD_LETTER_OUTPUT = re.compile(r".*(Dlq|FailureQueue)Arn")
# ... and in the local run, by name: canvas-live-events-local-dlq, canvas-sis-notifier-failures-local.
DEAD_LETTER_NAME = re.compile(r"(^|-)(dlq|dead-letters|failures)(-|$)")
# Straight to 127.0.0.1 whatever HTTP_PROXY says; the deployed API through whatever the environment sets.
LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StatusError(Exception):
    """The status cannot be had: said in one line, exit 1 (USAGE when it is the caller's input)."""

    def __init__(self, message: str, code: int = FAILED):
        super().__init__(message)
        self.code = code


def since_value(text: str, now: datetime | None = None) -> str:
    """`--since`: `30m`, `24h`, `7d` back from now become a time; anything else goes as written."""
    match = RELATIVE.fullmatch(text.strip())
    if not match:
        return text.strip()
    now = now or datetime.now(timezone.utc)
    moment = now - timedelta(**{UNITS[match[2]]: int(match[1])})
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def since_argument(text: str) -> str:
    """argparse type of --since: a usage error (exit 2) names what it takes."""
    value = since_value(text)
    if not SINCE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a date (2026-11-28), a time with its zone "
                                         "(2026-11-28T09:00:00Z), or 30m / 24h / 7d back from now")
    return value


def limit_argument(text: str) -> int:
    if not re.fullmatch(r"\d{1,4}", text.strip()) or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def list_query(args: argparse.Namespace) -> dict[str, str]:
    query = {"state": args.state, "outcome": args.outcome, "unusual": "true" if args.unusual else None,
             "since": args.since, "limit": args.limit, "next": args.next}
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
        if exc.code == 400 and body.get("field"):  # what was asked for is wrong: a usage error
            raise StatusError(f"the list route refused {body['field']}: {body.get('reason') or body.get('error')}",
                              USAGE) from None
        if exc.code == 403:
            raise StatusError("the list route answered 403: these credentials may not call it "
                              "(execute-api:Invoke on GET /batches/*)") from None
        raise StatusError(f"the list route answered {exc.code}: {body.get('error') or body.get('message') or ''}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StatusError(f"cannot reach {request.full_url.split('?')[0]}: {getattr(exc, 'reason', exc)}") from None


# Local: the running `make run`.

def local_status(args: argparse.Namespace) -> tuple[Page, Health]:
    from local import settings

    state = settings.live_state()
    if state is None:
        raise StatusError(f"no local run found ({settings.state_file()} is missing or its process has stopped): "
                          "start one with `make run`")
    settings.loopback_only()
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")

    try:
        accounts = args.root_account or local_root_accounts(client("dynamodb"))
        base = f"http://127.0.0.1:{state['port']}/batches/"
        page = fetch_all(accounts, list_query(args), lambda url: read_json(
            LOCAL_OPENER, urllib.request.Request(url, headers={"accept": "application/json"})), base)
        health = Health(dead_letters=local_dead_letters(client("sqs")), reconciler=local_last_pass(state))
    except StatusError:
        raise
    except Exception as exc:  # moto gone away mid-way: one line
        raise StatusError(f"the local run did not answer ({type(exc).__name__}: {exc}); is `make run` still going?") \
            from None
    return page, health


def local_last_pass(state: dict[str, Any]) -> LastPass:
    """What the run recorded of its reconciler's last pass (local.reconcile.LocalReconciler), if this run's."""
    from local.reconcile import read_last_pass

    last = read_last_pass(state.get("pid"))
    if last is None:
        return LastPass(None, True, "the run's first pass has not finished")
    return LastPass(last["at"], last["ok"], last.get("why"))


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

def stack_status(args: argparse.Namespace) -> tuple[Page, Health]:
    from ops.aws_errors import AWS_FAILURES, NotSignedIn, one_line, signed_in_session

    try:
        session = signed_in_session(f"read {args.stack}")
    except NotSignedIn as exc:
        raise StatusError(str(exc)) from None
    credentials = session.get_credentials()
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
        page = fetch_all(accounts, list_query(args), signer.get, base)
        resources = stack_resources(cloudformation, args.stack)
        health = Health(dead_letters=stack_dead_letters(session.client("sqs"), outputs),
                        alarms=stack_alarms(resources, session.client("cloudwatch"), args.stack),
                        reconciler=stack_last_pass(resources, session.client("logs")))
    except AWS_FAILURES as exc:
        raise StatusError(one_line(exc, f"read {args.stack}")) from None
    return page, health


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


def stack_resources(cloudformation: Any, stack: str) -> list[dict[str, Any]]:
    found = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        found += page["StackResourceSummaries"]
    return found


def stack_last_pass(resources: list[dict[str, Any]], logs: Any, now: datetime | None = None) -> LastPass | None:
    """The reconciler's last pass from its log group: the newest "reconcile pass" line of each Canvas
    instance (the handler writes one per instance and pass, with `ok` and `error`). None: no reconciler."""
    groups = [r.get("PhysicalResourceId") for r in resources
              if r["ResourceType"] == "AWS::Logs::LogGroup" and r["LogicalResourceId"].startswith(RECONCILE_LOG)]
    if not groups or not groups[0]:
        return None
    now = now or datetime.now(timezone.utc)
    start = int((now - timedelta(hours=RECONCILE_LOOKBACK_HOURS)).timestamp() * 1000)
    newest: dict[str, tuple[int, dict[str, Any]]] = {}  # instance url -> (time, line)
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=groups[0], startTime=start,
                                                             filterPattern='"reconcile pass"')
    for page in pages:
        for event in page.get("events", []):
            try:
                line = json.loads(event["message"])
            except (ValueError, TypeError):
                continue
            if not isinstance(line, dict) or line.get("message") != "reconcile pass":
                continue
            url = str(line.get("url"))
            if url not in newest or event["timestamp"] >= newest[url][0]:
                newest[url] = (event["timestamp"], line)
    if not newest:
        return LastPass(None, False, f"no pass logged in the last {RECONCILE_LOOKBACK_HOURS} hours "
                                     "(its schedule off? the function failing before it logs?)")
    when = max(t for t, _ in newest.values())
    failed = [f"{url}: {line.get('error')}" for url, (_, line) in sorted(newest.items()) if not line.get("ok")]
    return LastPass(datetime.fromtimestamp(when / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), not failed,
                    "; ".join(failed) or None)


def stack_alarms(resources: list[dict[str, Any]], cloudwatch: Any, stack: str) -> list[tuple[str, str]]:
    """The stack's alarms that are in ALARM: those its resources list (exactly its own, whatever another
    stack's name); when it lists none, those named as its alarms are, `<stack>-<what>`."""
    names = [r["PhysicalResourceId"] for r in resources
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

def fetch_all(accounts: list[str], query: dict[str, str], get: Any, base: str) -> Page:
    """The newest `limit` batches of all the root accounts (each asked for that many: enough for the
    merge), newest first; the cursor only when one account was asked."""
    if query.get("next") and len(accounts) != 1:
        raise StatusError("--next goes with one root account: add --root-account <uuid>", USAGE)
    batches, cursors, rhythms = [], [], {}
    suffix = ("?" + urllib.parse.urlencode(query)) if query else ""
    for account in accounts:
        page = get(base + urllib.parse.quote(account, safe="") + suffix)
        batches += page.get("batches", [])
        cursors.append(page.get("next"))
        rhythms[account] = page.get("rhythm")
    batches.sort(key=lambda b: b.get("first_event_at") or "", reverse=True)
    limit = int(query.get("limit", DEFAULT_LIMIT))
    more = len(batches) > limit or any(cursors)
    return Page(batches[:limit], cursors[0] if len(accounts) == 1 else None, more, rhythms)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make status", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="a deployed stack (CanvasSisImports-prod); default: the local run")
    parser.add_argument("--root-account", action="append", metavar="UUID",
                        help="list this root account's batches (repeatable); default: all of them")
    parser.add_argument("--state", choices=STATES, metavar="STATE",
                        help="only batches in this workflow_state: " + ", ".join(STATES))
    parser.add_argument("--outcome", choices=OUTCOMES, metavar="OUTCOME",
                        help="only batches that ended so, or are stuck: " + ", ".join(OUTCOMES))
    parser.add_argument("--unusual", action="store_true", help="only the ends the notifier found unusual")
    parser.add_argument("--since", type=since_argument,
                        help="first event at or after: 2026-11-28, 2026-11-28T09:00:00Z, or 24h / 7d / 30m")
    parser.add_argument("--limit", type=limit_argument,
                        help=f"at most this many batches in all, newest first (1-{MAX_LIMIT}; default {DEFAULT_LIMIT})")
    parser.add_argument("--next", help="the cursor a previous page printed (with one root account)")
    parser.add_argument("--json", action="store_true", help="print {batches, next, more, rhythms, health} as JSON, alone")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage error exits 2, naming the option and what it takes
    try:
        page, health = stack_status(args) if args.stack else local_status(args)
    except StatusError as exc:
        print(f"make status: {exc}", file=sys.stderr)
        return exc.code
    try:
        if args.json:
            print(json.dumps({"batches": page.batches, "next": page.cursor, "more": page.more,
                              "rhythms": page.rhythms, "health": health.to_json()}, indent=2))
        else:
            print(table(page.batches) if page.batches else "no batches" + (" match" if list_query(args) else " yet"))
            if page.cursor:
                given = list(argv if argv is not None else sys.argv[1:])
                if "--next" in given:
                    del given[given.index("--next"):given.index("--next") + 2]
                print(f"more: make status ARGS=\"{' '.join([*given, '--next', page.cursor])}\"")
            elif page.more:
                print(f"more batches match than these {len(page.batches)}: raise --limit (up to {MAX_LIMIT}), "
                      "or page through one root account with --root-account <uuid>")
            if page.rhythms:
                print(describe_rhythms(page.rhythms))
            print(describe_health(health, args.stack or "local run"))
        sys.stdout.flush()
    except BrokenPipeError:  # `make status | head`: the reader has gone; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return HEALTHY if health.healthy else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
