"""`make cost`: its arithmetic on a small template written here, and one run on the synthesized stack.

Expected figures are worked out from the pricing rules (per request, per GB-second, per alarm metric, an
index's delete and put when its key changes, ...), not read back from the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from scripts import cost_model
from scripts.cost import main, read_template
from scripts.cost_model import Assumptions, Index, monthly_bill
from scripts.prices import AS_OF, PRICES

GB = 1024**3
MONTH_SECONDS = 730 * 3600
MONTH_DAYS = 730 / 24

# Each price a different value, so that a line multiplied by the wrong price is a wrong figure.
P = {name: float(i + 2) for i, name in enumerate(sorted(PRICES))}

SIMPLE = Assumptions(
    events_per_import=4, outcome_mix={"success": 0.5, "warning": 0.25, "failure": 0.25},
    duration_ms={"ingest": 100, "notifier": 200}, init_seconds=1.0, cold_starts_per_hour=1.0,
    debug_log_bytes={"ingest": 1000, "notifier": 800}, app_log_bytes={"notifier": 1000}, emf_bytes={"ingest": 100, "notifier": 100},
    unusual_share=0.1, open_hours_per_import=0.5,
    platform_log_bytes=500, access_log_bytes=50, item_bytes=1000, index_entry_overhead_bytes=100,
    index_projected_bytes=200, via_https=1.0, via_sqs=0.0, via_eventbridge=0.0,
    baseline_item_bytes=1000, rhythm_item_bytes=2500, unusual_mark_bytes=40)


def fixture_template() -> dict:
    def fn(handler, memory, arch, tracing, env, logging):
        return {"Type": "AWS::Lambda::Function", "Properties": {
            "Handler": handler, "MemorySize": memory, "Architectures": [arch], "Timeout": 30,
            "TracingConfig": {"Mode": "Active" if tracing else "PassThrough"},
            "Environment": {"Variables": env}, "LoggingConfig": logging}}

    return {"Resources": {
        "Ingest": fn("handlers.ingest.handler", 1024, "arm64", True,
                     {"LOG_LEVEL": "INFO", "POWERTOOLS_LOGGER_SAMPLE_RATE": "0.25", "RETENTION_DAYS": "30",
                      "SIS_ROOT_ACCOUNTS": "a,b"},
                     {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "LogGroup": {"Ref": "IngestLogs"}}),
        "Notifier": fn("handlers.notifier.handler", 512, "x86_64", False,
                       {"LOG_LEVEL": "WARN", "TOPIC_ARN": {"Ref": "Topic"}},
                       {"LogFormat": "JSON", "SystemLogLevel": "WARN", "LogGroup": {"Ref": "NotifierLogs"}}),
        "IngestLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
        "NotifierLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 60}},
        "AccessLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
        "Stage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {
            "AccessLogSettings": {"DestinationArn": {"Fn::GetAtt": ["AccessLogs", "Arn"]}, "Format": "{}"}}},
        "Standard": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 300}},
        "HighRes": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 10}},
        "Math": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
            {"Id": "e", "Expression": "a + b + c"},
            *({"Id": x, "MetricStat": {"Metric": {"MetricName": x}, "Period": 3600, "Stat": "Sum"}} for x in "abc")]}},
        "Composite": {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmRule": "ALARM(Standard)"}},
        "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
        "Key1": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Key2": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "IdleQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},  # no event source: never polled
        "QueueSource": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}, "FunctionName": {"Ref": "Ingest"}}},
        "StreamSource": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]}, "FunctionName": {"Ref": "Notifier"}}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": [
                {"IndexName": "by-activity", "Projection": {"ProjectionType": "KEYS_ONLY"}, "KeySchema": [
                    {"AttributeName": "root_account_uuid", "KeyType": "HASH"},
                    {"AttributeName": "last_event_at", "KeyType": "RANGE"}]},
                {"IndexName": "open",
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["workflow_state"]},
                 "KeySchema": [{"AttributeName": "root_account_uuid", "KeyType": "HASH"},
                               {"AttributeName": "open_since", "KeyType": "RANGE"}]}]}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}},
        "OtherTopic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "FailuresOnly": {"Type": "AWS::SNS::Subscription", "Properties": {
            "Protocol": "email", "TopicArn": {"Ref": "Topic"}, "FilterPolicy": {"outcome": ["failure"]}}},
        "FailuresOrUnusual": {"Type": "AWS::SNS::Subscription", "Properties": {
            "Protocol": "email", "TopicArn": {"Ref": "Topic"},
            "FilterPolicy": {"$or": [{"outcome": ["failure", "stuck"]}, {"unusual": ["true"]}]}}},
        "Everything": {"Type": "AWS::SNS::Subscription",
                       "Properties": {"Protocol": "email", "TopicArn": {"Ref": "Topic"}}},
        "OpsMail": {"Type": "AWS::SNS::Subscription",
                    "Properties": {"Protocol": "email", "TopicArn": {"Ref": "OtherTopic"}}},
    }}


def lines_by_item(lines):
    return {(line.group, line.item): line.usd for line in lines}


def test_the_template_is_read_as_deployed():
    d = read_template(fixture_template())
    ingest, notifier = sorted(d.functions, key=lambda f: f.role)
    assert (ingest.role, ingest.memory_mb, ingest.architecture, ingest.tracing, ingest.log_retention_days) == \
        ("ingest", 1024, "arm64", True, 30)
    assert (notifier.role, notifier.architecture, notifier.tracing) == ("notifier", "x86_64", False)
    assert (notifier.app_log_level, notifier.system_log_level, notifier.code_log_level) == ("WARN", "WARN", "WARN")
    assert (ingest.app_log_level, ingest.code_log_level, ingest.log_sample_rate) == ("DEBUG", "INFO", 0.25)
    assert sorted((a.metrics, a.high_resolution, a.composite) for a in d.alarms) == \
        [(0, False, True), (1, False, False), (1, True, False), (3, False, False)]
    assert (d.dashboards, d.kms_keys, d.polled_queues, d.point_in_time_recovery) == (1, 2, 1, True)
    assert [(i.name, i.keys, i.projection) for i in d.indexes] == [
        ("by-activity", ("root_account_uuid", "last_event_at"), "KEYS_ONLY"),
        ("open", ("root_account_uuid", "open_since"), "INCLUDE")]
    assert (d.root_accounts, d.retention_days, d.access_log_retention_days, d.canvas_instances) == (2, 30, 7, 0)
    assert d.detailed_metrics is False  # no function has DETAILED_METRICS=true
    # the ops topic's subscriber gets no alert
    assert sorted(d.email_subscriptions, key=lambda x: (x is not None, len(x or ()))) == [
        None, frozenset({"failure"}), frozenset({"failure", "stuck", "unusual"})]


def test_each_line_is_its_quantity_times_its_price():
    events = 400_000  # 100,000 imports, 100,000 alerts
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), events, None, P, SIMPLE))

    assert lines[("CloudWatch", "dashboards")] == 1 * P["cloudwatch_dashboard"]
    assert lines[("CloudWatch", "alarms")] == pytest.approx(
        4 * P["cloudwatch_alarm_metric_standard"] + 1 * P["cloudwatch_alarm_metric_high_resolution"]
        + 1 * P["cloudwatch_alarm_composite"])
    assert lines[("KMS", "customer managed keys")] == 2 * P["kms_key_month"]
    # 5 pollers, one 20 s long poll after another, all month, on the one polled queue
    assert lines[("SQS", "event source long polls")] == pytest.approx(5 * MONTH_SECONDS / 20 * P["sqs_request"])
    assert lines[("Ingress", "HTTP API requests")] == pytest.approx(events * P["http_api_request"])
    assert lines[("Lambda", "requests")] == pytest.approx((events + 100_000) * P["lambda_request"])
    # ingest: 400,000 x 0.1 s at 1 GB, plus one 1 s init an hour; notifier: 100,000 x 0.2 s at 0.5 GB, plus inits
    assert lines[("Lambda", "duration: ingest")] == pytest.approx((40_000 + 730) * P["lambda_gb_second_arm64"])
    assert lines[("Lambda", "duration: notifier")] == pytest.approx((10_000 + 365) * P["lambda_gb_second_x86_64"])
    # per import: 4 item writes; activity index (key changes every event): put, then delete + put x 3 = 7;
    # open index: put, rewritten twice (workflow_state projected), deleted at the end = 4
    assert lines[("DynamoDB", "writes")] == pytest.approx(100_000 * 15 * P["dynamodb_write_request_unit"])
    stored_gb = 100_000 * 30 / MONTH_DAYS * (1000 + 100 + 300) / GB
    assert lines[("DynamoDB", "storage")] == pytest.approx(stored_gb * P["dynamodb_storage_gb_month"])
    assert lines[("DynamoDB", "point-in-time recovery")] == pytest.approx(stored_gb * P["dynamodb_pitr_gb_month"])
    assert lines[("SNS", "alert publishes")] == pytest.approx(100_000 * P["sns_publish"])
    # the failures-only subscription gets a quarter of the alerts; failures-or-unusual that quarter and the
    # unusual tenth of the other three quarters (stuck alerts are not in the mix); the last every one
    assert lines[("SNS", "email deliveries")] == pytest.approx((25_000 + 32_500 + 100_000) * P["sns_email"])
    # ingest: its per-event DEBUG line in the quarter of calls sampled at DEBUG (Lambda lets DEBUG through),
    # EMF, and the platform lines (system level INFO); the notifier at WARN (app and platform): EMF only;
    # the API's access lines
    ingest, notifier, access = events * (250 + 100 + 500), 100_000 * 100, events * 50
    assert lines[("CloudWatch Logs", "ingestion")] == pytest.approx(
        (ingest + notifier + access) / GB * P["cloudwatch_logs_ingestion_gb"])
    assert lines[("CloudWatch Logs", "storage")] == pytest.approx(
        (ingest * 30 + notifier * 60 + access * 7) / MONTH_DAYS / GB * P["cloudwatch_logs_storage_gb_month"])
    # only ingest is traced, and 400,000 a month is under the 1-a-second reservoir
    assert lines[("X-Ray", "traces recorded")] == pytest.approx(events * P["xray_trace_recorded"])
    # no reconciler, no detailed metrics (ImportDuration and ImportsFinished are): EventsAccepted, emitted
    # every hour at this rate
    assert lines[("CloudWatch", "custom metrics")] == pytest.approx(1 * P["cloudwatch_custom_metric"], rel=1e-6)
    assert lines[("Secrets Manager", "secrets")] == 0
    assert cost_model.total(monthly_bill(read_template(fixture_template()), events, None, P, SIMPLE)) == \
        pytest.approx(sum(lines.values()))


def test_the_detailed_metrics_are_priced_only_when_a_function_is_told_to_emit_them():
    template = fixture_template()
    template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]["DETAILED_METRICS"] = "true"
    d = read_template(template)
    assert d.detailed_metrics is True
    lines = lines_by_item(monthly_bill(d, 400_000, None, P, SIMPLE))
    # EventsApplied (ingest) and AlertsPublished (notifier) join the 5, each every hour at this rate
    assert lines[("CloudWatch", "custom metrics")] == pytest.approx(7 * P["cloudwatch_custom_metric"], rel=1e-6)


def test_the_notifiers_line_is_info_for_an_alert_that_needs_a_person_and_debug_for_a_plain_success():
    def notifier_log_bytes(env, logging):
        template = fixture_template()
        template["Resources"]["Notifier"]["Properties"]["Environment"]["Variables"] = env
        template["Resources"]["Notifier"]["Properties"]["LoggingConfig"] = {
            "LogGroup": {"Ref": "NotifierLogs"}, "SystemLogLevel": "WARN", **logging}
        lines = lines_by_item(monthly_bill(read_template(template), 400_000, None, P, SIMPLE))
        ingest, access = 400_000 * (250 + 100 + 500), 400_000 * 50  # as in the line-by-line test
        return lines[("CloudWatch Logs", "ingestion")] / P["cloudwatch_logs_ingestion_gb"] * GB - ingest - access

    alerts, emf = 100_000, 100_000 * 100
    # SIMPLE: half the alerts are successes, a tenth of those unusual: 45% plain successes
    quiet = notifier_log_bytes({"LOG_LEVEL": "INFO"}, {"ApplicationLogLevel": "INFO"})
    assert quiet == pytest.approx(emf + alerts * 0.55 * 1000)
    # a plain success's line is DEBUG: written by the calls sampled at DEBUG, when Lambda lets DEBUG through
    assert notifier_log_bytes({"LOG_LEVEL": "INFO", "POWERTOOLS_LOGGER_SAMPLE_RATE": "0.5"},
                              {"ApplicationLogLevel": "DEBUG"}) == pytest.approx(quiet + alerts * 0.45 * 0.5 * 800)
    assert notifier_log_bytes({"LOG_LEVEL": "DEBUG"}, {"ApplicationLogLevel": "DEBUG"}) == \
        pytest.approx(quiet + alerts * 0.45 * 800)


def test_email_subscribers_given_replace_the_templates_and_get_every_alert():
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), 400_000, 3, P, SIMPLE))
    assert lines[("SNS", "email deliveries")] == pytest.approx(300_000 * P["sns_email"])


def test_the_per_event_line_is_billed_only_when_both_the_logger_and_lambda_let_debug_through():
    def logs(env, logging):
        template = fixture_template()
        template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"] = env
        template["Resources"]["Ingest"]["Properties"]["LoggingConfig"] = {"LogGroup": {"Ref": "IngestLogs"}, **logging}
        lines = lines_by_item(monthly_bill(read_template(template), 400_000, None, P, SIMPLE))
        return lines[("CloudWatch Logs", "ingestion")] / P["cloudwatch_logs_ingestion_gb"] * GB

    others = 100_000 * 100 + 400_000 * 50  # the notifier's EMF and the access lines
    quiet = logs({"LOG_LEVEL": "INFO"}, {"ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"})
    assert quiet == pytest.approx(others + 400_000 * 100)  # EMF only
    # sampled at the logger but Lambda drops DEBUG: nothing more
    assert logs({"LOG_LEVEL": "INFO", "POWERTOOLS_LOGGER_SAMPLE_RATE": "0.5"},
                {"ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}) == pytest.approx(quiet)
    assert logs({"LOG_LEVEL": "INFO", "POWERTOOLS_LOGGER_SAMPLE_RATE": "0.5"},
                {"ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN"}) == pytest.approx(quiet + 400_000 * 500)
    # the logger at DEBUG: every call's line
    assert logs({"LOG_LEVEL": "DEBUG"}, {"ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN"}) == \
        pytest.approx(quiet + 400_000 * 1000)
    # platform lines at INFO
    assert logs({"LOG_LEVEL": "INFO"}, {"ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}) == \
        pytest.approx(quiet + 400_000 * 500)


def test_the_reconcilers_metrics_are_billed_only_for_hours_they_are_not_zero():
    reconciler = cost_model.Function(name="R", role="reconciler", memory_mb=512, architecture="x86_64",
                                     tracing=False, timeout_seconds=120, app_log_level="INFO",
                                     system_log_level="WARN", log_retention_days=30)
    def metric_months(events, detailed):
        d = cost_model.Deployment(functions=(reconciler,), canvas_instances=1, reconcile_lookback_hours=48,
                                  detailed_metrics=detailed)
        lines = lines_by_item(monthly_bill(d, events, 0, P, SIMPLE))
        return lines[("CloudWatch", "custom metrics")] / P["cloudwatch_custom_metric"]

    # no traffic: only CanvasRequests (every pass asks Canvas), in every hour (12 passes an hour), and only
    # with detailed metrics
    assert metric_months(0, detailed=True) == pytest.approx(1 - math.exp(-12))
    assert metric_months(0, detailed=False) == 0
    # 73 imports a month (0.1 an hour): ImportsSeen in the hours whose 48-hour window holds an import,
    # ImportsOpen in those an import overlaps (an hour, plus its half hour open); both detailed only
    seen, open_ = 1 - math.exp(-0.1 * 48), 1 - math.exp(-0.1 * 1.5)
    assert metric_months(4 * 73, detailed=True) == pytest.approx(1 - math.exp(-12) + seen + open_)
    assert metric_months(4 * 73, detailed=False) == 0


def test_zero_traffic_costs_only_what_stands():
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), 0, 1, P, SIMPLE))
    standing = {("CloudWatch", "dashboards"), ("CloudWatch", "alarms"), ("KMS", "customer managed keys"),
                ("SQS", "event source long polls")}
    assert {key for key, usd in lines.items() if usd} == standing


def test_past_the_reservoir_x_ray_records_one_trace_a_second_and_5_percent_of_the_rest():
    events = 10_000_000
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), events, 1, P, SIMPLE))
    assert lines[("X-Ray", "traces recorded")] == pytest.approx(
        (MONTH_SECONDS + 0.05 * (events - MONTH_SECONDS)) * P["xray_trace_recorded"])


def test_an_encrypted_alert_topic_in_constant_use_costs_two_kms_requests_per_publisher_every_5_minutes():
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), 10_000_000, 1, P, SIMPLE))
    # the notifier is the topic's one publisher here; 2.5M alerts leave no 5-minute window without one
    assert lines[("KMS", "requests (alert topic data keys)")] == pytest.approx(
        2 * MONTH_SECONDS / 300 * P["kms_request"], rel=1e-6)


def test_a_metric_is_billed_for_the_hours_it_is_emitted_in():
    # once an hour on average, at random: an hour has none with probability 1/e
    assert cost_model.hours_emitted(730) == pytest.approx(1 - 1 / math.e)
    assert cost_model.hours_emitted(0) == 0


@pytest.mark.parametrize(("keys", "projection", "attributes", "writes"), [
    (("root_account_uuid", "last_event_at"), "ALL", (), 1 + 2 * 3),  # key changes: delete + put each later event
    (("root_account_uuid", "last_event_at"), "KEYS_ONLY", (), 1 + 2 * 3),
    (("root_account_uuid", "open_since"), "ALL", (), 1 + 2 + 1),  # put, 2 rewrites, delete at the end
    (("root_account_uuid", "open_since"), "KEYS_ONLY", (), 1 + 1),  # put and delete only
    (("root_account_uuid", "open_since"), "INCLUDE", ("account_id",), 1 + 1),  # account_id never changes
    (("root_account_uuid", "sis_batch_id"), "ALL", (), 1 + 3),  # key never changes: a rewrite per event
    (("root_account_uuid", "first_event_at"), "KEYS_ONLY", (), 1),  # the list index: one put per batch
])
def test_index_writes_follow_dynamodbs_rules(keys, projection, attributes, writes):
    assert cost_model.index_writes_per_import(Index("i", keys, projection, attributes), 4) == writes


def test_an_index_on_an_attribute_without_a_rule_is_refused_by_name():
    with pytest.raises(ValueError, match="index by-user.*'created_by_login'"):
        cost_model.index_writes_per_import(Index("by-user", ("root_account_uuid", "created_by_login"), "ALL"), 4)


def test_a_function_without_a_traffic_rule_is_refused_by_name():
    template = fixture_template()
    template["Resources"]["Ingest"]["Properties"]["Handler"] = "handlers.mystery.handler"
    with pytest.raises(ValueError, match="function Ingest.*'mystery'"):
        monthly_bill(read_template(template), 1, 1, P, SIMPLE)


def test_the_transport_mix_moves_requests_between_lines():
    via_sqs = replace(SIMPLE, via_https=0.0, via_sqs=1.0)
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), 1_000, 1, P, via_sqs))
    assert lines[("Ingress", "HTTP API requests")] == 0
    # Canvas sends each event; Lambda receives and deletes in batches of 10
    assert lines[("Ingress", "Canvas queue requests")] == pytest.approx(1_200 * P["sqs_request"])


def test_the_synthesized_stack_is_priced_in_three_columns(synthesized, capsys):
    assert main(["--template", str(synthesized.template_file)]) == 0
    out = capsys.readouterr().out
    assert AS_OF in out
    header = next(line for line in out.splitlines() if "events" in line and "$" not in line)
    assert header.split() == ["0", "events", "100,000", "events", "10,000,000", "events"]
    (total_line,) = [line for line in out.splitlines() if line.startswith("TOTAL")]
    totals = [float(x.lstrip("$").replace(",", "")) for x in total_line.split()[3:]]
    assert len(totals) == 3 and 0 < totals[0] < totals[1] < totals[2]
    # each group's line carries its subtotals; together they make the total (to the cent, rounded per group)
    groups = [line.rsplit(None, 3)[1:] for line in out.splitlines()
              if line[:1].isalpha() and line.count("$") == 3 and not line.startswith("TOTAL")]
    assert len(groups) >= 8
    for column, total in enumerate(totals):
        assert sum(float(g[column].lstrip("$").replace(",", "")) for g in groups) == pytest.approx(total, abs=0.06)
    for source in {price.source for price in PRICES.values()}:
        assert source in out


def test_one_traffic_figure_prints_one_column_with_quantities(synthesized, capsys):
    assert main(["--template", str(synthesized.template_file), "--events-per-month", "100000", "--emails", "2"]) == 0
    out = capsys.readouterr().out
    assert "25,000 publishes" in out  # 4 events an import, one alert each
    assert "50,000 emails, 2 subscriber(s)" in out


def test_bad_arguments_are_named(capsys):
    with pytest.raises(SystemExit):
        main(["--events-per-month", "-5", "--template", "x.json"])
    assert "--events-per-month must be 0 or more, not -5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["-c", "canvas_sqs"])
    assert "-c takes KEY=VALUE, not 'canvas_sqs'" in capsys.readouterr().err


def test_a_template_that_cannot_be_priced_is_named(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}))
    assert main(["--template", str(path)]) == 2
    assert "the template has no Lambda function" in capsys.readouterr().err
    assert main(["--template", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_the_prices_are_dated_and_sourced_in_one_place():
    assert "us-east-1" in AS_OF and "as of" in AS_OF
    assert all(price.source.startswith(("AWS ", "Amazon ")) and price.source.endswith(" pricing")
               for price in PRICES.values())


def test_every_metric_the_code_emits_is_priced_or_named_as_unpriced():
    import re
    from pathlib import Path

    import sis_imports

    code = "\n".join(path.read_text() for path in Path(sis_imports.__file__).parents[1].rglob("*.py"))
    emitted = set(re.findall(r'\bcount\("(\w+)"', code))
    emitted |= set(re.findall(r'(?:single_metric|add_metric)\(name="(\w+)"', code))
    for table in re.findall(r"_METRIC = \{([^}]*)\}", code):
        emitted |= set(re.findall(r'"(\w+)"', table))
    priced = {name.split()[0] for name, _, _ in cost_model.CUSTOM_METRICS}
    assert "EventsApplied" in emitted and "ImportsFinished" in emitted  # the search finds the code's metrics
    assert emitted == priced | cost_model.UNPRICED_METRICS
    # the model's opt-in metrics are the code's: priced, and only with detailed_metrics
    from sis_imports.adapters.observability import DETAILED_ONLY

    assert cost_model.DETAILED_METRICS == DETAILED_ONLY and DETAILED_ONLY <= priced


@pytest.mark.parametrize(("projection", "read_items"), [("KEYS_ONLY", True), ("INCLUDE", False)])
def test_a_keys_only_open_index_costs_the_reconciler_a_read_of_each_open_item_each_pass(projection, read_items):
    reconciler = cost_model.Function(name="R", role="reconciler", memory_mb=512, architecture="x86_64",
                                     tracing=False, timeout_seconds=120, app_log_level="INFO",
                                     system_log_level="WARN", log_retention_days=30)
    attributes = ("workflow_state",) if projection == "INCLUDE" else ()
    index = Index("open", ("root_account_uuid", "open_since"), projection, attributes)
    d = cost_model.Deployment(functions=(reconciler,), canvas_instances=1, indexes=(index,))
    events = 4 * 7300  # 10 imports an hour, each open half an hour (SIMPLE): 5 open at a pass
    lines = lines_by_item(monthly_bill(d, events, 0, P, SIMPLE))
    reads = lines[("DynamoDB", "reads")] / P["dynamodb_read_request_unit"]
    passes = 730 * 12
    marker_and_query = passes * SIMPLE.reconcile_read_units
    # each open item (under 4 KB) an eventually consistent read: half a read unit
    assert reads == pytest.approx(marker_and_query + (passes * 5 * 0.5 if read_items else 0))


# -- the school's history (issue 17) ----------------------------------------------------------------

def with_history(sensitivity: str = "5", index_projection: dict | None = None) -> dict:
    """The fixture with a reconciler reading 2 Canvas instances every 5 minutes, and the notifier comparing ends
    with their baselines (sensitivity above 0, the table and the instances in its environment)."""
    template = fixture_template()
    resources = template["Resources"]
    instances = json.dumps([{"url": "https://a.example.edu"}, {"url": "https://b.example.edu"}])
    resources["Reconciler"] = {"Type": "AWS::Lambda::Function", "Properties": {
        "Handler": "handlers.reconciler.handler", "MemorySize": 512, "Architectures": ["arm64"], "Timeout": 120,
        "Environment": {"Variables": {"CANVAS_INSTANCES": instances}}, "LoggingConfig": {}}}
    resources["Notifier"]["Properties"]["Environment"]["Variables"].update(
        ANOMALY_SENSITIVITY=sensitivity, TABLE_NAME={"Ref": "Table"}, CANVAS_INSTANCES=instances)
    if index_projection is not None:
        resources["Table"]["Properties"]["GlobalSecondaryIndexes"][0]["Projection"] = index_projection
    return template


PASSES = 730 * 12  # each instance's, a month of 5-minute passes


def test_the_schools_history_is_priced_per_end_alert_per_pass_and_per_instance():
    events = 400_000  # 100,000 imports, 50,000 per instance; SIMPLE: half succeed, a quarter warn, a tenth unusual
    d = read_template(with_history())
    assert d.unusual_check and d.canvas_instances == 2
    lines = lines_by_item(monthly_bill(d, events, None, P, SIMPLE))
    rru, wru = P["dynamodb_read_request_unit"], P["dynamodb_write_request_unit"]
    # A pass of one instance finds a new creation unless none of its 50,000 a month came in its 5 minutes
    # (Poisson: 50,000 / 8,760 a pass), a new successful end unless none of its 37,500 did.
    with_creation = PASSES * (1 - math.exp(-50_000 / PASSES))
    with_success = PASSES * (1 - math.exp(-37_500 / PASSES))
    # baselines (1,000 bytes: 1 read unit strongly consistent, half eventually, and 1 write unit): the notifier
    # reads one per end alert (eventually consistent) and writes one per successful end (imported and
    # imported_with_messages, 75,000); the reconciler reads one per pass that lists a new successful end
    # (consistent), and finds it recorded
    assert lines[("DynamoDB", "history: baselines")] == pytest.approx(
        (100_000 / 2 + 2 * with_success) * rru + 75_000 * wru)
    # rhythm (2,500 bytes: 1 read unit, 3 write units): read every pass of each instance, written by a pass
    # that finds a creation
    assert lines[("DynamoDB", "history: rhythm")] == pytest.approx(
        2 * PASSES * rru + 2 * with_creation * 3 * wru)
    # 10,000 unusual ends, each marked on its batch: 1,000 bytes and the 40-byte mark cross 1 KB (2 units); the
    # keys-only activity index holds no mark and the open index no longer holds an ended batch
    assert lines[("DynamoDB", "unusual marks")] == pytest.approx(10_000 * 2 * wru)
    # invocations: each event's ingest, each end alert, each rhythm write and mark (both pass the notifier's
    # stream filter), each instance's passes
    assert lines[("Lambda", "requests")] == pytest.approx(
        (events + 100_000 + 2 * with_creation + 10_000 + 2 * PASSES) * P["lambda_request"])


def test_without_the_unusual_check_the_reconciler_alone_keeps_the_history():
    lines = lines_by_item(monthly_bill(read_template(with_history(sensitivity="0")), 400_000, None, P, SIMPLE))
    rru, wru = P["dynamodb_read_request_unit"], P["dynamodb_write_request_unit"]
    with_success = PASSES * (1 - math.exp(-37_500 / PASSES))
    # no read per end alert; the reconciler writes the ends of a pass in one write
    assert lines[("DynamoDB", "history: baselines")] == pytest.approx(2 * with_success * (rru + wru))
    assert lines[("DynamoDB", "unusual marks")] == 0


def test_a_mark_rewrites_the_entry_of_an_index_that_holds_ended_batches_and_projects_it():
    projections = {"ALL": {"ProjectionType": "ALL"},
                   "INCLUDE unusual": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["unusual"]},
                   "INCLUDE other": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["workflow_state"]}}
    marks = {}
    for name, projection in projections.items():
        lines = lines_by_item(monthly_bill(read_template(with_history(index_projection=projection)), 400_000, None,
                                           P, SIMPLE))
        marks[name] = lines[("DynamoDB", "unusual marks")] / P["dynamodb_write_request_unit"]
    assert marks == pytest.approx({"ALL": 10_000 * 3, "INCLUDE unusual": 10_000 * 3, "INCLUDE other": 10_000 * 2})


def test_no_reconciler_no_history():
    lines = lines_by_item(monthly_bill(read_template(fixture_template()), 400_000, None, P, SIMPLE))
    assert lines[("DynamoDB", "history: baselines")] == lines[("DynamoDB", "history: rhythm")] == 0
    assert lines[("DynamoDB", "unusual marks")] == 0


def test_an_unreadable_sensitivity_is_named():
    with pytest.raises(ValueError, match="ANOMALY_SENSITIVITY is not a number: 'high'"):
        read_template(with_history(sensitivity="high"))
