"""Chat (issue 10) in the template: the Chatbot topic the notifier feeds, the Slack webhook subscriber
(the session's variant synth sets chat=chatbot and slack_webhook_secret), nothing of it by default;
and the context keys (no synth needed)."""

from __future__ import annotations

import json

import pytest

from infra.config import DEFAULTS, ConfigError, load_config

UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
CHAT = "handlers.chat_webhook.handler"
DEFAULT_OUTCOMES = ["failure", "warning", "stuck", "missing", "unusual"]


def config(**context):
    context.setdefault("root_account_uuids", UUID)
    return load_config(context.get)


def resources(template, kind):
    return template.find_resources(kind)


def ref_name(value):
    return value.get("Ref") or value["Fn::GetAtt"][0]


def as_list(value):
    return value if isinstance(value, list) else [value]


def function_id(template, handler):
    (found,) = [k for k, f in resources(template, "AWS::Lambda::Function").items()
                if f["Properties"].get("Handler") == handler]
    return found


def function(template, handler):
    return resources(template, "AWS::Lambda::Function")[function_id(template, handler)]["Properties"]


def granted(template, role_prefix):
    """{resource (as text): actions} over the policies of Functions/<name>Role."""
    out: dict[str, set[str]] = {}
    for logical_id, policy in resources(template, "AWS::IAM::Policy").items():
        if logical_id.startswith(f"Functions{role_prefix}RoleDefaultPolicy"):
            for s in policy["Properties"]["PolicyDocument"]["Statement"]:
                for resource in as_list(s["Resource"]):
                    key = resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)
                    out.setdefault(key, set()).update(as_list(s["Action"]))
    assert out, role_prefix
    return out


def chat_topic_id(template):
    (topic,) = [k for k in resources(template, "AWS::SNS::Topic") if k.startswith("ChatTopic")]
    return topic


# --- context ---------------------------------------------------------------------------------------


def test_chat_is_off_unless_asked_for():
    c = config()
    assert (c.chat, c.slack_webhook_secret, c.teams_webhook_secret) == ("none", None, None)
    assert c.chat_outcomes == ("failure", "warning", "stuck", "missing", "unusual")
    assert {"chat", "slack_webhook_secret", "teams_webhook_secret", "chat_outcomes"} <= set(DEFAULTS)


def test_chat_settings_are_read_and_outcomes_kept_in_one_order():
    c = config(chat="Chatbot", slack_webhook_secret=" canvas-sis-slack-webhook ",
               teams_webhook_secret="ops/canvas/teams_webhook", chat_outcomes="stuck, FAILURE,failure")
    assert (c.chat, c.slack_webhook_secret, c.teams_webhook_secret) == (
        "chatbot", "canvas-sis-slack-webhook", "ops/canvas/teams_webhook")
    assert c.chat_outcomes == ("failure", "stuck")
    assert config(chat_outcomes="success,warning,failure,stuck").chat_outcomes == (
        "failure", "warning", "stuck", "success")
    assert config(chat_outcomes="resumed,unusual,missing").chat_outcomes == ("missing", "unusual", "resumed")


@pytest.mark.parametrize(("context", "named"), [
    ({"chat": "slack"}, "chat must be one of none, chatbot"),
    ({"chat_outcomes": "failure,aborted"}, "chat_outcomes"),
    ({"chat_outcomes": " , "}, "chat_outcomes"),
    ({"slack_webhook_secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}, "not its ARN"),
    ({"teams_webhook_secret": "name with spaces"}, "teams_webhook_secret: not a Secrets Manager secret name"),
    ({"slack_webhook_secret": "canvas-alerts"}, "ends in a hyphen and six characters"),
])
def test_bad_chat_settings_are_refused_naming_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        config(**context)


@pytest.mark.parametrize("key", ["slack_webhook_secret", "teams_webhook_secret"])
def test_a_webhook_url_given_instead_of_a_secret_name_is_refused_without_repeating_it(key):
    url = "https://hooks.slack.com/services/T0001/B0001/XxSecretPart9q"
    for given in (url, "hooks.slack.com/services/T0001/B0001/XxSecretPart9q",
                  "https://prod-01.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=XxSecretPart9q"):
        with pytest.raises(ConfigError, match="NAME of a Secrets Manager secret") as raised:
            config(**{key: given})
        assert "XxSecretPart9q" not in str(raised.value) and "create-secret" in str(raised.value)


def test_misspelt_chat_keys_are_caught():
    with pytest.raises(ConfigError, match="did you mean slack_webhook_secret"):
        load_config({"root_account_uuids": UUID, "slack_webhook_secrets": "x"}.get, ["slack_webhook_secrets"])
    with pytest.raises(ConfigError, match="did you mean chat_outcomes"):
        load_config({"root_account_uuids": UUID}.get, ["chat_outcome"])


# --- the template: by default none of it ---------------------------------------------------------------


def test_by_default_there_is_no_chat_topic_function_queue_or_output(template):
    assert not [k for k in resources(template, "AWS::SNS::Topic") if k.startswith("Chat")]
    handlers = {f["Properties"].get("Handler") for f in resources(template, "AWS::Lambda::Function").values()}
    assert CHAT not in handlers
    assert not [k for k in resources(template, "AWS::SQS::Queue") if k.startswith("Chat")]
    assert not [k for k in template.to_json()["Outputs"] if k.startswith("Chat")]
    env = function(template, "handlers.notifier.handler")["Environment"]["Variables"]
    assert "CHAT_TOPIC_ARN" not in env and "CHAT_OUTCOMES" not in env


# --- chat=chatbot ----------------------------------------------------------------------------------------


def test_the_chatbot_topic_is_encrypted_tls_only_and_output_with_how_to_connect_it(variant):
    topic_id = chat_topic_id(variant)
    props = resources(variant, "AWS::SNS::Topic")[topic_id]["Properties"]
    assert "alias/aws/sns" in json.dumps(props["KmsMasterKeyId"])  # the AWS managed key, as the alert topic
    (policy,) = [p["Properties"] for p in resources(variant, "AWS::SNS::TopicPolicy").values()
                 if [ref_name(t) for t in p["Properties"]["Topics"]] == [topic_id]]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    output = variant.to_json()["Outputs"]["ChatTopicArn"]
    assert ref_name(output["Value"]) == topic_id
    assert "AWS Chatbot" in output["Description"] and "Amazon Q Developer in chat applications" in output["Description"]
    # Chatbot subscribes to it (outside the stack): nothing here does.
    assert not [s for s in resources(variant, "AWS::SNS::Subscription").values()
                if ref_name(s["Properties"]["TopicArn"]) == topic_id]


def test_the_notifier_and_the_alert_retry_alone_publish_to_the_chatbot_topic(variant):
    topic_id = chat_topic_id(variant)
    env = function(variant, "handlers.notifier.handler")["Environment"]["Variables"]
    assert ref_name(env["CHAT_TOPIC_ARN"]) == topic_id
    assert env["CHAT_OUTCOMES"] == "failure,warning,stuck,missing,unusual"
    assert {"sns:Publish"} == granted(variant, "Notifier")[json.dumps({"Ref": topic_id})]
    publishers = [k for k, p in resources(variant, "AWS::IAM::Policy").items()
                  if topic_id in json.dumps(p["Properties"]["PolicyDocument"])]
    # The notifier, and the alert retry function for a chat copy SNS refused the first time.
    assert sorted(p.split("RoleDefaultPolicy")[0] for p in publishers) == ["FunctionsAlertRetry", "FunctionsNotifier"]


# --- slack_webhook_secret ------------------------------------------------------------------------------------


def test_the_slack_function_reads_its_secret_by_name_and_nothing_else(variant):
    props = function(variant, CHAT)
    env = props["Environment"]["Variables"]
    assert env["CHAT_KIND"] == "slack"
    arn = json.dumps(env["CHAT_WEBHOOK_SECRET_ARN"])
    assert arn.endswith(':secret:canvas-sis-slack-webhook"]]}') and "secretsmanager" in arn
    assert props["Timeout"] == 30 and props["MemorySize"] == 256
    assert props["Runtime"] == "python3.13" and "TracingConfig" not in props  # tracing is opt-in
    assert "TOPIC_ARN" not in env and "TABLE_NAME" not in env

    grants = granted(variant, "ChatSlack")
    (secret,) = [k for k in grants if "secretsmanager" in k]
    assert secret.endswith(':secret:canvas-sis-slack-webhook-??????"]]}')  # the name's random suffix, no more
    assert grants[secret] == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    (queue,) = [k for k in resources(variant, "AWS::SQS::Queue") if k.startswith("ChatFailures")]
    (to_queue,) = [k for k in grants if queue in k]
    assert "sqs:SendMessage" in grants[to_queue]
    (logs,) = [k for k in grants if "FunctionsChatSlackLogs" in k]
    rest = {k: v for k, v in grants.items() if k not in (secret, to_queue, logs)}
    assert rest == {}  # nothing else (no X-Ray: tracing is opt-in)
    # Nobody else reads a webhook secret.
    for logical_id, policy in resources(variant, "AWS::IAM::Policy").items():
        if "canvas-sis-slack-webhook" in json.dumps(policy):
            assert logical_id.startswith("FunctionsChatSlackRoleDefaultPolicy")


def test_the_slack_function_is_subscribed_to_the_alert_topic_with_the_outcome_filter(variant):
    chat = function_id(variant, CHAT)
    (sub,) = [s["Properties"] for s in resources(variant, "AWS::SNS::Subscription").values()
              if s["Properties"]["Protocol"] == "lambda"]
    assert ref_name(sub["Endpoint"]) == chat
    assert ref_name(sub["TopicArn"]).startswith("AlertsTopic")
    assert sub["FilterPolicy"] == {"$or": [{"outcome": ["failure", "warning", "stuck", "missing"]},
                                           {"unusual": ["true"]}]}
    assert sub.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
    (queue,) = [k for k in resources(variant, "AWS::SQS::Queue") if k.startswith("ChatFailures")]
    assert ref_name(sub["RedrivePolicy"]["deadLetterTargetArn"]) == queue
    (permission,) = [p["Properties"] for p in resources(variant, "AWS::Lambda::Permission").values()
                     if ref_name(p["Properties"]["FunctionName"]) == chat]
    assert permission["Principal"] == "sns.amazonaws.com"
    assert ref_name(permission["SourceArn"]).startswith("AlertsTopic")


def test_a_failed_post_is_retried_then_kept_in_the_chat_failure_queue(variant):
    chat = function_id(variant, CHAT)
    (invoke,) = [c["Properties"] for c in resources(variant, "AWS::Lambda::EventInvokeConfig").values()
                 if ref_name(c["Properties"]["FunctionName"]) == chat]
    assert invoke["MaximumRetryAttempts"] == 2 and invoke["MaximumEventAgeInSeconds"] == 3600
    (queue,) = [k for k in resources(variant, "AWS::SQS::Queue") if k.startswith("ChatFailures")]
    assert ref_name(invoke["DestinationConfig"]["OnFailure"]["Destination"]) == queue
    props = resources(variant, "AWS::SQS::Queue")[queue]["Properties"]
    assert props["SqsManagedSseEnabled"] is True and props["MessageRetentionPeriod"] == 14 * 24 * 3600
    # SNS may put the alerts it cannot hand over there; nobody else may send.
    (policy,) = [p["Properties"]["PolicyDocument"]["Statement"]
                 for p in resources(variant, "AWS::SQS::QueuePolicy").values()
                 if [ref_name(q) for q in p["Properties"]["Queues"]] == [queue]]
    allow = [s for s in policy if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allow] == [{"Service": "sns.amazonaws.com"}]
    assert ref_name(allow[0]["Condition"]["ArnEquals"]["aws:SourceArn"]).startswith("AlertsTopic")
    outputs = variant.to_json()["Outputs"]
    assert ref_name(outputs["ChatFailureQueueArn"]["Value"]) == queue


def test_no_teams_function_without_its_secret(variant):
    kinds = [f["Properties"]["Environment"]["Variables"]["CHAT_KIND"]
             for f in resources(variant, "AWS::Lambda::Function").values() if f["Properties"].get("Handler") == CHAT]
    assert kinds == ["slack"]


def test_the_chat_function_imports_from_its_bundle_with_the_shared_layer_alone(variant_assembly, monkeypatch):
    """What ships is what was tested: its code folder and the shared layer, boto3 beside them, python3.13 -I."""
    from infra.bundling import find_python313
    from scripts.bundle import LAMBDA_ENV, bundles, run_isolated, runtime_dir

    python = find_python313()
    if python is None:
        pytest.skip("python3.13 (the Lambda runtime's version) is not installed")
    (bundle,) = [b.importable() for b in bundles(variant_assembly) if b.handler == CHAT]
    assert len(bundle.layers) == 1 and not [layer for layer in bundle.paths if (layer / "canvasapi").exists()]
    (template,) = variant_assembly.glob("*.template.json")
    variables = json.loads(template.read_text())["Resources"][bundle.name]["Properties"]["Environment"]["Variables"]
    with monkeypatch.context() as patch:
        for key, value in variables.items():
            if isinstance(value, str):
                patch.setitem(LAMBDA_ENV, key, value)
        result = run_isolated(python, [*bundle.paths, runtime_dir()],
                              "import handlers.chat_webhook as m; print(callable(m.handler))")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == "True"


# --- the filter policy, as SNS applies it ------------------------------------------------------------------


ALERTS = {  # name -> the message attributes the notifier publishes (outcome; unusual only when unusual)
    "failure": {"outcome": "failure"},
    "unusual failure": {"outcome": "failure", "unusual": "true"},
    "success": {"outcome": "success"},
    "unusual success": {"outcome": "success", "unusual": "true"},
    "stuck": {"outcome": "stuck"},
    "missing": {"outcome": "missing"},
    "resumed": {"outcome": "resumed"},
}


@pytest.mark.parametrize(("chat_outcomes", "delivered"), [
    ("failure,warning,stuck,missing,unusual", {"failure", "unusual failure", "unusual success", "stuck", "missing"}),
    ("failure", {"failure", "unusual failure"}),
    ("unusual", {"unusual failure", "unusual success"}),
    ("success,resumed", {"success", "unusual success", "resumed"}),
])
def test_the_filter_policy_lets_through_the_outcomes_named_and_any_unusual_end_when_named(chat_outcomes, delivered):
    """SNS (moto) applies the policy the stack declares: the rule is `chat_outcomes`' promise, and
    core/chat.wanted (the Chatbot topic's test) agrees with it."""
    import boto3
    from moto import mock_aws

    from infra.chat import filter_policy
    from sis_imports.core.chat import wanted

    outcomes = config(chat_outcomes=chat_outcomes).chat_outcomes
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="chat")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={
            "FilterPolicy": json.dumps(filter_policy(outcomes)), "RawMessageDelivery": "true"})
        for name, attributes in ALERTS.items():
            sns.publish(TopicArn=topic, Message=name, MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})
        got = set()
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            got |= {m["Body"] for m in messages}
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])
    assert got == delivered
    as_messages = {name: {"outcome": a["outcome"], "unusual": a.get("unusual") == "true"} for name, a in ALERTS.items()}
    assert {name for name, m in as_messages.items() if wanted(m, ",".join(outcomes))} == delivered
