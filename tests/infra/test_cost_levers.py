"""Issue 18: the stack as it comes leaves out what costs money without being asked for, and `make cost`
prices it within the goal at no traffic, at 100,000 and at 10 million events a month.

The configuration is `make cost`'s (the defaults, one Canvas instance, one email subscriber): what each
opt-in part is like when turned on is tested on the tests' main stack (conftest.py DEFAULT).
"""

from __future__ import annotations

import json

import boto3
import pytest

from scripts.cost import main

# The goal, dollars a month, by events a month.
GOAL = {0: 5.00, 100_000: 7.00, 10_000_000: 40.00}


def of_type(synth, kind):
    return synth.template.find_resources(kind)


def test_no_canvas_queue_dashboard_key_or_tracing_unless_asked_for(bare_synth):
    queues = [q["Properties"].get("QueueName", "") for q in of_type(bare_synth, "AWS::SQS::Queue").values()]
    assert queues and not [q for q in queues if "canvas-live-events" in json.dumps(q)]
    functions = of_type(bare_synth, "AWS::Lambda::Function").values()
    handlers = {f["Properties"]["Handler"] for f in functions}
    assert "handlers.ingest.handler" in handlers and "handlers.sqs_consumer.handler" not in handlers
    assert not of_type(bare_synth, "AWS::CloudWatch::Dashboard")
    assert not of_type(bare_synth, "AWS::KMS::Key")
    (ops,) = [t["Properties"] for t in of_type(bare_synth, "AWS::SNS::Topic").values()
              if "operations" in t["Properties"].get("DisplayName", "")]
    assert "KmsMasterKeyId" not in ops
    outputs = bare_synth.template.to_json()["Outputs"]
    assert "DashboardName" not in outputs and "CanvasQueueUrl" not in outputs
    policies = json.dumps(of_type(bare_synth, "AWS::IAM::Policy"))
    assert "xray:" not in policies
    for f in functions:
        props = f["Properties"]
        assert props.get("TracingConfig", {}).get("Mode") != "Active"
        # Lambda drops its START/END/REPORT lines and the code's DEBUG lines before they are billed
        assert props["LoggingConfig"]["SystemLogLevel"] == "WARN"
        assert props["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
        assert "POWERTOOLS_LOGGER_SAMPLE_RATE" not in props["Environment"]["Variables"]
    # every alarm on the canvas queue is gone with it, none of the others
    names = {a["Properties"]["AlarmName"] for a in of_type(bare_synth, "AWS::CloudWatch::Alarm").values()}
    assert not [n for n in names if "canvas" in n or "sqs-consumer" in n]
    for kept in ("heartbeat", "ingest-errors", "notifier-iterator-age", "api-5xx", "auth-refusals",
                 "ingest-failures", "alerts-failed", "reconcile-failures", "notifier-failures", "eventbridge-dlq"):
        assert f"CanvasSisImports-prod-{kept}" in names, kept


def email_policy(synth) -> dict:
    (subscription,) = [s["Properties"] for s in of_type(synth, "AWS::SNS::Subscription").values()
                       if s["Properties"]["Protocol"] == "email"]
    return subscription["FilterPolicy"]


def test_email_gets_failures_stuck_missing_resumed_and_unusual_ends_by_default(bare_synth):
    assert email_policy(bare_synth) == {"$or": [{"outcome": ["failure", "stuck", "missing", "resumed"]},
                                                {"unusual": ["true"]}]}


@pytest.mark.parametrize(("attributes", "mailed"), [
    ({"outcome": "failure", "type": "sis_import_finished"}, True),
    ({"outcome": "stuck", "type": "sis_import_stuck"}, True),
    ({"outcome": "missing", "type": "sis_import_missing"}, True),
    ({"outcome": "resumed", "type": "sis_import_missing"}, True),
    ({"outcome": "success", "type": "sis_import_finished", "unusual": "true"}, True),
    ({"outcome": "warning", "type": "sis_import_finished", "unusual": "true"}, True),
    ({"outcome": "success", "type": "sis_import_finished"}, False),
    ({"outcome": "warning", "type": "sis_import_finished"}, False),
    ({"outcome": "success", "type": "sis_import_finished", "unusual": "false"}, False),
])
def test_the_filter_as_sns_applies_it(bare_synth, attributes, mailed):
    """moto's SNS evaluates the synthesized policy (on a queue subscriber: an email one delivers nowhere)."""
    from moto import mock_aws

    with mock_aws():
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                      Attributes={"FilterPolicy": json.dumps(email_policy(bare_synth)), "RawMessageDelivery": "true"})
        sns.publish(TopicArn=topic, Message="an alert", MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
        assert bool(got) is mailed


def test_email_outcomes_all_lifts_the_filter_and_a_list_without_unusual_needs_no_or():
    from infra.alerts import email_filter_policy

    assert email_filter_policy(None) is None
    assert email_filter_policy(("failure", "warning")) == {"outcome": ["failure", "warning"]}
    assert email_filter_policy(("unusual",)) == {"unusual": ["true"]}


def test_make_cost_prices_the_default_stack_within_the_goal(bare_synth, capsys):
    assert main(["--template", str(bare_synth.template_file)]) == 0
    out = capsys.readouterr().out
    (total,) = [line for line in out.splitlines() if line.startswith("TOTAL")]
    totals = dict(zip((0, 100_000, 10_000_000), (float(x.lstrip("$").replace(",", "")) for x in total.split()[3:])))
    for events, goal in GOAL.items():
        assert totals[events] <= goal, (events, totals[events])
    # the lines the levers removed are there, at nothing
    lines = {line.split("  ")[1].strip(): line for line in out.splitlines() if line.startswith("  ")}
    for item in ("dashboards", "customer managed keys", "traces recorded"):
        assert lines[item].split()[-3:] == ["$0.00", "$0.00", "$0.00"], item


def test_a_zero_count_is_not_emitted(monkeypatch):
    from sis_imports.adapters import observability

    added = []
    monkeypatch.setattr(observability.metrics, "add_metric", lambda **kw: added.append((kw["name"], kw["value"])))
    observability.count("StatesCorrected", 0)
    observability.count("EventsMissed", 3)
    observability.count("EventsAccepted")
    assert added == [("EventsMissed", 3), ("EventsAccepted", 1)]


@pytest.mark.parametrize(("setting", "detailed"), [(None, False), ("false", False), ("true", True), ("TRUE", True)])
def test_the_metrics_no_alarm_reads_are_emitted_only_with_detailed_metrics(monkeypatch, setting, detailed):
    from sis_imports.adapters import observability

    if setting is None:
        monkeypatch.delenv("DETAILED_METRICS", raising=False)
    else:
        monkeypatch.setenv("DETAILED_METRICS", setting)
    added = []
    monkeypatch.setattr(observability.metrics, "add_metric", lambda **kw: added.append(kw["name"]))
    opt_in = ("EventsApplied", "AlertsPublished", "ImportsSeen", "CanvasRequests", "ImportsOpen")
    # what the alarms read (infra/monitoring.py), emitted whatever the setting
    alarmed = ("EventsAccepted", "EventsRejected", "IngestFailures", "AlertsFailed", "ReconcileFailures")
    for name in opt_in + alarmed:
        observability.count(name, 2)
    assert added == list(opt_in if detailed else ()) + list(alarmed)
    added.clear()
    observability.import_finished("success", 42.0)  # ImportsFinished (by outcome: a blob of its own) and ImportDuration
    assert added == (["ImportDuration"] if detailed else [])


def test_the_bare_stack_has_no_access_log_detailed_metrics_or_90_day_batches(bare_synth):
    from scripts.cost import read_template

    (stage,) = of_type(bare_synth, "AWS::ApiGatewayV2::Stage").values()
    assert "AccessLogSettings" not in stage["Properties"]
    d = read_template(bare_synth.template.to_json())
    assert (d.access_log_retention_days, d.detailed_metrics, d.retention_days) == (None, False, 30)


def test_no_alarm_reads_a_metric_that_is_emitted_only_with_detailed_metrics(bare_synth, synthesized):
    from sis_imports.adapters.observability import DETAILED_ONLY

    for synth in (bare_synth, synthesized):
        read = set()
        for alarm in of_type(synth, "AWS::CloudWatch::Alarm").values():
            props = alarm["Properties"]
            read |= {props["MetricName"]} if "MetricName" in props else {
                m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m}
        assert {"EventsAccepted", "EventsRejected", "IngestFailures", "AlertsFailed"} <= read  # the app's own
        assert not read & DETAILED_ONLY
