"""The whole pipeline in one stack; each concern is its own construct."""

from __future__ import annotations

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from constructs import Construct, IConstruct

from .alerts import Alerts
from .canvas_queue import CanvasQueue
from .chat import Chat
from .config import StackConfig
from .event_bus import EventBus
from .functions import Functions
from .ingest_api import IngestApi
from .monitoring import Monitored, Monitoring, dead_letter_queues, handler_functions
from .ops_topic import OpsTopic
from .reconciler import Reconciler, rhythm_env
from .table import BatchTable, grant_index_query, grant_items, shape
from .token_secret import TokenSecret

INGEST_TIMEOUT = Duration.seconds(14)

WRITE = ("dynamodb:UpdateItem", "dynamodb:PutItem")  # all the store needs: conditional writes, no reads


def warn_about_open_doors(scope: IConstruct, config: StackConfig) -> None:
    """What config.py lets through only on an explicit yes is said again at every synth."""
    if config.auth_mode == "none":
        Annotations.of(scope).add_warning_v2(
            "canvas:UnauthenticatedWebhook",
            "auth_mode=none: POST /events accepts unsigned events from anyone who knows the URL",
        )
    if config.any_root_account:
        Annotations.of(scope).add_warning_v2(
            "canvas:AnyRootAccount",
            "root_account_uuids=*: events of ANY Canvas customer are accepted (Canvas signs, and its AWS account "
            "sends, for every customer): anyone with a Canvas admin login can write batches and send alerts; "
            "set root_account_uuids to your root account uuid(s)",
        )


class CanvasSisImportsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, description="Canvas SIS import state and outcome alerts", **kwargs)
        table = BatchTable(self, "Batches", retain=config.removal_policy == "retain",
                           deletion_protection=config.deletion_protection).table
        functions = Functions(self, "Functions", config=config)
        store_env = {"TABLE_NAME": table.table_name, "RETENTION_DAYS": str(config.retention_days)}
        # Every ingress path (HTTPS, SQS, EventBridge) refuses events of other Canvas instances.
        store_env["SIS_ROOT_ACCOUNTS"] = ",".join(config.root_account_uuids)
        if config.canvas_hostnames:
            store_env["SIS_HOSTNAMES"] = ",".join(config.canvas_hostnames)
        warn_about_open_doors(self, config)

        ingest_env = {**store_env, "SIS_AUTH": config.auth_mode, "SIS_JWKS_URL": config.jwks_url}
        if config.jwt_issuers:
            ingest_env["SIS_JWT_ISSUERS"] = ",".join(config.jwt_issuers)
        secret = TokenSecret(self, "CanvasToken") if config.auth_mode == "token" else None
        if secret is not None:
            ingest_env["SIS_TOKEN_SECRET_ARN"] = secret.secret_arn
        ingest = functions.add(
            "Ingest", handler="handlers.ingest.handler", description="POST /events: Canvas's webhook",
            environment=ingest_env, reserved_concurrency=config.ingest_concurrency,
            # The JWKS fetch (3 s deadline) or the token's secret, then two DynamoDB calls, each at its
            # client's worst (wiring.CLIENT_LIMITS): 11 s; Canvas waits 15 s for an answer.
            timeout=INGEST_TIMEOUT,
        )
        grant_items(ingest, table, *WRITE)
        if secret is not None:
            secret.grant_read(ingest)

        query = functions.add(
            "Query", handler="handlers.query.handler",
            description="GET /batches/{root_account_uuid}[/{sis_batch_id}]: one batch, or the recent ones",
            environment={"TABLE_NAME": table.table_name, **rhythm_env(config)},
            reserved_concurrency=config.query_concurrency,
            timeout=Duration.seconds(15),  # a list: an index query, its items, the rhythm's GetItem: 4 s at worst each
        )
        grant_items(query, table, "dynamodb:GetItem", "dynamodb:BatchGetItem")  # a batch, #rhythm; a page's batches
        grant_index_query(query, table, shape.LIST_INDEX)
        grant_index_query(query, table, shape.OPEN_INDEX)  # outcome=stuck

        api = IngestApi(self, "Ingress", config=config, ingest=ingest, query=query)
        alerts = Alerts(self, "Alerts", functions=functions, table=table, notify_emails=config.notify_emails,
                        reserved_concurrency=config.notifier_concurrency, email_outcomes=config.email_outcomes)
        # Chat (issue 10), opt-in: a topic of Chatbot notifications the notifier feeds; Slack/Teams subscribers.
        chat = Chat(self, "Chat", config=config, functions=functions, alert_topic=alerts.topic)
        chat.feed(alerts.notifier)
        chat.feed(alerts.retry)  # a deferred alert's chat copy is published from the retry queue
        if chat.topic is not None:
            CfnOutput(self, "ChatTopicArn", value=chat.topic.topic_arn, description=(
                "AWS Chatbot custom notifications of the alerts (" + ", ".join(config.chat_outcomes) + "): connect "
                "this topic to a Slack or Teams channel in AWS Chatbot (Amazon Q Developer in chat applications)"))
        if chat.failures is not None:
            CfnOutput(self, "ChatFailureQueueArn", value=chat.failures.queue_arn,
                      description="Alerts the Slack/Teams webhook did not take after the retries")

        CfnOutput(self, "WebhookUrl", value=api.webhook_url, description=(
            "Paste into Canvas's Live Events subscription (HTTPS) "
            + ("with ?token=<the CanvasToken secret>, Sign Payload off" if secret else "with Sign Payload on")))
        CfnOutput(self, "QueryUrl", value=api.query_url, description="IAM-signed GET for one batch; without "
                  "/{sis_batch_id}, a root account's recent batches (make status)")
        CfnOutput(self, "TopicArn", value=alerts.topic.topic_arn, description="Subscribe to get alerts")
        CfnOutput(self, "TableName", value=table.table_name)
        CfnOutput(self, "NotifierFailureQueueArn", value=alerts.failures.queue_arn,
                  description="Stream records the notifier could not read (with the reason), and alerts it could "
                  "not deliver before their record's age limit: make redrive --which alerts puts those back")
        CfnOutput(self, "AlertRetryDlqArn", value=alerts.retry_dead_letters.queue_arn,
                  description="Alerts SNS refused for a day: make redrive publishes them")
        CfnOutput(self, "AlertRetryQueueUrl", value=alerts.retries.queue_url,
                  description="Alerts waiting to be published again (make redrive puts parked alerts here)")
        if api.domain_target:
            CfnOutput(self, "CustomDomainTarget", value=api.domain_target,
                      description="Point a CNAME (or alias) for the custom domain here")
        if secret is not None:
            CfnOutput(self, "TokenSecretArn", value=secret.secret_arn)

        queue = None
        if config.canvas_sqs:
            consumer = functions.add(
                "SqsConsumer", handler="handlers.sqs_consumer.handler",
                description="Canvas's SQS transport -> the same core", environment=store_env,
                timeout=Duration.seconds(30), reserved_concurrency=config.sqs_concurrency,
            )
            grant_items(consumer, table, *WRITE)
            queue = CanvasQueue(self, "CanvasQueue", stage=config.stage, canvas_account_id=config.canvas_account_id,
                                consumer=consumer, max_concurrency=config.sqs_max_concurrency)
            CfnOutput(self, "CanvasQueueUrl", value=queue.queue.queue_url,
                      description="Paste into Canvas's Live Events subscription (SQS)")
            CfnOutput(self, "CanvasQueueArn", value=queue.queue.queue_arn)
            CfnOutput(self, "CanvasQueueDlqArn", value=queue.dead_letters.queue_arn)

        eventbridge = functions.add(
            "EventBridgeConsumer", handler="handlers.eventbridge.handler",
            description="EventBridge SIS batch events -> the same core", environment=store_env,
            reserved_concurrency=config.eventbridge_concurrency,
        )
        grant_items(eventbridge, table, *WRITE)
        bus = EventBus(self, "Events", stage=config.stage, consumer=eventbridge,
                       archive_days=config.eventbridge_archive_days, source_accounts=config.eventbridge_source_accounts,
                       source_org_id=config.eventbridge_source_org_id)
        CfnOutput(self, "EventBusName", value=bus.bus.event_bus_name)
        CfnOutput(self, "EventBusArn", value=bus.bus.event_bus_arn)
        if bus.archive is not None:
            CfnOutput(self, "EventArchiveName", value=bus.archive.archive_name)
        CfnOutput(self, "EventBridgeDlqArn", value=bus.dead_letters.queue_arn)

        # Without canvas_instances, none of this exists (no function, schedule, secret or second layer).
        reconciler = None
        if config.canvas_instances:
            reconciler = Reconciler(self, "Reconciler", config=config, functions=functions, table=table,
                                    store_env=store_env)
            # The notifier reads the same instances for an end's details (counts, first errors).
            alerts.read_canvas(instances_json=reconciler.instances_json, layer=reconciler.layer,
                               secret_arns=[token.secret.secret_arn for token in reconciler.tokens], table=table,
                               sensitivity=config.anomaly_sensitivity, min_history=config.anomaly_min_history)
            for number, token in enumerate(reconciler.tokens, start=1):
                CfnOutput(self, f"CanvasTokenSecretArn{number}", value=token.secret.secret_arn, description=(
                    f"Canvas API token for {token.url} (a user whose root account role has SIS Data - import): "
                    "aws secretsmanager put-secret-value --secret-id <this ARN> --secret-string <token>"))

        # Operations (issue 11): the pipeline's alarms go to a topic of their own; imports' alerts stay on
        # the alert topic. Made last: every function and every dead-letter queue of the stack is watched.
        ops = OpsTopic(self, "Ops", stage=config.stage, emails=config.ops_emails, key=config.ops_topic_key)
        monitoring = Monitoring(self, "Monitoring", config=config, topic=ops.topic, monitored=Monitored(
            functions=handler_functions(functions), notifier=alerts.notifier, api=api.api,
            dead_letters=dead_letter_queues(self), canvas_queue=queue.queue if queue else None,
            reconciler=reconciler.function if reconciler else None,
        ))
        CfnOutput(self, "OpsTopicArn", value=ops.topic.topic_arn,
                  description="Subscribe to get the pipeline's alarms (docs/runbook.md says what each means)")
        if monitoring.dashboard is not None:
            CfnOutput(self, "DashboardName", value=monitoring.dashboard.dashboard_name)
        CfnOutput(self, "RootAccountUuids", value=",".join(config.root_account_uuids),
                  description="The root accounts whose events are let in (make status lists their batches)")
        functions.finish()
