"""EventBridge ingress: a bus whose SIS batch events go to the same core, archived for replay on request."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from .queues import dead_letter_queue


DETAIL_TYPES = ["sis_batch_created", "sis_batch_updated"]


class EventBus(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        consumer: lambda_.Function,
        archive_days: int,
        source_accounts: tuple[str, ...],
        source_org_id: str | None = None,
    ) -> None:
        """`archive_days` 0: no archive. `source_org_id`: every cross-account put must come from a
        principal of that AWS organization; with no `source_accounts`, any account of it may put."""
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"canvas-sis-imports-{stage}")
        # One queue keeps both kinds of dead letter: events EventBridge could not deliver, and
        # events the function failed on after its retries (invalid ones, with the reason).
        self.dead_letters = dead_letter_queue(self, "DeadLetters", holds="the EventBridge target's and the function's")
        pattern = events.EventPattern(detail_type=DETAIL_TYPES)
        self.rule = events.Rule(
            self,
            "SisBatchEvents",
            event_bus=self.bus,
            event_pattern=pattern,
            targets=[
                targets.LambdaFunction(
                    consumer,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=8,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        consumer.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        # Opt-in: an archive keeps raw events (tokens in metadata.url, client_ip, user_login) for its
        # retention, which config.py keeps within retention_days (older replayed events are ignored).
        self.archive = (
            self.bus.archive(
                "Archive",
                description="SIS batch events (raw), for replays",
                event_pattern=pattern,
                retention=Duration.days(archive_days),
            )
            if archive_days > 0
            else None
        )
        in_org = {"StringEquals": {"aws:PrincipalOrgID": source_org_id}} if source_org_id else None
        senders: list[tuple[str, iam.IPrincipal]] = [
            (f"PutEventsFrom{account}", iam.AccountPrincipal(account)) for account in source_accounts
        ]
        if source_org_id and not source_accounts:
            senders = [("PutEventsFromOrganization", iam.AnyPrincipal())]  # an org-wide bus, never an open one
        for sid, principal in senders:
            self.bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[principal],
                    actions=["events:PutEvents"],
                    resources=[self.bus.event_bus_arn],
                    conditions=in_org,
                )
            )
