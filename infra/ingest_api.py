"""The HTTPS ingress: API Gateway HTTP API with Canvas's webhook and the operators' batch query."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import StackConfig
from .functions import retention
from .nag import acknowledge

# No query string: Canvas's subscription URL may carry the shared token there.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "error": "$context.error.message",
    }
)


class IngestApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        ingest: lambda_.IFunction,
        query: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="Canvas SIS import Live Events",
            create_default_stage=False,
            # With a custom domain, the execute-api URL would be a second, unguarded way in.
            disable_execute_api_endpoint=bool(config.domain_name),
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=config.throttle_rate, burst_limit=config.throttle_burst),
        )
        cfn_stage: apigwv2.CfnStage = self.stage.node.default_child  # type: ignore[assignment]
        # A line per request (~250 bytes: $1.23 a month at 10M events), which says little that the function's
        # own lines, its metrics and the API's 4xx/5xx/latency metrics do not: asked for (api_access_logs).
        self.access_logs: logs.LogGroup | None = None
        if config.api_access_logs:
            self.access_logs = logs.LogGroup(
                self, "AccessLogs", retention=retention(config.log_retention_days),
                removal_policy=RemovalPolicy.DESTROY,
            )
            cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
                destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
            )
        else:
            acknowledge(cfn_stage, "AwsSolutions-APIG1",
                        "Access logging is opt-in (api_access_logs=true) for its cost: without it every request "
                        "is still counted in the API's Count, 4xx, 5xx and latency metrics (the 5xx alarm reads "
                        "them), and the ingest function logs every refusal and stores every event it takes.")
        events_routes = self.api.add_routes(
            path="/events",
            methods=[apigwv2.HttpMethod.POST],
            integration=integrations.HttpLambdaIntegration("Ingest", ingest),
        )
        # The operators' reads, IAM-authorized (SigV4): one batch, and a root account's recent batches.
        query_integration = integrations.HttpLambdaIntegration("Query", query)
        for path in ("/batches/{root_account_uuid}/{sis_batch_id}", "/batches/{root_account_uuid}"):
            self.api.add_routes(
                path=path,
                methods=[apigwv2.HttpMethod.GET],
                integration=query_integration,
                authorizer=authorizers.HttpIamAuthorizer(),
            )
        if config.auth_mode == "none":
            why_open = ("auth_mode=none, chosen explicitly with allow_unauthenticated=true (config.py refuses it "
                        "otherwise; synth warns every time): for trials, never production.")
        else:
            why_open = ("Canvas cannot sign API Gateway requests; the ingest handler authenticates every event "
                        f"itself ({'RS256 JWT against Canvas JWKS' if config.auth_mode == 'jwt' else 'shared token'}).")
        for route in events_routes:
            acknowledge(route, "AwsSolutions-APIG4", why_open)
        if config.domain_name and config.certificate_arn:
            domain = apigwv2.DomainName(
                self,
                "Domain",
                domain_name=config.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn),
            )
            apigwv2.ApiMapping(self, "Mapping", api=self.api, domain_name=domain, stage=self.stage)
            self.domain_target = domain.regional_domain_name
            base = f"https://{config.domain_name}"
        else:
            self.domain_target = None
            base = self.api.api_endpoint
        self.webhook_url = f"{base}/events"
        self.query_url = f"{base}/batches/{{root_account_uuid}}/{{sis_batch_id}}"
        self.list_url = f"{base}/batches/{{root_account_uuid}}"
