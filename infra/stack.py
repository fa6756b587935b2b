"""The whole pipeline in one stack; each concern is its own construct."""

from __future__ import annotations

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from constructs import Construct, IConstruct

from .alerts import Alerts
from .canvas_queue import CanvasQueue
from .config import StackConfig
from .event_bus import EventBus
from .functions import Functions
from .ingest_api import IngestApi
from .table import BatchTable
from .token_secret import TokenSecret

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
        table = BatchTable(self, "Batches", retain=config.removal_policy == "retain").table
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
        )
        table.grant(ingest, *WRITE)
        if secret is not None:
            secret.grant_read(ingest)

        query = functions.add(
            "Query", handler="handlers.query.handler", description="GET /batches/{root_account_uuid}/{sis_batch_id}",
            environment={"TABLE_NAME": table.table_name}, reserved_concurrency=config.query_concurrency,
        )
        table.grant(query, "dynamodb:GetItem")

        api = IngestApi(self, "Ingress", config=config, ingest=ingest, query=query)
        alerts = Alerts(self, "Alerts", functions=functions, table=table, notify_emails=config.notify_emails,
                        reserved_concurrency=config.notifier_concurrency)

        CfnOutput(self, "WebhookUrl", value=api.webhook_url, description=(
            "Paste into Canvas's Live Events subscription (HTTPS) "
            + ("with ?token=<the CanvasToken secret>, Sign Payload off" if secret else "with Sign Payload on")))
        CfnOutput(self, "QueryUrl", value=api.query_url, description="IAM-signed GET for one batch")
        CfnOutput(self, "TopicArn", value=alerts.topic.topic_arn, description="Subscribe to get alerts")
        CfnOutput(self, "TableName", value=table.table_name)
        CfnOutput(self, "NotifierFailureQueueArn", value=alerts.failures.queue_arn,
                  description="Stream records whose alert could not be published")
        if api.domain_target:
            CfnOutput(self, "CustomDomainTarget", value=api.domain_target,
                      description="Point a CNAME (or alias) for the custom domain here")
        if secret is not None:
            CfnOutput(self, "TokenSecretArn", value=secret.secret_arn)

        if config.canvas_sqs:
            consumer = functions.add(
                "SqsConsumer", handler="handlers.sqs_consumer.handler",
                description="Canvas's SQS transport -> the same core", environment=store_env,
                timeout=Duration.seconds(30), reserved_concurrency=config.sqs_concurrency,
            )
            table.grant(consumer, *WRITE)
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
        table.grant(eventbridge, *WRITE)
        bus = EventBus(self, "Events", stage=config.stage, consumer=eventbridge,
                       archive_days=config.eventbridge_archive_days, source_accounts=config.eventbridge_source_accounts,
                       source_org_id=config.eventbridge_source_org_id)
        CfnOutput(self, "EventBusName", value=bus.bus.event_bus_name)
        CfnOutput(self, "EventBusArn", value=bus.bus.event_bus_arn)
        if bus.archive is not None:
            CfnOutput(self, "EventArchiveName", value=bus.archive.archive_name)
        CfnOutput(self, "EventBridgeDlqArn", value=bus.dead_letters.queue_arn)
        functions.finish()
