"""Alerts: the SNS topic, and the notifier reading the table's stream (publish after the write)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .queues import dead_letter_queue
from .functions import Functions


class Alerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        table: dynamodb.Table,
        notify_emails: tuple[str, ...],
        reserved_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Canvas SIS imports",
            enforce_ssl=True,
            # The AWS managed key: its key policy already lets this account's SNS callers use it, so
            # the notifier needs no KMS statement (cdk.json keeps applyImportedAliasPermissionsToPrincipal
            # off, which would add kms:GenerateDataKey* on key/*). A customer managed key would be
            # needed only if another AWS service (CloudWatch alarms, EventBridge) were to publish here.
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )
        for email in notify_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        # Stream records that could not be published after every retry are described here, not dropped.
        # A description names the shard and sequence numbers only, no event content: kept the longest SQS allows.
        self.failures = dead_letter_queue(self, "NotifierFailures", holds="the notifier's on-failure destination",
                                          retention_period=Duration.days(14))
        self.notifier = functions.add(
            "Notifier",
            handler="handlers.notifier.handler",
            description="Table stream -> one SNS alert per end state",
            environment={"TOPIC_ARN": self.topic.topic_arn},
            reserved_concurrency=reserved_concurrency,
            any_resource_reason="dynamodb:ListStreams (which the stream event source needs) has no resource-level "
            "permission either; reading the stream itself is scoped to this table's stream.",
        )
        self.topic.grant_publish(self.notifier)
        self.notifier.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=25,
                bisect_batch_on_error=True,
                retry_attempts=10,
                max_record_age=Duration.hours(24),
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.failures),
                # Only writes that leave a batch in an end state can owe an alert.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                            "dynamodb": {"NewImage": {"terminal": {"BOOL": lambda_.FilterRule.is_equal(True)}}},
                        }
                    )
                ],
            )
        )
