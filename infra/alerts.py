"""Alerts: the SNS topic, and the notifier reading the table's stream (publish after the write)."""

from __future__ import annotations

import sys

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .bundling import FUNCTIONS
from .functions import Functions
from .queues import dead_letter_queue, queue
from .table import grant_items

if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))
from sis_imports.core import delivery  # noqa: E402  (the same numbers the notifier and `make run` use)


def managed_key_topic(scope: Construct, construct_id: str, *, display_name: str) -> sns.Topic:
    """A TLS-only topic that only our functions publish to, encrypted with the AWS managed key.

    Its key policy already lets this account's SNS callers use it, so publishers need no KMS statement
    (cdk.json keeps applyImportedAliasPermissionsToPrincipal off, which would add kms:GenerateDataKey*
    on key/*). A customer managed key is needed only where another AWS service (CloudWatch alarms,
    EventBridge) publishes: the ops topic (infra/ops_topic.py).
    """
    return sns.Topic(scope, construct_id, display_name=display_name, enforce_ssl=True,
                     master_key=kms.Alias.from_alias_name(scope, "SnsKey", "alias/aws/sns"))


def email_filter_policy(outcomes: tuple[str, ...] | None) -> dict | None:
    """The email subscriptions' filter on the alert's message attributes (context email_outcomes): its
    `outcome` among `outcomes`, or, when `unusual` is one of them, `unusual` = "true" whatever the outcome.
    None (email_outcomes=all): every alert."""
    if outcomes is None:
        return None
    by_outcome = {"outcome": [o for o in outcomes if o != "unusual"]}
    unusual = {"unusual": ["true"]}
    if "unusual" not in outcomes:
        return by_outcome
    return {"$or": [by_outcome, unusual]} if by_outcome["outcome"] else unusual


RETRY_EVERY = Duration.minutes(5)
NOTIFIER_TIMEOUT = Duration.seconds(90)  # two alerts of a record at their worst (69 s), and room
ALERT_RETRY_TIMEOUT = Duration.seconds(30)
RETRY_RECEIVES = 288  # every 5 minutes for 24 hours
# AlertRetry's reservation (none when the notifier has none: notifier_concurrency=0 is how an account
# with the default quota of 10 deploys), and its SQS source's cap at the same figure: the poller never
# starts more invocations than are reserved, so none is throttled (a throttled receive counts towards 288).
RETRY_CONCURRENCY = 2


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
        email_outcomes: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = managed_key_topic(self, "Topic", display_name="Canvas SIS imports")
        for email in notify_emails:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(email))
            policy = email_filter_policy(email_outcomes)
            if policy:  # set on the L1: CDK's SubscriptionFilter map cannot say "$or"
                cfn = subscription.node.default_child
                cfn.add_property_override("FilterPolicy", policy)  # type: ignore[union-attr]

        # What the notifier could not deliver: unreadable records with their reason, alerts it could neither
        # publish nor queue for a retry near its record's age limit (whole: `make redrive` puts them back),
        # and Lambda's descriptions (shard and sequence numbers) of records that failed to the end.
        # Kept the longest SQS allows.
        self.failures = dead_letter_queue(self, "NotifierFailures", holds="the notifier's on-failure destination",
                                          retention_period=Duration.days(14))
        # Alerts SNS refused: published again every 5 minutes for a day by AlertRetry, then kept in its
        # dead-letter queue (alerts hold no secret: 14 days) until `make redrive` moves them back.
        self.retry_dead_letters = dead_letter_queue(self, "AlertRetryDeadLetters", retention_period=Duration.days(14))
        self.retries = queue(self, "AlertRetries", visibility_timeout=RETRY_EVERY, retention_period=Duration.days(4),
                             dead_letter_queue=sqs.DeadLetterQueue(queue=self.retry_dead_letters,
                                                                   max_receive_count=RETRY_RECEIVES))
        self.notifier = functions.add(
            "Notifier",
            handler="handlers.notifier.handler",
            description="Table stream -> one SNS alert per end of an import or a restore, and per stuck state",
            environment={"TOPIC_ARN": self.topic.topic_arn, "NOTIFIER_FAILURE_QUEUE_URL": self.failures.queue_url,
                         "ALERT_RETRY_QUEUE_URL": self.retries.queue_url},
            # A record is started only with its worst case left (usecases/notify.py): Canvas details, then
            # per alert SNS (topic, chat) and the retry queue, each bounded by its client's limits (adapters/aws.py).
            timeout=NOTIFIER_TIMEOUT,
            reserved_concurrency=reserved_concurrency,
            any_resource_reason="dynamodb:ListStreams (which the stream event source needs) has no resource-level "
            "permission either; reading the stream itself is scoped to this table's stream.",
        )
        self.topic.grant_publish(self.notifier)
        self.failures.grant_send_messages(self.notifier)
        self.retries.grant_send_messages(self.notifier)
        self.retry = functions.add(
            "AlertRetry",
            handler="handlers.alert_retry.handler",
            description="Alerts SNS refused -> published again (every 5 minutes, for a day)",
            environment={"TOPIC_ARN": self.topic.topic_arn},
            timeout=ALERT_RETRY_TIMEOUT,
            reserved_concurrency=RETRY_CONCURRENCY if reserved_concurrency else 0,
        )
        self.topic.grant_publish(self.retry)
        self.retry.add_event_source(sources.SqsEventSource(self.retries, batch_size=10,
                                                            max_concurrency=RETRY_CONCURRENCY,
                                                            report_batch_item_failures=True))
        self.notifier.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                # Retried until the record's age limit, not a count (sis_imports/core/delivery.py says why).
                batch_size=delivery.STREAM_BATCH_SIZE,
                bisect_batch_on_error=delivery.STREAM_BISECT_ON_ERROR,
                retry_attempts=delivery.STREAM_MAX_RETRY_ATTEMPTS,
                max_record_age=Duration.seconds(delivery.STREAM_MAX_RECORD_AGE_SECONDS),
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.failures),
                # Only writes that leave a batch in an end state, or marked stuck by the reconciler (its
                # stuck_state, set once per batch and state), can owe an alert. A record passes if either does.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                            # `ended`: an end is in the history, current or late (a late end after a newer state).
                            "dynamodb": {"NewImage": {"ended": {"BOOL": lambda_.FilterRule.is_equal(True)}}},
                        }
                    ),
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                            "dynamodb": {"NewImage": {"stuck_state": {"S": lambda_.FilterRule.exists()}}},
                        }
                    ),
                    # A root account's rhythm (written by the reconciler only when it changed): a missing
                    # import's gap found, or ended (sis_imports/core/rhythm.py).
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                            "dynamodb": {"NewImage": {"kind": {"S": lambda_.FilterRule.is_equal("rhythm")}}},
                        }
                    ),
                ],
            )
        )

    def read_canvas(self, *, instances_json: str, secret_arns: list[str], layer: lambda_.ILayerVersion,
                    table: dynamodb.Table, sensitivity: int, min_history: int) -> None:
        """Let the notifier read Canvas's SIS Import API for an end's details (the reconciler's instances),
        and compare an import's end with the school's baseline (one GetItem; an UpdateItem marks it unusual, or
        notes on the marker item that its figures are owed when Canvas did not answer)."""
        self.notifier.add_environment("CANVAS_INSTANCES", instances_json)
        self.notifier.add_environment("ANOMALY_SENSITIVITY", str(sensitivity))
        self.notifier.add_environment("ANOMALY_MIN_HISTORY", str(min_history))
        if sensitivity:
            self.notifier.add_environment("TABLE_NAME", table.table_name)
            grant_items(self.notifier, table, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self.notifier.add_layers(layer)  # canvasapi, imported on the first alert that asks Canvas
        iam.Grant.add_to_principal(grantee=self.notifier, actions=["secretsmanager:GetSecretValue"],
                                   resource_arns=secret_arns)
