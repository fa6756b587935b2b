"""The operations topic: where the pipeline's alarms go (the alert topic keeps the imports' alerts).

With ops_topic_key=true, encrypted with a customer managed key of its own: AWS services publish to an
encrypted topic with the topic's key, and the AWS managed SNS key's policy (the alert topic's) cannot be
changed to let CloudWatch or EventBridge use it. This key's policy lets CloudWatch (alarm actions) and
EventBridge (rules that target the topic) use it for SNS, in this account, and nothing else. Without it
(the default: the key is $1 a month), the topic is not encrypted at rest: its messages are alarm state
changes (names, thresholds, the runbook's text), no event, token or personal data; TLS is still enforced.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .nag import acknowledge

KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


class OpsTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, emails: tuple[str, ...],
                 key: bool = False) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        alarms = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
        rules = f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/*"
        self.key = self._key(stage, alarms) if key else None
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"Canvas SIS imports ({stage}): operations",
            enforce_ssl=True,
            master_key=self.key,
        )
        if self.key is None:
            acknowledge(self.topic, "AwsSolutions-SNS2",
                        "The operations topic carries alarm state changes only (alarm names, thresholds, runbook "
                        "text; no event, token or personal data) and enforces TLS; a customer managed key for it "
                        "($1 a month) is context ops_topic_key=true.")
        # The topic's policy (enforce_ssl makes one, which replaces SNS's default) lets each service publish
        # for this account's alarms and rules only: no other account's alarm or rule can use the topic.
        for sid, service, source in (("AllowThisAccountsAlarms", "cloudwatch.amazonaws.com", alarms),
                                     ("AllowThisAccountsRules", "events.amazonaws.com", rules)):
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account},
                                "ArnLike": {"aws:SourceArn": source}},
                )
            )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def _key(self, stage: str, alarms: str) -> kms.Key:
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "Key",
            description=f"Canvas SIS imports ({stage}): the operations topic's messages (alarms)",
            enable_key_rotation=True,
            # It encrypts messages in transit through SNS only, nothing kept: it may go with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # What a service that publishes to an encrypted topic needs of its key (SNS's documentation,
        # "compatibility between event sources from AWS services and encrypted topics"). CloudWatch's
        # requests carry the alarm as their source: only this account's alarms. EventBridge's KMS
        # requests carry no source keys (AWS: aws:SourceAccount/SourceArn are not supported there, and a
        # condition on them would drop every message), so the topic's policy below scopes its rules.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublishToTheOpsTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=KEY_ACTIONS,
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}, "ArnLike": {"aws:SourceArn": alarms}},
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeRulesToPublishToTheOpsTopic",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=KEY_ACTIONS,
                resources=["*"],
            )
        )
        return key
