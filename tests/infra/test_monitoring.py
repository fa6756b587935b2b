"""Operations (issue 11) in the synthesized templates: the ops topic and its key, every alarm wired to
it with a runbook entry, the dashboard, the list route and its index. The default and the variant
synth of conftest.py, nothing more."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.monitoring import ENTRIES
from sis_imports.core.table import LIST_INDEX, PARTITION_KEY

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
DESCRIBED = re.compile(r'Runbook: "([^"]+)" in docs/runbook\.md\.$')


def resources(template, kind):
    return template.find_resources(kind)


def ref_name(value):
    return value.get("Ref") or value["Fn::GetAtt"][0]


def alarms(template):
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()}


def ops_topic(template):
    (topic_id,) = [k for k in resources(template, "AWS::SNS::Topic") if k.startswith("OpsTopic")]
    return topic_id


def dead_letter_queues(template):
    """Every queue the template uses as a dead-letter queue or an on-failure destination."""
    found = set()
    for resource in template.to_json()["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            found.add(ref_name(props["RedrivePolicy"]["deadLetterTargetArn"]))
        if resource["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination:
                found.add(ref_name(destination))
        if resource["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                if "DeadLetterConfig" in target:
                    found.add(ref_name(target["DeadLetterConfig"]["Arn"]))
    return {q for q in found if q in resources(template, "AWS::SQS::Queue")}


def test_the_ops_topic_is_encrypted_with_a_rotated_key_cloudwatch_and_eventbridge_may_use(template):
    topic_id = ops_topic(template)
    topic = template.to_json()["Resources"][topic_id]["Properties"]
    (key_id,) = resources(template, "AWS::KMS::Key")
    assert ref_name(topic["KmsMasterKeyId"]) == key_id  # customer managed, not alias/aws/sns
    key = template.to_json()["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    alarms_ = statements["AllowThisAccountsAlarmsToPublishToTheOpsTopic"]
    assert alarms_["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms_["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert alarms_["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":alarm:*" in json.dumps(alarms_["Condition"]["ArnLike"]["aws:SourceArn"])
    rules = statements["AllowEventBridgeRulesToPublishToTheOpsTopic"]
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(rules["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "Condition" not in rules  # EventBridge's KMS requests carry no source keys: the topic policy scopes it
    # The topic's policy: TLS only, and each service only for this account's alarms or rules.
    (policy,) = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(template, "AWS::SNS::TopicPolicy").values()
                 if ref_name(p["Properties"]["Topics"][0]) == topic_id]
    allows = {s["Principal"]["Service"]: s for s in policy if s["Effect"] == "Allow"}
    assert set(allows) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in allows.values():
        assert statement["Action"] == "sns:Publish"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)
    outputs = template.to_json()["Outputs"]
    assert ref_name(outputs["OpsTopicArn"]["Value"]) == topic_id


def test_ops_emails_subscribe_to_the_ops_topic_and_notify_emails_to_the_alert_topic(template, variant):
    assert not [s for s in resources(template, "AWS::SNS::Subscription").values() if s["Properties"]["Protocol"] == "email"]
    by_topic = {}
    for sub in resources(variant, "AWS::SNS::Subscription").values():
        if sub["Properties"]["Protocol"] != "email":
            continue
        by_topic.setdefault(ref_name(sub["Properties"]["TopicArn"]), set()).add(sub["Properties"]["Endpoint"])
    assert by_topic[ops_topic(variant)] == {"oncall@example.edu"}
    (alert_topic,) = [k for k in by_topic if k.startswith("AlertsTopic")]
    assert by_topic[alert_topic] == {"ops@example.edu", "registrar@example.edu"}


def test_every_alarm_goes_to_the_ops_topic_and_names_its_runbook_entry(template, variant):
    headings = set(re.findall(r"^### (.+)$", RUNBOOK.read_text(), flags=re.M))
    used = set()
    for t in (template, variant):
        topic = ops_topic(t)
        assert alarms(t)
        for name, alarm in alarms(t).items():
            assert name.startswith(("CanvasSisImports-prod-", "CanvasSisImports-staging-")), name
            assert [ref_name(a) for a in alarm["AlarmActions"]] == [topic], name
            assert [ref_name(a) for a in alarm["OKActions"]] == [topic], name
            assert alarm.get("ActionsEnabled", True) is True
            title = DESCRIBED.search(alarm["AlarmDescription"])
            assert title and title[1] in headings, (name, alarm["AlarmDescription"])
            assert len(alarm["AlarmDescription"]) <= 1024
            used.add(title[1])
    # Every alarm's entry is in the runbook, and every entry the stack knows is (the general one for a
    # dead-letter queue without an entry of its own yet included).
    assert used <= headings == {entry.title for entry in ENTRIES.values()}
    assert len(used) >= 14


def test_any_dead_letter_is_an_alarm(template, variant):
    for t in (template, variant):
        dlqs = dead_letter_queues(t)
        assert len(dlqs) >= 3
        watched = {ref_name(a["Dimensions"][0]["Value"]) for a in alarms(t).values()
                   if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"}
        assert watched == dlqs
        for alarm in alarms(t).values():
            if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible":
                assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
                assert alarm["Statistic"] == "Maximum" and alarm["TreatMissingData"] == "notBreaching"
    assert {"CanvasSisImports-prod-canvas-dlq", "CanvasSisImports-prod-eventbridge-dlq",
            "CanvasSisImports-prod-notifier-failures"} <= set(alarms(template))
    assert "CanvasSisImports-staging-canvas-dlq" not in alarms(variant)  # canvas_sqs=false


def test_the_canvas_queues_oldest_message_is_an_alarm(template, variant):
    age = alarms(template)["CanvasSisImports-prod-canvas-queue-age"]
    assert age["MetricName"] == "ApproximateAgeOfOldestMessage" and age["Threshold"] == 900
    assert ref_name(age["Dimensions"][0]["Value"]).startswith("CanvasQueue")
    assert age["Dimensions"][0]["Value"]["Fn::GetAtt"][1] == "QueueName"
    assert "CanvasSisImports-staging-canvas-queue-age" not in alarms(variant)


def test_every_function_has_an_errors_and_a_throttles_alarm_and_the_notifier_its_iterator_age(template, variant):
    for t in (template, variant):
        functions = {k for k, f in resources(t, "AWS::Lambda::Function").items()
                     if str(f["Properties"].get("Handler", "")).startswith("handlers.")}
        for metric in ("Errors", "Throttles"):
            watched = {ref_name(a["Dimensions"][0]["Value"]) for a in alarms(t).values()
                       if a.get("Namespace") == "AWS/Lambda" and a.get("MetricName") == metric}
            assert watched == functions, metric
        (age,) = [a for a in alarms(t).values() if a.get("MetricName") == "IteratorAge"]
        assert ref_name(age["Dimensions"][0]["Value"]).startswith("FunctionsNotifier")
        assert age["Statistic"] == "Maximum" and age["Threshold"] == 600_000
    assert "CanvasSisImports-staging-reconciler-errors" in alarms(variant)
    assert "CanvasSisImports-prod-reconciler-errors" not in alarms(template)


def test_api_5xx_and_a_surge_of_401_403_answers_are_alarms(template, variant):
    five = alarms(template)["CanvasSisImports-prod-api-5xx"]
    assert (five["Namespace"], five["MetricName"], five["Threshold"]) == ("AWS/ApiGateway", "5xx", 5)
    assert ref_name(five["Dimensions"][0]["Value"]).startswith("IngressApi")
    for t, threshold in ((template, 50), (variant, 20)):  # auth_failures_per_hour
        (surge,) = [a for n, a in alarms(t).items() if n.endswith("-auth-refusals")]
        assert surge["Threshold"] == threshold and surge["EvaluationPeriods"] == 1
        (expression,) = [m for m in surge["Metrics"] if "Expression" in m]
        assert expression["Expression"] == "FILL(unauthorized, 0) + FILL(forbidden, 0)"
        reasons = {m["Id"]: {d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"]}
                   for m in surge["Metrics"] if "MetricStat" in m}
        assert reasons == {"unauthorized": {"service": "canvas-sis-imports", "reason": "unauthorized"},
                           "forbidden": {"service": "canvas-sis-imports", "reason": "not_allowed"}}
        assert {m["MetricStat"]["Period"] for m in surge["Metrics"] if "MetricStat" in m} == {3600}


def test_the_apps_own_failure_counts_are_alarms(template, variant):
    for name in ("ingest-failures", "alerts-failed"):
        alarm = alarms(template)[f"CanvasSisImports-prod-{name}"]
        assert alarm["Namespace"] == "CanvasSisImports" and alarm["Threshold"] == 1
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "canvas-sis-imports"}]
    assert {"IngestFailures", "AlertsFailed"} <= {a.get("MetricName") for a in alarms(template).values()}
    # Reconcile failures only with the reconciler: 3 passes in a row (reconcile_minutes=10 in the variant).
    assert "ReconcileFailures" not in {a.get("MetricName") for a in alarms(template).values()}
    reconcile = alarms(variant)["CanvasSisImports-staging-reconcile-failures"]
    assert reconcile["MetricName"] == "ReconcileFailures" and reconcile["Period"] == 600
    assert reconcile["EvaluationPeriods"] == reconcile["DatapointsToAlarm"] == 3


def test_the_heartbeat_alarms_on_silence_over_heartbeat_hours(template, variant):
    for t, hours in ((template, 26), (variant, 50)):
        (beat,) = [a for n, a in alarms(t).items() if n.endswith("-heartbeat")]
        assert (beat["Namespace"], beat["MetricName"], beat["Statistic"]) == ("CanvasSisImports", "EventsAccepted", "Sum")
        assert beat["Dimensions"] == [{"Name": "service", "Value": "canvas-sis-imports"}]
        assert beat["ComparisonOperator"] == "LessThanThreshold" and beat["Threshold"] == 1
        assert beat["Period"] == 3600 and beat["EvaluationPeriods"] == beat["DatapointsToAlarm"] == hours
        assert beat["TreatMissingData"] == "breaching"  # no data at all is the silence it is about
        assert beat["Period"] * beat["EvaluationPeriods"] <= 7 * 86400  # what CloudWatch accepts


def test_heartbeat_hours_zero_turns_the_heartbeat_off():
    """A bare stack with the monitoring construct alone: no third full synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_apigatewayv2 as apigwv2
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sqs as sqs
    from aws_cdk.assertions import Template

    from infra.config import load_config
    from infra.monitoring import DeadLetters, Monitored, Monitoring

    stack = cdk.Stack(cdk.App(), "Bare")
    fn = lambda_.Function(stack, "F", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.h",
                          code=lambda_.Code.from_inline("def h(e, c): pass"))
    config = load_config({"root_account_uuids": "u1", "heartbeat_hours": "0"}.get)
    Monitoring(stack, "M", config=config, topic=sns.Topic(stack, "T"), monitored=Monitored(
        functions={"Ingest": fn}, notifier=fn, api=apigwv2.HttpApi(stack, "A"),
        dead_letters=[DeadLetters("dlq", "canvas_dlq", "DLQ", sqs.Queue(stack, "Q"))], canvas_queue=None,
        reconciler=None))
    names = [a["Properties"]["AlarmName"] for a in Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()]
    assert names and not [n for n in names if n.endswith("-heartbeat")]


def test_the_dashboard_shows_imports_events_alerts_dead_letters_errors_and_latencies(template, variant):
    for t, stage in ((template, "prod"), (variant, "staging")):
        (dashboard,) = resources(t, "AWS::CloudWatch::Dashboard").values()
        assert dashboard["Properties"]["DashboardName"] == f"CanvasSisImports-{stage}"
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        for title in ("Imports finished per hour, by outcome", "Import duration (seconds) against the usual band",
                      "Stuck and missed imports",
                      "Events rejected, by reason", "Alerts", "Dead letters", "Function errors", "Function throttles",
                      "Function duration p90", "HTTP API", "Latency p90", "Alarms"):
            assert title in body, title
        # The notifier's metrics (issue 10), by every dimension they carry: ImportsFinished by outcome.
        for metric in ("ImportsFinished", "ImportDuration", "EventsRejected"):
            assert f'MetricName=\\\\\\"{metric}\\\\\\"' in body or f'MetricName=\\"{metric}\\"' in body or metric in body
        assert "SEARCH(" in body and "ImportsFinished" in body and "ImportDuration" in body
        for metric in ("EventsAccepted", "EventsIgnored", "AlertsFailed", "ImportsStuck",
                       "ApproximateNumberOfMessagesVisible", "IteratorAge", "Duration", "IntegrationLatency"):
            assert metric in body, metric
    assert "Canvas API (reconciler)" in json.dumps(resources(variant, "AWS::CloudWatch::Dashboard"))
    assert "Canvas API (reconciler)" not in json.dumps(resources(template, "AWS::CloudWatch::Dashboard"))
    assert template.to_json()["Outputs"]["DashboardName"]


def test_import_durations_are_drawn_against_the_band_of_a_declared_anomaly_model(template, variant):
    """The hourly median of ImportDuration (the notifier's, per end) with CloudWatch's anomaly detection
    band of that very metric and statistic, whose model the stack declares (so it learns from the deploy)."""
    for t in (template, variant):
        (dashboard,) = resources(t, "AWS::CloudWatch::Dashboard").values()
        body = json.loads("".join(p if isinstance(p, str) else "" for p in
                                  dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]))
        (widget,) = [w for w in body["widgets"] if w.get("properties", {}).get("title", "").startswith("Import duration")]
        lines = widget["properties"]["metrics"]
        (band,) = [line[0] for line in lines if "expression" in line[0]]
        median_id = re.fullmatch(r"ANOMALY_DETECTION_BAND\((\w+), 2\)", band["expression"])[1]
        (median,) = [line for line in lines if isinstance(line[-1], dict) and line[-1].get("id") == median_id]
        assert median[:4] == ["CanvasSisImports", "ImportDuration", "service", "canvas-sis-imports"]
        assert median[-1]["stat"] == "p50" and median[-1]["period"] == 3600 and median[-1].get("visible", True)
        (model,) = [r["Properties"] for r in resources(t, "AWS::CloudWatch::AnomalyDetector").values()]
        assert model["SingleMetricAnomalyDetector"] == {
            "Namespace": "CanvasSisImports", "MetricName": "ImportDuration", "Stat": "p50",
            "Dimensions": [{"Name": "service", "Value": "canvas-sis-imports"}]}
        (finished,) = [w for w in body["widgets"] if w.get("properties", {}).get("title", "").startswith("Imports finished")]
        assert "ImportsFinished" in json.dumps(finished) and ", 3600)" in json.dumps(finished)  # per hour


def dashboard_widgets(template) -> dict[str, str]:
    """Each graph's title -> its JSON (the body's tokens left out)."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads("".join(p if isinstance(p, str) else "" for p in
                              dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]))
    return {w["properties"]["title"]: json.dumps(w["properties"]) for w in body["widgets"]
            if "title" in w.get("properties", {})}


def test_a_dashboard_asks_for_the_detailed_metrics_it_draws(template, variant, bare_synth):
    """The variant asks for the dashboard and not for detailed_metrics: its functions are told to emit the
    metrics the dashboard draws (observability.DETAILED_ONLY) all the same. The bare stack asks for neither:
    no dashboard, and none of its functions emits them."""
    from sis_imports.adapters.observability import DETAILED_ONLY

    drawn = dashboard_widgets(variant)
    for metric, graph in (("EventsApplied", "Events"), ("AlertsPublished", "Alerts"),
                          ("ImportsFinished", "Imports finished per hour, by outcome"),
                          ("ImportDuration", "Import duration (seconds) against the usual band"),
                          ("ImportsSeen", "Stuck and missed imports (reconciler)"),
                          ("ImportsOpen", "Stuck and missed imports (reconciler)"),
                          ("CanvasRequests", "Canvas API (reconciler)")):
        assert metric in DETAILED_ONLY and metric in drawn[graph], metric  # by name, or in a SEARCH
    bare = bare_synth.template
    assert resources(bare, "AWS::CloudWatch::Dashboard") == {}
    for t, told in ((template, True), (variant, True), (bare, False)):
        handlers = [f["Properties"] for f in resources(t, "AWS::Lambda::Function").values()
                    if str(f["Properties"].get("Handler", "")).startswith("handlers.")]
        assert handlers
        for f in handlers:
            assert (f.get("Environment", {}).get("Variables", {}).get("DETAILED_METRICS") == "true") is told


def test_the_list_route_reads_a_keys_only_index_on_the_first_event(template, variant):
    for t in (template, variant):
        (table,) = resources(t, "AWS::DynamoDB::Table").values()
        props = table["Properties"]
        (index,) = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == LIST_INDEX]
        assert index["KeySchema"] == [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                                      {"AttributeName": "first_event_at", "KeyType": "RANGE"}]
        assert {"AttributeName": "first_event_at", "AttributeType": "S"} in props["AttributeDefinitions"]
        # Keys only, on a key no later event changes: one index write per batch (issue 18).
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
        assert not any(i["IndexName"] == "batches-by-activity" for i in props["GlobalSecondaryIndexes"])
    outputs = template.to_json()["Outputs"]
    assert outputs["RootAccountUuids"]["Value"] == "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
    assert variant.to_json()["Outputs"]["RootAccountUuids"]["Value"] == (
        "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs,SecondRootAccountUuid0000000000000000000")
