"""What matters in the synthesized template (not a snapshot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from sis_imports.core.table import (KEY_SCHEMA, LIST_INDEX, OPEN_INDEX, OPEN_INDEX_PROJECTION, OPEN_SINCE,
                               PARTITION_KEY, STREAM_VIEW_TYPE, TTL_ATTRIBUTE)

# AWS offers no resource-level permission for these; cdk-nag's IAM5 is acknowledged for them alone.
ALLOWED_ON_ANY_RESOURCE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams"}
HANDLERS = {
    "Ingest": "handlers.ingest.handler",
    "Query": "handlers.query.handler",
    "Notifier": "handlers.notifier.handler",
    "SqsConsumer": "handlers.sqs_consumer.handler",
    "EventBridgeConsumer": "handlers.eventbridge.handler",
}
RECONCILER = "handlers.reconciler.handler"  # only with canvas_instances (the variant)


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


def role_statements(template, name):
    """Every statement of the policies attached to Functions/<name>Role."""
    out = []
    for logical_id, policy in resources(template, "AWS::IAM::Policy").items():
        if logical_id.startswith(f"Functions{name}RoleDefaultPolicy"):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    assert out, f"no policy for {name}"
    return out


def function(template, handler):
    (found,) = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                if f["Properties"].get("Handler") == handler]
    return found


def ref_name(value):
    """The logical id behind a Ref or Fn::GetAtt."""
    return value.get("Ref") or value["Fn::GetAtt"][0]


def test_table_is_keyed_by_account_and_batch_with_stream_pitr_ttl_and_retained(template, variant):
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == KEY_SCHEMA
    assert props["StreamSpecification"] == {"StreamViewType": STREAM_VIEW_TYPE}
    assert STREAM_VIEW_TYPE == "NEW_AND_OLD_IMAGES"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert props["DeletionProtectionEnabled"] is True  # deletion_protection, on by default
    (variant_table,) = resources(variant, "AWS::DynamoDB::Table").values()
    assert variant_table["DeletionPolicy"] == "Delete"  # removal_policy=destroy
    assert variant_table["Properties"]["DeletionProtectionEnabled"] is False  # deletion_protection=false
    assert variant_table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_open_batches_index_is_sparse_on_open_since_with_or_without_the_reconciler(template, variant):
    """What the reconciler queries instead of scanning: made always (every write keeps open_since)."""
    for t in (template, variant):
        (table,) = resources(t, "AWS::DynamoDB::Table").values()
        props = table["Properties"]
        (index,) = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == OPEN_INDEX]
        assert OPEN_INDEX == "open-batches"
        assert index["KeySchema"] == [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                                      {"AttributeName": OPEN_SINCE, "KeyType": "RANGE"}]
        assert OPEN_SINCE == "open_since"
        # Keys only (issue 18): every event changes the state, times and version a projection would copy
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"} and OPEN_INDEX_PROJECTION == []
        assert {"AttributeName": OPEN_SINCE, "AttributeType": "S"} in props["AttributeDefinitions"]
        assert "ProvisionedThroughput" not in index and props["BillingMode"] == "PAY_PER_REQUEST"


def test_topic_accepts_tls_only_and_is_encrypted(template):
    (topic,) = [t for k, t in resources(template, "AWS::SNS::Topic").items() if k.startswith("AlertsTopic")]
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::Join": Match.any_value()} or "alias/aws/sns" in json.dumps(
        topic["Properties"]["KmsMasterKeyId"]
    )
    (policy,) = [p for p in resources(template, "AWS::SNS::TopicPolicy").values()
                 if ref_name(p["Properties"]["Topics"][0]).startswith("AlertsTopic")]
    statements_ = policy["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in statements_ if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Principal"] == "*"
               for s in denies)
    assert [s for s in statements_ if s["Effect"] == "Allow"] == []  # publishing goes through IAM alone
    assert resources(template, "AWS::SNS::Subscription") == {}  # none unless notify_emails is set


def test_notifier_stream_mapping_keeps_failures_and_skips_non_terminal_records(template):
    mappings = template.find_resources(
        "AWS::Lambda::EventSourceMapping",
        {"Properties": {"StartingPosition": "TRIM_HORIZON"}},
    )
    (mapping,) = mappings.values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == -1  # no count: the age is the limit (tests/infra/test_delivery_limits.py)
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 86400
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination["Fn::GetAtt"][0].startswith("AlertsNotifierFailures")
    # A record passes when any pattern matches: an end in the history (current or late), a stuck mark, or a
    # root account's rhythm (a missing import's gap found or ended).
    ended, stuck, rhythm = props["FilterCriteria"]["Filters"]
    assert json.loads(rhythm["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"kind": {"S": ["rhythm"]}}},
    }
    assert json.loads(ended["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"ended": {"BOOL": [True]}}},
    }
    assert json.loads(stuck["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"stuck_state": {"S": [{"exists": True}]}}},
    }
    assert ref_name(props["EventSourceArn"]).startswith("BatchesTable")
    assert ref_name(props["FunctionName"]).startswith("FunctionsNotifier")
    failures = template.to_json()["Resources"][destination["Fn::GetAtt"][0]]["Properties"]
    assert failures["SqsManagedSseEnabled"] is True
    assert failures["MessageRetentionPeriod"] == 14 * 86400  # the longest SQS keeps anything


def test_stage_is_throttled_and_access_logged_without_query_strings(template, variant):
    stage = only(template, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}
    log_format = stage["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format and "querystring" not in log_format.lower()
    assert "rawQueryString" not in log_format
    variant_stage = only(variant, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert variant_stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 40, "ThrottlingRateLimit": 20}


def nag_acknowledged(resource) -> set[str]:
    return {rule["id"] for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])}


def test_access_logs_only_with_api_access_logs_and_cdk_nag_told_why_when_off(template, variant):
    """The main stack asks for them (api_access_logs=true); the variant, as it comes, has none."""
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    destination = stage["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert template.to_json()["Resources"][destination]["Type"] == "AWS::Logs::LogGroup"
    assert "AwsSolutions-APIG1" not in nag_acknowledged(stage)
    (variant_stage,) = resources(variant, "AWS::ApiGatewayV2::Stage").values()
    assert "AccessLogSettings" not in variant_stage["Properties"]
    assert "AwsSolutions-APIG1" in nag_acknowledged(variant_stage)  # on the stage alone
    assert [r for r in variant.to_json()["Resources"].values() if "AwsSolutions-APIG1" in nag_acknowledged(r)] == \
        [variant_stage]
    # one log group per function, none for the API
    functions = resources(variant, "AWS::Lambda::Function")
    assert len(resources(variant, "AWS::Logs::LogGroup")) == len(functions)
    assert len(resources(template, "AWS::Logs::LogGroup")) == len(resources(template, "AWS::Lambda::Function")) + 1


def test_webhook_is_open_to_canvas_and_the_query_needs_iam(template):
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"POST /events", "GET /batches/{root_account_uuid}/{sis_batch_id}",
                           "GET /batches/{root_account_uuid}"}
    assert routes["POST /events"].get("AuthorizationType", "NONE") == "NONE"
    assert routes["GET /batches/{root_account_uuid}/{sis_batch_id}"]["AuthorizationType"] == "AWS_IAM"
    assert routes["GET /batches/{root_account_uuid}"]["AuthorizationType"] == "AWS_IAM"  # the list, as the batch
    integrations = template.to_json()["Resources"]
    for route_key, handler in (("POST /events", "handlers.ingest.handler"),
                               ("GET /batches/{root_account_uuid}/{sis_batch_id}", "handlers.query.handler"),
                               ("GET /batches/{root_account_uuid}", "handlers.query.handler")):
        integration_id = routes[route_key]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = integrations[integration_id]["Properties"]
        assert integration["PayloadFormatVersion"] == "2.0"
        target = ref_name(integration["IntegrationUri"])
        assert integrations[target]["Properties"]["Handler"] == handler


def test_custom_domain_maps_the_stage_and_closes_the_execute_api_endpoint(template, variant):
    assert resources(template, "AWS::ApiGatewayV2::DomainName") == {}
    assert only(template, "AWS::ApiGatewayV2::Api")["Properties"].get("DisableExecuteApiEndpoint") in (None, False)
    domain = only(variant, "AWS::ApiGatewayV2::DomainName")["Properties"]
    assert domain["DomainName"] == "sis-events.example.edu"
    assert domain["DomainNameConfigurations"][0]["CertificateArn"].startswith("arn:aws:acm:")
    only(variant, "AWS::ApiGatewayV2::ApiMapping")
    assert only(variant, "AWS::ApiGatewayV2::Api")["Properties"]["DisableExecuteApiEndpoint"] is True


def test_no_iam_action_wildcards_and_resource_wildcards_only_where_aws_offers_no_other(template, variant):
    for t in (template, variant):
        seen = 0
        for statement in statements(t):
            seen += 1
            actions = as_list(statement.get("Action", []))
            assert not any("*" in action for action in actions), statement
            if "*" in as_list(statement.get("Resource", [])):
                assert set(actions) <= ALLOWED_ON_ANY_RESOURCE, statement
            # Table.grant's `<table>/index/*`, which the table's index would bring: never (grants name the table).
            assert "/index/*" not in json.dumps(statement.get("Resource")), statement
        assert seen > 10


def test_writers_may_only_write_and_the_query_only_read(template):
    def table_actions(name):
        out = set()
        for s in role_statements(template, name):
            if "BatchesTable" in json.dumps(s["Resource"]) and "StreamArn" not in json.dumps(s["Resource"]):
                out |= set(as_list(s["Action"]))
        return out

    for writer in ("Ingest", "SqsConsumer", "EventBridgeConsumer"):
        assert table_actions(writer) == {"dynamodb:UpdateItem", "dynamodb:PutItem"}, writer
    assert table_actions("Query") == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
    # Query on the list index (the list route) and the open-batches index (outcome=stuck), each named:
    # never a scan, never the table's other indexes by wildcard.
    query_on = [r for s in role_statements(template, "Query") if "dynamodb:Query" in as_list(s["Action"])
                for r in as_list(s["Resource"])]
    assert sorted(r["Fn::Join"][1][1] for r in query_on) == sorted([f"/index/{LIST_INDEX}", f"/index/{OPEN_INDEX}"])
    assert table_actions("Notifier") == set()  # it reads the stream, never the table


def test_each_role_holds_only_what_its_function_does(template, variant):
    def by_resource(statements_):
        out = {}
        for s in statements_:
            for resource in as_list(s["Resource"]):
                if isinstance(resource, dict) and "Fn::Join" in resource:  # <table>/index/<name>
                    first, *rest = resource["Fn::Join"][1]
                    key = ref_name(first) + "".join(rest)
                else:
                    key = "*" if resource == "*" else ref_name(resource)
                out.setdefault(key, set()).update(as_list(s["Action"]))
        return out

    notifier = by_resource(role_statements(template, "Notifier"))
    expected = {
        "AlertsTopic": {"sns:Publish"},
        "BatchesTable": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},  # its stream
        "AlertsNotifierFailures": {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        "AlertsAlertRetries": {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        "FunctionsNotifierLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": {"dynamodb:ListStreams", "xray:PutTraceSegments", "xray:PutTelemetryRecords"},
    }
    assert {next(p for p in expected if k.startswith(p)): v for k, v in notifier.items()} == expected
    for name in HANDLERS:
        granted = by_resource(role_statements(template, name))
        logs = [k for k in granted if k.startswith(f"Functions{name}Logs")]
        assert logs and granted[logs[0]] == {"logs:CreateLogStream", "logs:PutLogEvents"}, name
        if name != "Notifier":
            assert not any(a.startswith(("sns:", "secretsmanager:")) for actions in granted.values() for a in actions)
    retry = by_resource(role_statements(template, "AlertRetry"))
    assert retry[next(k for k in retry if k.startswith("AlertsTopic"))] == {"sns:Publish"}
    # Token mode: the ingest function alone may read the webhook's secret, and only read it. (The notifier
    # reads the reconciler's Canvas API tokens, issue 10: other secrets.)
    readers = [name for name in ("Ingest", "Query", "Notifier", "EventBridgeConsumer")
               if any(a.startswith("secretsmanager:") and "CanvasToken" in json.dumps(s["Resource"])
                      for s in role_statements(variant, name) for a in as_list(s["Action"]))]
    assert readers == ["Ingest"]
    secret_actions = {a for s in role_statements(variant, "Ingest") for a in as_list(s["Action"])
                      if a.startswith("secretsmanager:")}
    assert secret_actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_functions_run_python_313_traced_with_the_shared_layer_and_their_own_roles(template, variant):
    functions = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                 if str(f["Properties"].get("Handler", "")).startswith("handlers.")]
    assert sorted(f["Handler"] for f in functions) == [
        "handlers.alert_retry.handler", "handlers.eventbridge.handler", "handlers.ingest.handler",
        "handlers.notifier.handler", "handlers.query.handler", "handlers.sqs_consumer.handler",
    ]
    for f in functions:
        assert f["Runtime"] == "python3.13" and f["Architectures"] == ["arm64"]  # Graviton, the default
        assert f["TracingConfig"] == {"Mode": "Active"} and len(f["Layers"]) == 1
        assert ref_name(f["LoggingConfig"]["LogGroup"]).startswith("Functions")
        assert f["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "CanvasSisImports"
        assert f["Timeout"] < 15 or f["Handler"] != "handlers.ingest.handler"  # Canvas gives up after 15 s
    assert len({json.dumps(f["Role"]) for f in functions}) == len(functions)
    (layer,) = resources(template, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for group in resources(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30
    for group in resources(variant, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 90  # log_retention_days


def test_each_function_gets_the_environment_its_handler_reads(template, variant):
    env = {name: function(template, handler)["Environment"]["Variables"] for name, handler in HANDLERS.items()}
    for writer in ("Ingest", "SqsConsumer", "EventBridgeConsumer"):
        assert set(env[writer]) >= {"TABLE_NAME", "RETENTION_DAYS"} and env[writer]["RETENTION_DAYS"] == "30"
    assert "TABLE_NAME" in env["Query"] and "TOPIC_ARN" in env["Notifier"]
    assert env["Ingest"]["SIS_AUTH"] == "jwt"
    assert env["Ingest"]["SIS_JWKS_URL"] == "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
    assert "SIS_TOKEN_SECRET_ARN" not in env["Ingest"]
    assert function(variant, "handlers.ingest.handler")["Environment"]["Variables"]["RETENTION_DAYS"] == "60"


def test_every_ingress_path_knows_which_canvas_is_ours(template, variant):
    """The allowlist reaches the three functions that take events, and only them."""
    env = {name: function(template, handler)["Environment"]["Variables"] for name, handler in HANDLERS.items()}
    for writer in ("Ingest", "SqsConsumer", "EventBridgeConsumer"):
        assert env[writer]["SIS_ROOT_ACCOUNTS"] == "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs", writer
        assert "SIS_HOSTNAMES" not in env[writer]  # set only when canvas_hostnames is
    for reader in ("Query", "Notifier"):
        assert not {"SIS_ROOT_ACCOUNTS", "SIS_HOSTNAMES"} & set(env[reader]), reader
    for writer in ("Ingest", "EventBridgeConsumer"):  # the variant has no SQS consumer
        variables = function(variant, HANDLERS[writer])["Environment"]["Variables"]
        assert variables["SIS_ROOT_ACCOUNTS"] == (
            "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs,SecondRootAccountUuid0000000000000000000")
        assert variables["SIS_HOSTNAMES"] == "oxana.instructure.com,oxana.beta.instructure.com"


def test_any_root_account_and_an_open_webhook_are_warned_at_every_synth(tmp_path):
    """What the stack adds to itself at every synth (a bare stack: no second full synth needed)."""
    from infra.config import load_config
    from infra.stack import warn_about_open_doors

    def warnings(**context):
        stack = cdk.Stack(cdk.App(outdir=str(tmp_path / str(len(context)))), "Warned")
        cdk.CfnWaitConditionHandle(stack, "Something")  # a template needs one resource
        warn_about_open_doors(stack, load_config(context.get))
        return [str(w.entry.data) for w in Annotations.from_stack(stack).find_warning("*", Match.any_value())]

    (anyone,) = warnings(root_account_uuids="*")
    assert "root_account_uuids=*" in anyone and "ANY Canvas customer" in anyone
    (open_,) = warnings(root_account_uuids="u1", auth_mode="none", allow_unauthenticated="true")
    assert "auth_mode=none" in open_
    assert warnings(root_account_uuids="u1,u2") == []


def test_each_function_has_its_reserved_concurrency_and_the_sqs_source_a_maximum(template, variant):
    reserved = {name: function(template, handler).get("ReservedConcurrentExecutions")
                for name, handler in HANDLERS.items()}
    assert reserved == {"Ingest": 10, "SqsConsumer": 5, "EventBridgeConsumer": 5, "Query": 2, "Notifier": 2}
    mapping = consumer_mapping(template)
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}  # = the consumer's reservation
    reserved = {name: function(variant, handler).get("ReservedConcurrentExecutions")
                for name, handler in HANDLERS.items() if name != "SqsConsumer"}
    # eventbridge_concurrency=0: no reservation at all (a reservation of 0 would stop the function)
    assert reserved == {"Ingest": 20, "EventBridgeConsumer": None, "Query": 1, "Notifier": 3}


def test_unchanged_inputs_give_unchanged_assets(template, variant, bare_synth):
    """Same requirements and code, same asset hashes, whatever the context: no redeploy churn. Another
    architecture (the variant's x86_64) has layers of its own, and the same code asset."""
    def assets(t):
        keys = {json.dumps(f["Properties"]["Code"]["S3Key"]) for f in resources(t, "AWS::Lambda::Function").values()}
        keys |= {json.dumps(layer["Properties"]["Content"]["S3Key"])
                 for layer in resources(t, "AWS::Lambda::LayerVersion").values()}
        return keys

    bare = bare_synth.template
    assert assets(template) < assets(bare)
    assert len(assets(template)) == 2  # one code asset for every function, one layer
    assert len(assets(bare) - assets(template)) == 1  # and, with canvas_instances, the reconciler's layer
    assert len(assets(template) & assets(variant)) == 1 and len(assets(variant) - assets(template)) == 2


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
    assert json.dumps(allow["Principal"]) in (
        json.dumps({"AWS": "arn:aws:iam::636161780776:root"}),
        json.dumps({"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::636161780776:root"]]}}),
    )
    assert ref_name(allow["Resource"]) == queue_id
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements_)
    dlq = template.to_json()["Resources"][queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True
    # Raw events (tokens in metadata.url, client_ip, user_login): 4 days in the queue and in its dead letters.
    assert queue["MessageRetentionPeriod"] == dlq["MessageRetentionPeriod"] == 4 * 86400 == 345600
    consumer = function(template, "handlers.sqs_consumer.handler")
    assert queue["VisibilityTimeout"] >= 6 * consumer["Timeout"]  # as Lambda advises for SQS sources
    mapping_props = consumer_mapping(template)["Properties"]
    assert mapping_props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ref_name(mapping_props["EventSourceArn"]) == queue_id


def consumer_mapping(template):
    """The Canvas queue's event source mapping (the alert retry queue has one too)."""
    (mapping,) = [m for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
                  if ref_name(m["Properties"]["FunctionName"]).startswith("FunctionsSqsConsumer")]
    return mapping


def test_alerts_sns_refuses_are_retried_for_a_day_then_kept(template):
    (mapping,) = [m for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
                  if ref_name(m["Properties"]["FunctionName"]).startswith("FunctionsAlertRetry")]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queues = template.to_json()["Resources"]
    retries = queues[ref_name(mapping["Properties"]["EventSourceArn"])]["Properties"]
    assert retries["VisibilityTimeout"] == 300  # a retry every 5 minutes
    assert retries["RedrivePolicy"]["maxReceiveCount"] == 288  # for 24 hours
    notifier = function(template, "handlers.notifier.handler")
    env = notifier["Environment"]["Variables"]
    assert ref_name(env["ALERT_RETRY_QUEUE_URL"]) == ref_name(mapping["Properties"]["EventSourceArn"])
    assert ref_name(env["NOTIFIER_FAILURE_QUEUE_URL"]).startswith("AlertsNotifierFailures")
    assert notifier["Timeout"] >= 20  # its worst record fits (tests/infra/test_delivery_limits.py)


def test_canvas_queue_can_be_turned_off(variant):
    assert not [q for q in resources(variant, "AWS::SQS::Queue").values()
                if str(q["Properties"].get("QueueName", "")).startswith("canvas-live-events")]
    handlers = {f["Properties"].get("Handler") for f in resources(variant, "AWS::Lambda::Function").values()}
    # 4 + alert_retry + the reconciler + the Slack subscriber
    assert "handlers.sqs_consumer.handler" not in handlers and len(handlers) == 7


def test_event_bus_rule_archive_and_dead_letters(template, variant):
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {"detail-type": ["sis_batch_created", "sis_batch_updated"]}
    assert ref_name(rule["Properties"]["EventBusName"]).startswith("EventsBus")
    (target,) = rule["Properties"]["Targets"]
    assert ref_name(target["Arn"]).startswith("FunctionsEventBridgeConsumer")
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("EventsDeadLetters")
    assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
    assert 0 < target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    dlq = template.to_json()["Resources"][dlq_id]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 345600  # raw events: 4 days
    assert resources(template, "AWS::Events::Archive") == {}  # opt-in: raw events are not kept by default
    assert "EventArchiveName" not in template.to_json()["Outputs"]
    invoke_config = only(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] == dlq_id
    assert 0 <= invoke_config["MaximumRetryAttempts"] <= 2
    assert resources(template, "AWS::Events::EventBusPolicy") == {}
    bus_policies = resources(variant, "AWS::Events::EventBusPolicy").values()
    granted = sorted(json.dumps(p["Properties"]) for p in bus_policies)
    assert len(granted) == 2 and "111122223333" in granted[0] + granted[1] and "444455556666" in granted[0] + granted[1]
    for policy in bus_policies:
        statement = policy["Properties"]["Statement"]
        assert statement["Action"] == "events:PutEvents" and statement["Effect"] == "Allow"
        # eventbridge_source_org_id: the account alone is not enough, the caller must be of the organization
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    (variant_archive,) = resources(variant, "AWS::Events::Archive").values()
    assert variant_archive["Properties"]["RetentionDays"] == 7  # <= retention_days (60)
    assert variant_archive["Properties"]["EventPattern"] == rule["Properties"]["EventPattern"]
    assert ref_name(variant_archive["Properties"]["SourceArn"]).startswith("EventsBus")
    assert ref_name(variant.to_json()["Outputs"]["EventArchiveName"]["Value"]).startswith("EventsBusArchive")
    events_dlq = [r["Properties"] for k, r in variant.to_json()["Resources"].items()
                  if k.startswith("EventsDeadLetters") and r["Type"] == "AWS::SQS::Queue"]
    assert [q["MessageRetentionPeriod"] for q in events_dlq] == [345600]


def test_an_organization_without_accounts_is_an_org_wide_bus_never_an_open_one(tmp_path):
    """Principal * only ever with the organization condition; cdk-nag (EVB1) agrees it is not open."""
    from aws_cdk import aws_events as events
    from aws_cdk import aws_lambda as lambda_

    from infra.event_bus import EventBus

    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "OrgBus")
    consumer = lambda_.Function(stack, "Consumer", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                                code=lambda_.Code.from_inline("def handler(event, context): pass"))
    bus = EventBus(stack, "Events", stage="t", consumer=consumer, archive_days=0, source_accounts=(),
                   source_org_id="o-a1b2c3d4e5")
    # The control: what EVB1 exists to catch, so that its silence about the bus above means something.
    events.CfnEventBusPolicy(stack, "OpenControl", statement_id="Open", event_bus_name=bus.bus.event_bus_name,
                             statement={"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                                        "Resource": bus.bus.event_bus_arn})
    with pytest.raises(Exception) as failed:
        app.synth()  # the bare test function has findings of its own too
    report = json.loads((tmp_path / "validation-report.json").read_text())
    open_ = [v for r in report["pluginReports"] for v in r["violations"] if v["ruleName"] == "AwsSolutions-EVB1"]
    assert [location["constructPath"] for v in open_ for location in v["violatingConstructs"]] == [
        "OrgBus/OpenControl"], failed.value
    synthesized = json.loads((tmp_path / "OrgBus.template.json").read_text())["Resources"].values()
    (policy,) = [r for r in synthesized if r["Type"] == "AWS::Events::EventBusPolicy"
                 and r["Properties"]["StatementId"] != "Open"]
    statement = policy["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": "*"} and statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert not [r for r in synthesized if r["Type"] == "AWS::Events::Archive"]  # archive_days=0


def test_outputs_give_what_operators_paste_and_subscribe(template, variant):
    outputs = template.to_json()["Outputs"]
    assert {"WebhookUrl", "QueryUrl", "TopicArn", "TableName", "CanvasQueueUrl", "CanvasQueueArn",
            "CanvasQueueDlqArn", "EventBusName", "EventBusArn", "EventBridgeDlqArn"} <= set(outputs)
    assert json.dumps(outputs["WebhookUrl"]["Value"]).endswith('/events"]]}')
    assert json.dumps(outputs["WebhookUrl"]["Value"]).startswith('{"Fn::Join": ["", [{"Fn::GetAtt": ["IngressApi')
    assert json.dumps(outputs["QueryUrl"]["Value"]).endswith('/batches/{root_account_uuid}/{sis_batch_id}"]]}')
    assert ref_name(outputs["TopicArn"]["Value"]).startswith("AlertsTopic")
    assert ref_name(outputs["TableName"]["Value"]).startswith("BatchesTable")
    assert ref_name(outputs["CanvasQueueUrl"]["Value"]).startswith("CanvasQueue")
    assert ref_name(outputs["EventBusName"]["Value"]).startswith("EventsBus")
    variant_outputs = variant.to_json()["Outputs"]
    assert variant_outputs["WebhookUrl"]["Value"] == "https://sis-events.example.edu/events"
    assert variant_outputs["QueryUrl"]["Value"] == (
        "https://sis-events.example.edu/batches/{root_account_uuid}/{sis_batch_id}")
    assert "CanvasQueueUrl" not in variant_outputs and "CanvasQueueArn" not in variant_outputs
    assert {"TokenSecretArn", "CustomDomainTarget"} <= set(variant_outputs)


def test_token_mode_creates_the_secret_only_then_and_lets_ingest_read_it(template, variant):
    assert resources(template, "AWS::SecretsManager::Secret") == {}
    (token,) = [k for k in resources(variant, "AWS::SecretsManager::Secret") if k.startswith("CanvasToken")]
    assert ref_name(variant.to_json()["Outputs"]["TokenSecretArn"]["Value"]) == token
    ingest = [f for f in resources(variant, "AWS::Lambda::Function").values()
              if f["Properties"].get("Handler") == "handlers.ingest.handler"][0]["Properties"]
    assert ingest["Environment"]["Variables"]["SIS_AUTH"] == "token"
    assert "SIS_TOKEN_SECRET_ARN" in ingest["Environment"]["Variables"]
    assert len([s for s in resources(variant, "AWS::SNS::Subscription").values()  # notify_emails
                if ref_name(s["Properties"]["TopicArn"]).startswith("AlertsTopic") and s["Properties"]["Protocol"] == "email"]) == 2
    assert len(resources(variant, "AWS::ApiGatewayV2::DomainName")) == 1


def test_cdk_nag_and_annotations_are_clean(synthesized, variant_synth):
    """Synth already failed on any unacknowledged finding; the report and annotations agree."""
    for synth in (synthesized, variant_synth):
        report = synth.assembly / "validation-report.json"
        if report.exists():
            plugin_reports = json.loads(report.read_text()).get("pluginReports", [])
            assert not [v for r in plugin_reports for v in r.get("violations", [])]
        annotations = Annotations.from_stack(synth.stack)
        assert annotations.find_error("*", Match.any_value()) == []
        assert annotations.find_warning("*", Match.any_value()) == []


def test_every_acknowledged_finding_is_a_known_one_with_a_reason(template, variant):
    """A new acknowledgement must be reviewed here: the template records each (cdk_nag Metadata)."""
    known = {"AwsSolutions-IAM5[Resource::*]", "AwsSolutions-L1", "AwsSolutions-APIG4", "AwsSolutions-SQS3",
             "AwsSolutions-SMG4", "AwsSolutions-SNS2",  # SNS2: the ops topic without ops_topic_key (the variant)
             "AwsSolutions-APIG1"}  # APIG1: the stage without api_access_logs (the variant)
    seen = set()
    for t in (template, variant):
        for resource in t.to_json()["Resources"].values():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                assert len(rule["reason"]) >= 50, rule
                seen.add(rule["id"])
    assert seen == known
    iam5 = [r for r in template.to_json()["Resources"].values()
            if any(x["id"].startswith("AwsSolutions-IAM5") for x in r.get("Metadata", {}).get("cdk_nag", {})
                   .get("rules_to_suppress", []))]
    assert {r["Type"] for r in iam5} == {"AWS::IAM::Role", "AWS::IAM::Policy"}  # never a blanket one


def test_cfn_lint_is_clean(synthesized, variant_synth):
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # the pinned one from requirements/dev.txt
    result = subprocess.run(
        [str(cfn_lint), str(synthesized.template_file), str(variant_synth.template_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path):
    """The plugin the stack passes is live: a queue without TLS enforcement or a DLQ fails synth."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    sqs.Queue(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="(?s)ValidationFailed.*AwsSolutions-SQS4"):
        app.synth()


def test_same_sources_give_the_same_assets_and_no_rebuild(template, variant, bare_synth):
    """Two syntheses with different context share byte-identical layer and code assets; the code asset
    is the same for either architecture, the layers are not (the variant chose x86_64)."""
    from infra.bundling import RECONCILER_REQUIREMENTS, build_code, build_layer

    def keys(t):
        res = t.to_json()["Resources"].values()
        layer = {r["Properties"]["Content"]["S3Key"] for r in res if r["Type"] == "AWS::Lambda::LayerVersion"}
        code = {r["Properties"]["Code"]["S3Key"] for r in res if r["Type"] == "AWS::Lambda::Function"
                and str(r["Properties"].get("Handler", "")).startswith("handlers.")}
        return layer, code

    bare = bare_synth.template
    assert keys(template)[0] < keys(bare)[0] and len(keys(bare)[0]) == 2  # + the reconciler's layer
    assert keys(template)[1] == keys(bare)[1] == keys(variant)[1]
    assert len(keys(variant)[0]) == 2 and keys(variant)[0].isdisjoint(keys(bare)[0])
    assert len(keys(template)[1]) == 1  # one code asset, uploaded once for all functions
    layer = build_layer()
    stamp = (layer / ".complete").stat().st_mtime_ns
    assert build_layer() == layer and (layer / ".complete").stat().st_mtime_ns == stamp  # not rebuilt
    # The reconciler's layer has a name of its own: building either never prunes the other.
    own = build_layer(requirements=RECONCILER_REQUIREMENTS, name="reconciler-layer")
    assert own.name.startswith("reconciler-layer-arm64-") and layer.name.startswith("layer-arm64-")
    assert build_layer() == layer and (layer / ".complete").exists() and (own / ".complete").exists()
    assert build_code() == build_code()


def architectures(t):
    """The architectures of the handler functions, and those of the layers."""
    res = t.to_json()["Resources"].values()
    functions = {tuple(r["Properties"].get("Architectures", ["x86_64"])) for r in res
                 if r["Type"] == "AWS::Lambda::Function" and str(r["Properties"].get("Handler", "")).startswith("handlers.")}
    layers = {tuple(r["Properties"]["CompatibleArchitectures"]) for r in res if r["Type"] == "AWS::Lambda::LayerVersion"}
    return functions, layers


def native_code(assembly: Path) -> set[int]:
    """The ELF machine of every shared object in the functions' layers (62: x86-64, 183: AArch64)."""
    from scripts.bundle import bundles

    machines = set()
    for layer in {layer for bundle in bundles(assembly) for layer in bundle.layers}:
        for so in layer.rglob("*.so"):
            machines.add(int.from_bytes(so.read_bytes()[18:20], "little"))
    return machines


def test_arm64_unless_x86_64_is_chosen_functions_and_every_layer_alike(synthesized, variant_synth, bare_synth):
    """The default (and `make cost`'s stack, with the reconciler's own layer) is arm64 throughout, its layers
    built from aarch64 wheels; `-c architecture=x86_64` (the variant) gives x86_64 functions and layers."""
    for synth in (synthesized, bare_synth):
        assert architectures(synth.template) == ({("arm64",)}, {("arm64",)}), synth.assembly
        assert native_code(synth.assembly) == {183}
    assert len(resources(bare_synth.template, "AWS::Lambda::LayerVersion")) == 2
    assert len(resources(variant_synth.template, "AWS::Lambda::LayerVersion")) == 2
    assert architectures(variant_synth.template) == ({("x86_64",)}, {("x86_64",)})
    assert native_code(variant_synth.assembly) == {62}


# The reconciler (issue 9): only with canvas_instances, which the variant sets and the default does not.

def reconciler_id(t):
    (found,) = [k for k, f in resources(t, "AWS::Lambda::Function").items() if f["Properties"].get("Handler") == RECONCILER]
    return found


def token_secrets(t):
    return {k: r for k, r in resources(t, "AWS::SecretsManager::Secret").items() if k.startswith("ReconcilerToken")}


def joined(value):
    """A Fn::Join as text, each Ref written <LogicalId>."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else f"<{ref_name(part)}>" for part in parts)


def test_without_canvas_instances_there_is_no_reconciler_schedule_secret_or_second_layer(template):
    handlers = {f["Properties"].get("Handler") for f in resources(template, "AWS::Lambda::Function").values()}
    assert RECONCILER not in handlers
    assert resources(template, "AWS::SecretsManager::Secret") == {}
    assert len(resources(template, "AWS::Lambda::LayerVersion")) == 1
    assert not [r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert resources(template, "AWS::Scheduler::Schedule") == {}
    assert not [k for k in template.to_json()["Outputs"] if k.startswith("CanvasTokenSecretArn")]
    actions = {a for s in statements(template) for a in as_list(s["Action"])}
    # The open-batches index is there; only the query function reads it (which listed batches are stuck).
    assert [name for name in ("Ingest", "Notifier", "EventBridgeConsumer", "SqsConsumer", "AlertRetry", "Query")
            if "/index/open-batches" in json.dumps(role_statements(template, name))] == ["Query"]
    assert not [a for a in actions if a.startswith("secretsmanager:")]


def test_the_reconciler_runs_every_reconcile_minutes_one_invocation_per_instance(variant):
    reconciler = reconciler_id(variant)
    props = function(variant, RECONCILER)
    assert props["Timeout"] == 120 and props["MemorySize"] == 512
    assert props["Runtime"] == "python3.13" and "TracingConfig" not in props  # tracing is opt-in
    assert props["ReservedConcurrentExecutions"] == 2  # one slot per instance: an instance's passes never overlap
    (rule,) = [r["Properties"] for r in resources(variant, "AWS::Events::Rule").values()
               if "ScheduleExpression" in r["Properties"]]
    assert rule["ScheduleExpression"] == "rate(10 minutes)"  # reconcile_minutes
    assert rule["State"] == "ENABLED" and "EventBusName" not in rule  # the default bus: AWS's schedule
    # Fan-out: each instance its own invocation, named in the event the handler reads.
    assert [json.loads(t["Input"]) for t in rule["Targets"]] == [
        {"instance": "https://oxana.instructure.com"}, {"instance": "https://oxana.beta.instructure.com:8443"}]
    for target in rule["Targets"]:
        assert ref_name(target["Arn"]) == reconciler
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0  # a failed pass: the next one tries again
    (invoke,) = [c["Properties"] for c in resources(variant, "AWS::Lambda::EventInvokeConfig").values()
                 if ref_name(c["Properties"]["FunctionName"]) == reconciler]
    # A pass waiting behind a running one is dropped after one interval: passes never pile up.
    assert invoke["MaximumRetryAttempts"] == 0 and invoke["MaximumEventAgeInSeconds"] == 600
    (permission,) = [p["Properties"] for p in resources(variant, "AWS::Lambda::Permission").values()
                     if ref_name(p["Properties"]["FunctionName"]) == reconciler]
    assert permission["Principal"] == "events.amazonaws.com" and permission["Action"] == "lambda:InvokeFunction"
    assert ref_name(permission["SourceArn"]).startswith("ReconcilerSchedule")


def test_the_reconciler_alone_has_the_second_layer(variant):
    layers = resources(variant, "AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    (shared,) = [k for k in layers if k.startswith("FunctionsDependencies")]
    (own,) = [k for k in layers if k.startswith("FunctionsReconcilerDependencies")]
    assert layers[own]["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layers[own]["Properties"]["CompatibleArchitectures"] == ["x86_64"]  # the variant's architecture
    for logical_id, f in resources(variant, "AWS::Lambda::Function").items():
        if not str(f["Properties"].get("Handler", "")).startswith("handlers."):
            continue
        # The notifier too: it reads an end's details with the reconciler's client (imported on first use).
        expected = [shared, own] if logical_id == reconciler_id(variant) or logical_id.startswith(
            "FunctionsNotifier") else [shared]
        assert [ref_name(layer) for layer in f["Properties"]["Layers"]] == expected, logical_id


def test_the_reconciler_gets_the_store_environment_its_instances_and_thresholds(variant):
    env = function(variant, RECONCILER)["Environment"]["Variables"]
    ingest = function(variant, HANDLERS["Ingest"])["Environment"]["Variables"]
    # The same core as the functions that take events: the same table, retention and allowlist.
    for key in ("TABLE_NAME", "RETENTION_DAYS", "SIS_ROOT_ACCOUNTS", "SIS_HOSTNAMES"):
        assert env[key] == ingest[key], key
    assert ref_name(env["TABLE_NAME"]).startswith("BatchesTable") and env["RETENTION_DAYS"] == "60"
    assert env["RECONCILE_LOOKBACK_HOURS"] == "72"
    assert env["STUCK_MINUTES"] == "initializing=45,created=60,importing=240,cleanup_batch=30,restoring=90"
    secrets = token_secrets(variant)
    instances = json.loads(joined(env["CANVAS_INSTANCES"]))
    assert [i["url"] for i in instances] == ["https://oxana.instructure.com", "https://oxana.beta.instructure.com:8443"]
    assert sorted(i["token_secret"] for i in instances) == sorted(f"<{k}>" for k in secrets)  # each its own secret
    assert not {"TOPIC_ARN", "SIS_AUTH", "SIS_TOKEN_SECRET_ARN"} & set(env)  # no token of the webhook's


def test_each_instance_has_a_token_secret_the_operator_sets_and_an_output_saying_how(variant):
    secrets = token_secrets(variant)
    assert len(secrets) == 2
    for secret in secrets.values():
        # A generated placeholder: no token in the template, the context or the repository.
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
        assert "SecretString" not in secret["Properties"]
        (rule,) = secret["Metadata"]["cdk_nag"]["rules_to_suppress"]
        assert rule["id"] == "AwsSolutions-SMG4" and "admin in Canvas" in rule["reason"]
    outputs = variant.to_json()["Outputs"]
    env = json.loads(joined(function(variant, RECONCILER)["Environment"]["Variables"]["CANVAS_INSTANCES"]))
    for number, instance in enumerate(env, start=1):
        output = outputs[f"CanvasTokenSecretArn{number}"]
        assert f"<{ref_name(output['Value'])}>" == instance["token_secret"]
        assert instance["url"] in output["Description"] and "aws secretsmanager put-secret-value" in output["Description"]
        assert instance["url"] in secrets[ref_name(output["Value"])]["Properties"]["Description"]
    assert "CanvasTokenSecretArn3" not in outputs


def test_the_reconciler_reads_and_writes_batch_items_queries_the_index_and_reads_its_secrets_only(variant):
    granted = {}
    for s in role_statements(variant, "Reconciler"):
        for resource in as_list(s["Resource"]):
            key = "*" if resource == "*" else joined(resource) if "Fn::Join" in resource else f"<{ref_name(resource)}>"
            granted.setdefault(key, set()).update(as_list(s["Action"]))
    (table,) = resources(variant, "AWS::DynamoDB::Table")
    secrets = token_secrets(variant)
    (logs,) = [k for k in granted if k.startswith("<FunctionsReconcilerLogs")]
    assert granted == {
        f"<{table}>": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        f"<{table}>/index/open-batches": {"dynamodb:Query"},
        **{f"<{k}>": {"secretsmanager:GetSecretValue"} for k in secrets},
        logs: {"logs:CreateLogStream", "logs:PutLogEvents"},  # no X-Ray: tracing is opt-in
    }
    # Nobody else but the query function (which listed batches are stuck) queries the open-batches index;
    # the notifier alone also reads the tokens (issue 10: an end's details).
    for name in ("Ingest", "Query", "Notifier", "EventBridgeConsumer"):
        text = json.dumps(role_statements(variant, name))
        assert ("/index/open-batches" in text) == (name == "Query"), name
        assert name == "Notifier" or not [k for k in secrets if k in text], name


def test_every_function_has_a_reserved_concurrency_the_alert_retry_source_within_it(template, variant, tmp_path):
    """The README promises a reservation on every function: none may run unbounded on the account's quota."""
    for synth in (template, variant):
        unreserved = [f["Properties"]["Handler"] for f in resources(synth, "AWS::Lambda::Function").values()
                      if "ReservedConcurrentExecutions" not in f["Properties"]
                      and f["Properties"].get("Handler", "").startswith("handlers.")]
        # The variant's eventbridge_concurrency=0 is the one reservation asked away, by configuration.
        assert unreserved == ([] if synth is template else ["handlers.eventbridge.handler"]), unreserved
    assert function(template, "handlers.alert_retry.handler")["ReservedConcurrentExecutions"] == 2
    assert function(variant, "handlers.chat_webhook.handler")["ReservedConcurrentExecutions"] == 2
    (retry,) = [m for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
                if ref_name(m["Properties"]["FunctionName"]).startswith("FunctionsAlertRetry")]
    assert retry["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}  # never more than reserved
    # notifier_concurrency=0 (an account whose quota is still 10 reserves nothing) lifts theirs too.
    from tests.infra.conftest import DEFAULT, synthesize

    unreserved = synthesize({**DEFAULT, "notifier_concurrency": "0", "chat": "chatbot",
                             "slack_webhook_secret": "canvas-sis-slack-webhook"}, tmp_path).template
    for handler in ("handlers.notifier.handler", "handlers.alert_retry.handler", "handlers.chat_webhook.handler"):
        assert "ReservedConcurrentExecutions" not in function(unreserved, handler), handler


def test_the_schools_history_is_read_where_it_is_checked_and_kept_where_it_is_learnt(template, variant):
    """Issue 17: with a reconciler, the notifier reads a shape's baseline (GetItem) and marks an unusual end
    (UpdateItem), and nothing more of the table's items; the reconciler gets the missing-import settings."""
    notifier = function(variant, "handlers.notifier.handler")["Environment"]["Variables"]
    assert notifier["ANOMALY_SENSITIVITY"] == "5" and notifier["ANOMALY_MIN_HISTORY"] == "10"
    assert "TABLE_NAME" in notifier
    def on_table(statement):  # the table itself (Fn::GetAtt Arn), not its stream nor an index
        return any(isinstance(r, dict) and r.get("Fn::GetAtt", ["", ""])[1] == "Arn"
                   and r["Fn::GetAtt"][0].startswith("BatchesTable") for r in as_list(statement["Resource"]))

    items = {a for s in role_statements(variant, "Notifier") if on_table(s) for a in as_list(s["Action"])}
    assert items >= {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert not items & {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"}
    reconciler = function(variant, "handlers.reconciler.handler")["Environment"]["Variables"]
    assert reconciler["MISSING_IMPORTS"] == "true" and reconciler["EXPECTED_IMPORT_EVERY"] == ""
    # Without a reconciler there are no details to compare: the notifier does not touch the table's items.
    assert "TABLE_NAME" not in function(template, "handlers.notifier.handler")["Environment"]["Variables"]


def test_a_consortium_gets_a_rule_per_five_instances_and_at_most_twenty_parallel_passes(tmp_path):
    from infra.reconciler import MAX_PARALLEL, TARGETS_PER_RULE
    from tests.infra.conftest import DEFAULT, synthesize

    urls = [f"https://school{n}.instructure.com" for n in range(12)]
    synth = synthesize({**DEFAULT, "canvas_instances": ",".join(urls)}, tmp_path)
    rules = [r["Properties"] for r in resources(synth.template, "AWS::Events::Rule").values()
             if "ScheduleExpression" in r["Properties"]]
    assert sorted(len(r["Targets"]) for r in rules) == [2, 5, 5] and TARGETS_PER_RULE == 5
    named = sorted(json.loads(t["Input"])["instance"] for r in rules for t in r["Targets"])
    assert named == sorted(urls)  # each instance exactly once
    assert function(synth.template, RECONCILER)["ReservedConcurrentExecutions"] == min(12, MAX_PARALLEL)

