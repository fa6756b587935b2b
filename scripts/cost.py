"""`make cost`: the monthly bill of the stack you would deploy, line by line, for a traffic figure.

Synthesizes the app in-process as the infrastructure tests do (infra.application.build with cdk.json's
context; no CDK CLI), reads what costs money from the template (functions' memory, architecture, tracing
and log levels; log groups' retention; alarms; dashboards; KMS keys; SQS event sources; the table's
indexes and projections; secrets; the reconciler's schedule; the API's access log; whether the functions
emit the detailed metrics), then prices it with scripts/cost_model.py at the prices of scripts/prices.py.

    python -m scripts.cost                                   # 0, 100k and 10M events a month, 1 email subscriber
    python -m scripts.cost --events-per-month 100000 --emails 1
    python -m scripts.cost -c canvas_sqs=false               # another configuration (context, as make synth's -c)
    python -m scripts.cost --template cdk.out/CanvasSisImports-prod.template.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts import cost_model
from scripts.cost_model import Alarm, Deployment, Function, Index
from scripts.prices import AS_OF, PRICES, sources, unit_prices

ROOT = Path(__file__).resolve().parents[1]
# As `make bench` synthesizes: a placeholder root account and one Canvas instance (the reconciler); and one
# email subscriber to the alerts, with the default email_outcomes filter.
DEFAULT_CONTEXT = {"root_account_uuids": "cost-placeholder", "canvas_instances": "https://canvas.example.edu",
                   "notify_emails": "alerts@example.edu"}
DEFAULT_EVENTS = (0, 100_000, 10_000_000)


class TemplateError(ValueError):
    """The template lacks something the bill needs, or holds what the model has no price for."""


def synthesize(context: dict[str, str]) -> dict[str, Any]:
    """The stack's template, built as `make synth` builds it (cdk.json's context, then `context`)."""
    venv_node = Path(sys.prefix) / "bin" / "node"  # jsii needs Node 22+: the venv's, as tests/infra does
    if venv_node.exists():
        os.environ.setdefault("JSII_NODE", str(venv_node))
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        os.environ.pop(name, None)
    import aws_cdk as cdk

    from infra.application import build

    cdk_context = json.loads((ROOT / "cdk.json").read_text())["context"]
    with tempfile.TemporaryDirectory(prefix="cost-cdk-") as outdir:
        app = cdk.App(context={**cdk_context, **context}, outdir=outdir)
        stack = build(app)
        assembly = app.synth()
        return assembly.get_stack_artifact(stack.artifact_id).template


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r.get("Properties", {}) for name, r in resources.items() if r.get("Type") == kind}


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def read_template(template: dict[str, Any]) -> Deployment:
    resources = template.get("Resources", {})
    log_groups = _of_type(resources, "AWS::Logs::LogGroup")
    functions = []
    for name, props in _of_type(resources, "AWS::Lambda::Function").items():
        handler = props.get("Handler", "")
        match = re.fullmatch(r"(?:\w+\.)*?(\w+)\.handler", handler)
        if not match:
            raise TemplateError(f"function {name}: handler {handler!r} is not <package>.<module>.handler")
        env = props.get("Environment", {}).get("Variables", {})
        logging = props.get("LoggingConfig", {})
        code_level = env.get("POWERTOOLS_LOG_LEVEL") or env.get("LOG_LEVEL") or "INFO"
        group = log_groups.get(_ref(logging.get("LogGroup")) or "", {})
        functions.append(Function(
            name=name, role=match.group(1), memory_mb=int(props.get("MemorySize", 128)),
            architecture=(props.get("Architectures") or ["x86_64"])[0],
            tracing=props.get("TracingConfig", {}).get("Mode") == "Active",
            timeout_seconds=int(props.get("Timeout", 3)),
            app_log_level=logging.get("ApplicationLogLevel") or code_level,
            system_log_level=logging.get("SystemLogLevel", "INFO"),
            code_log_level=code_level, log_sample_rate=float(env.get("POWERTOOLS_LOGGER_SAMPLE_RATE") or 0),
            log_retention_days=group.get("RetentionInDays")))
    if not functions:
        raise TemplateError("the template has no Lambda function: is it this app's stack?")
    function_props = _of_type(resources, "AWS::Lambda::Function")
    envs = {f.role: function_props[f.name].get("Environment", {}).get("Variables", {}) for f in functions}
    reconciler_id = next((f.name for f in functions if f.role == "reconciler"), None)

    alarms = []
    for name, props in _of_type(resources, "AWS::CloudWatch::Alarm").items():
        if "Metrics" in props:
            stats = [m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m]
            bands = sum(1 for m in props["Metrics"] if "ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")))
            high_resolution = any(int(s.get("Period", 60)) < 60 for s in stats)
            alarms.append(Alarm(len(stats) + 2 * bands, high_resolution=high_resolution))
        else:
            alarms.append(Alarm(1, high_resolution=int(props.get("Period", 60)) < 60))
    alarms += [Alarm(0, composite=True) for _ in _of_type(resources, "AWS::CloudWatch::CompositeAlarm")]

    queues = _of_type(resources, "AWS::SQS::Queue")
    polled = {_ref(m.get("EventSourceArn")) for m in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()}
    tables = _of_type(resources, "AWS::DynamoDB::Table")
    if len(tables) != 1:
        raise TemplateError(f"expected one DynamoDB table, found {len(tables)}")
    (table,) = tables.values()
    indexes = tuple(
        Index(g["IndexName"], tuple(k["AttributeName"] for k in g["KeySchema"]),
              g["Projection"].get("ProjectionType", "ALL"), tuple(g["Projection"].get("NonKeyAttributes", ())))
        for g in table.get("GlobalSecondaryIndexes", []))

    ingest = envs.get("ingest", {})
    reconciler = envs.get("reconciler", {})
    reconcile_minutes = 5.0
    for rule in _of_type(resources, "AWS::Events::Rule").values():
        schedule = rule.get("ScheduleExpression")
        if schedule and any(_ref(t.get("Arn")) == reconciler_id for t in rule.get("Targets", [])):
            reconcile_minutes = _rate_minutes(schedule)
    access_days = None
    for stage in _of_type(resources, "AWS::ApiGatewayV2::Stage").values():
        destination = _ref(stage.get("AccessLogSettings", {}).get("DestinationArn"))
        if destination:
            access_days = log_groups.get(destination, {}).get("RetentionInDays") or cost_model.NEVER_EXPIRES_DAYS
    alert_topic = _ref(envs.get("notifier", {}).get("TOPIC_ARN"))
    emails = [s.get("FilterPolicy") for s in _of_type(resources, "AWS::SNS::Subscription").values()
              if s.get("Protocol") == "email" and _ref(s.get("TopicArn")) == alert_topic]
    emails += [None for s in _of_type(resources, "AWS::SNS::Topic").get(alert_topic or "", {}).get("Subscription", [])
               if s.get("Protocol") == "email"]
    topic = _of_type(resources, "AWS::SNS::Topic").get(alert_topic or "", {})
    publishers = sum(1 for env in envs.values() if _ref(env.get("TOPIC_ARN")) == alert_topic)
    pitr = table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    return Deployment(
        functions=tuple(functions), alarms=tuple(alarms),
        dashboards=len(_of_type(resources, "AWS::CloudWatch::Dashboard")),
        kms_keys=len(_of_type(resources, "AWS::KMS::Key")),
        polled_queues=sum(1 for q in polled if q in queues),
        indexes=indexes,
        point_in_time_recovery=bool(pitr),
        secrets=len(_of_type(resources, "AWS::SecretsManager::Secret")),
        token_secret_readers=sum(1 for env in envs.values() if "SIS_TOKEN_SECRET_ARN" in env),
        canvas_instances=json.dumps(reconciler.get("CANVAS_INSTANCES", "")).count('\\"url\\"'),
        root_accounts=max(1, len([u for u in str(ingest.get("SIS_ROOT_ACCOUNTS", "")).split(",") if u.strip()])),
        reconcile_minutes=reconcile_minutes,
        reconcile_lookback_hours=float(reconciler.get("RECONCILE_LOOKBACK_HOURS", 48)),
        retention_days=int(ingest.get("RETENTION_DAYS", 90)),
        access_log_retention_days=access_days,
        detailed_metrics=any(str(env.get("DETAILED_METRICS", "")).lower() == "true" for env in envs.values()),
        alert_topic_kms_publishers=publishers if topic.get("KmsMasterKeyId") else 0,
        email_subscriptions=tuple(_outcomes(policy) for policy in emails),
        unusual_check=_unusual_check(envs.get("notifier", {})))


def _unusual_check(env: dict[str, Any]) -> bool:
    """As sis_imports/wiring.py decides: a sensitivity above 0, the table, and Canvas instances to read."""
    try:
        sensitivity = float(env.get("ANOMALY_SENSITIVITY") or 0)
    except (TypeError, ValueError):
        raise TemplateError("the notifier's ANOMALY_SENSITIVITY is not a number: "
                            f"{env.get('ANOMALY_SENSITIVITY')!r}") from None
    return sensitivity > 0 and bool(env.get("TABLE_NAME")) and bool(env.get("CANVAS_INSTANCES"))


def _rate_minutes(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        raise TemplateError(f"the reconciler's schedule {expression!r} is not rate(N minutes|hours|days)")
    return int(match.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[match.group(2).rstrip("s")]


def _outcomes(policy: Any) -> frozenset[str] | None:
    """The outcomes an email subscription's filter policy admits, with "unusual" when it admits
    `unusual` = "true" as an alternative ("$or"); None: no filter on either."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    if not policy:
        return None
    clauses = policy["$or"] if set(policy) == {"$or"} else [policy]
    admitted: set[str] = set()
    for clause in clauses:
        if set(clause) - {"outcome", "unusual"}:
            raise TemplateError(f"an email subscription filters on {sorted(set(clause) - {'outcome', 'unusual'})}: "
                                "the model prices filters on outcome and unusual only")
        if "outcome" in clause and "unusual" in clause:
            raise TemplateError("an email subscription filters on outcome AND unusual: the model prices either")
        admitted |= {v for v in clause.get("outcome", ()) if isinstance(v, str)}
        if clause.get("unusual") == ["true"]:
            admitted.add("unusual")
    return frozenset(admitted)


def render(deployment: Deployment, events: list[int], emails: int | None, title: str) -> str:
    prices = unit_prices(PRICES)
    bills = [cost_model.monthly_bill(deployment, n, emails, prices) for n in events]
    single = len(events) == 1
    width = 36
    head = f"{'':{width}}" + "".join(f"{f'{n:,} events':>20}" for n in events)
    out = [title, AS_OF, head]
    group = None
    for i, line in enumerate(bills[0]):
        if line.group == "Note":
            continue
        if line.group != group:
            group = line.group
            subtotals = "".join(f"{_usd(sum(x.usd for x in bill if x.group == group)):>20}" for bill in bills)
            out.append(f"{group:{width}}{subtotals}")
        cells = "".join(f"{_usd(bill[i].usd):>20}" for bill in bills)
        detail = f"   {line.detail}" if single and line.detail else ""
        out.append(f"  {line.item:{width - 2}}{cells}{detail}")
    out.append(f"{'TOTAL per month':{width}}" + "".join(f"{_usd(cost_model.total(b)):>20}" for b in bills))
    for n, bill in zip(events, bills):
        out += [f"note at {n:,} events: {line.item}" for line in bill if line.group == "Note"]
    if not single:
        out.append(f"Quantities at {events[-1]:,} events a month:")
        out += [f"  {line.group} {line.item}: {line.detail}" for line in bills[-1]
                if line.detail and line.group != "Note"]
    a = cost_model.ASSUMPTIONS
    out.append(f"Assumptions (scripts/cost_assumptions.py): {a.events_per_import} events and 1 alert per import; outcomes "
               + ", ".join(f"{k} {v:.0%}" for k, v in a.outcome_mix.items())
               + f"; events by HTTPS; in-order events; warm durations {a.duration_ms['ingest']:g} ms ingest, "
                 f"{a.duration_ms['notifier']:g} ms notifier; {a.debug_log_bytes['ingest']} log bytes per event's DEBUG "
                 f"line; unusual ends {a.unusual_share:.0%}.")
    out.append("Prices: " + ", ".join(sources(PRICES)) + " (scripts/prices.py).")
    return "\n".join(out)


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cost", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-month", type=int, action="append", metavar="N",
                        help="SIS Live Events a month (repeatable); default: 0, 100000 and 10000000")
    parser.add_argument("--emails", type=int, metavar="N",
                        help="so many email subscribers to every alert (unfiltered), instead of the template's "
                             "email subscriptions and their filters (the default)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="CDK context, as make synth's -c (default: " +
                             " ".join(f"{k}={v}" for k, v in DEFAULT_CONTEXT.items()) + ")")
    parser.add_argument("--template", type=Path, help="price this synthesized template instead of synthesizing")
    args = parser.parse_args(argv)
    events = args.events_per_month or list(DEFAULT_EVENTS)
    for n in events:
        if n < 0:
            parser.error(f"--events-per-month must be 0 or more, not {n}")
    if args.emails is not None and args.emails < 0:
        parser.error(f"--emails must be 0 or more, not {args.emails}")
    context = dict(DEFAULT_CONTEXT)
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"-c takes KEY=VALUE, not {item!r}")
        context[key] = value
    try:
        if args.template:
            template = json.loads(args.template.read_text())
            title = f"Monthly cost of {args.template}"
        else:
            template = synthesize(context)
            title = "Monthly cost of the stack synthesized with " + " ".join(f"-c {k}={v}" for k, v in context.items())
        deployment = read_template(template)
    except (OSError, ValueError) as exc:  # no such file, bad JSON, a bad context key, a template we cannot price
        print(f"make cost: {exc}", file=sys.stderr)
        return 2
    print(render(deployment, events, args.emails, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
