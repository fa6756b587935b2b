"""What matters in the synthesized template (not a snapshot)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks

from sis_imports.table import KEY_SCHEMA, STREAM_VIEW_TYPE, TTL_ATTRIBUTE

ALLOWED_ON_ANY_RESOURCE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams"}


def resources(template, kind):
    return template.find_resources(kind)


def only(template, kind, **props):
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"{len(found)} {kind}"
    return next(iter(found.values()))


def statements(template):
    for policy in list(resources(template, "AWS::IAM::Policy").values()):
        yield from policy["Properties"]["PolicyDocument"]["Statement"]
    for role in resources(template, "AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            yield from inline["PolicyDocument"]["Statement"]


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_table_is_keyed_by_account_and_batch_with_stream_pitr_ttl_and_retained(template):
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == KEY_SCHEMA
    assert props["StreamSpecification"] == {"StreamViewType": STREAM_VIEW_TYPE}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain"


def test_topic_accepts_tls_only_and_is_encrypted(template):
    topic = only(template, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::Join": Match.any_value()} or "alias/aws/sns" in json.dumps(
        topic["Properties"]["KmsMasterKeyId"]
    )
    (policy,) = resources(template, "AWS::SNS::TopicPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_notifier_stream_mapping_keeps_failures_and_skips_non_terminal_records(template):
    mappings = template.find_resources(
        "AWS::Lambda::EventSourceMapping",
        {"Properties": {"StartingPosition": "TRIM_HORIZON"}},
    )
    (mapping,) = mappings.values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 86400
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination["Fn::GetAtt"][0].startswith("AlertsNotifierFailures")
    (pattern,) = props["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"terminal": {"BOOL": [True]}}},
    }


def test_stage_is_throttled_and_access_logged_without_query_strings(template, variant):
    stage = only(template, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}
    log_format = stage["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format and "querystring" not in log_format.lower()
    assert "rawQueryString" not in log_format
    variant_stage = only(variant, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert variant_stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 40, "ThrottlingRateLimit": 20}


def test_webhook_is_open_to_canvas_and_the_query_needs_iam(template):
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"POST /events", "GET /batches/{root_account_uuid}/{sis_batch_id}"}
    assert routes["POST /events"].get("AuthorizationType", "NONE") == "NONE"
    assert routes["GET /batches/{root_account_uuid}/{sis_batch_id}"]["AuthorizationType"] == "AWS_IAM"


def test_no_iam_action_wildcards_and_resource_wildcards_only_where_aws_offers_no_other(template):
    seen = 0
    for statement in statements(template):
        seen += 1
        actions = as_list(statement.get("Action", []))
        assert not any("*" in action for action in actions), statement
        if "*" in as_list(statement.get("Resource", [])):
            assert set(actions) <= ALLOWED_ON_ANY_RESOURCE, statement
    assert seen > 10


def test_writers_may_only_write_and_the_query_only_read(template):
    def actions_of(role_prefix):
        out = set()
        for name, policy in resources(template, "AWS::IAM::Policy").items():
            if name.startswith(role_prefix):
                for s in policy["Properties"]["PolicyDocument"]["Statement"]:
                    out |= {a for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
        return out

    assert actions_of("FunctionsIngestRole") == {"dynamodb:UpdateItem", "dynamodb:PutItem"}
    assert actions_of("FunctionsQueryRole") == {"dynamodb:GetItem"}


def test_functions_run_python_313_traced_with_the_shared_layer_and_their_own_roles(template):
    functions = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                 if str(f["Properties"].get("Handler", "")).startswith("handlers.")]
    assert sorted(f["Handler"] for f in functions) == [
        "handlers.eventbridge.handler", "handlers.ingest.handler", "handlers.notifier.handler",
        "handlers.query.handler", "handlers.sqs_consumer.handler",
    ]
    for f in functions:
        assert f["Runtime"] == "python3.13" and f["Architectures"] == ["x86_64"]
        assert f["TracingConfig"] == {"Mode": "Active"} and len(f["Layers"]) == 1
    assert len({json.dumps(f["Role"]) for f in functions}) == len(functions)
    for group in resources(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] > 0


def test_canvas_queue_takes_messages_from_canvas_only(template):
    (queue_id,) = template.find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": "canvas-live-events-prod"}})
    queue = template.to_json()["Resources"][queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0].startswith("CanvasQueueDeadLetters")
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(template, "AWS::SQS::QueuePolicy").values()
                if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
    (statements_,) = policies
    (allow,) = [s for s in statements_ if s["Effect"] == "Allow"]
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Principal"] == {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::636161780776:root"]]}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements_)
    mapping = template.find_resources("AWS::Lambda::EventSourceMapping", {"Properties": {"BatchSize": 10}})
    assert [m["Properties"]["FunctionResponseTypes"] for m in mapping.values()] == [["ReportBatchItemFailures"]]


def test_event_bus_rule_archive_and_dead_letters(template, variant):
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {"detail-type": ["sis_batch_created", "sis_batch_updated"]}
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("EventsDeadLetters")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    (archive,) = resources(template, "AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == 30
    assert archive["Properties"]["EventPattern"] == rule["Properties"]["EventPattern"]
    invoke_config = only(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0].startswith("EventsDeadLetters")
    assert resources(template, "AWS::Events::EventBusPolicy") == {}
    (bus_policy,) = resources(variant, "AWS::Events::EventBusPolicy").values()
    assert "111122223333" in json.dumps(bus_policy)


def test_outputs_give_what_operators_paste_and_subscribe(template, variant):
    outputs = template.to_json()["Outputs"]
    assert {"WebhookUrl", "QueryUrl", "TopicArn", "TableName", "CanvasQueueUrl", "CanvasQueueArn",
            "CanvasQueueDlqArn", "EventBusName", "EventBusArn", "EventBridgeDlqArn"} <= set(outputs)
    assert json.dumps(outputs["WebhookUrl"]["Value"]).endswith('/events"]]}')
    variant_outputs = variant.to_json()["Outputs"]
    assert variant_outputs["WebhookUrl"]["Value"] == "https://sis-events.example.edu/events"
    assert "CanvasQueueUrl" not in variant_outputs and "TokenSecretArn" in variant_outputs


def test_token_mode_creates_the_secret_only_then_and_lets_ingest_read_it(template, variant):
    assert resources(template, "AWS::SecretsManager::Secret") == {}
    only(variant, "AWS::SecretsManager::Secret")
    ingest = [f for f in resources(variant, "AWS::Lambda::Function").values()
              if f["Properties"].get("Handler") == "handlers.ingest.handler"][0]["Properties"]
    assert ingest["Environment"]["Variables"]["SIS_AUTH"] == "token"
    assert "SIS_TOKEN_SECRET_ARN" in ingest["Environment"]["Variables"]
    assert len(resources(variant, "AWS::SNS::Subscription")) == 2
    assert len(resources(variant, "AWS::ApiGatewayV2::DomainName")) == 1


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path):
    """The plugin the stack passes is live: a queue without TLS enforcement or a DLQ fails synth."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    sqs.Queue(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="(?s)ValidationFailed.*AwsSolutions-SQS4"):
        app.synth()
