"""Canvas's SQS transport: a queue only Canvas's AWS account may send to, read by the consumer."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .queues import dead_letter_queue, queue

MAX_RECEIVES = 5


class CanvasQueue(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        canvas_account_id: str,
        consumer: lambda_.Function,
        max_concurrency: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Raw events (tokens in metadata.url, client_ip, user_login): kept as briefly as the queue keeps them.
        self.dead_letters = dead_letter_queue(self, "DeadLetters", queue_name=f"canvas-live-events-{stage}-dlq")
        # Canvas requires the name prefix and a standard queue (FIFO is not supported).
        self.queue = queue(
            self,
            "Queue",
            queue_name=f"canvas-live-events-{stage}",
            # Six times the consumer's timeout, as Lambda advises for SQS event sources.
            visibility_timeout=Duration.seconds(6 * consumer.timeout.to_seconds()) if consumer.timeout else None,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=MAX_RECEIVES),
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CanvasLiveEventsSendOnly",
                principals=[iam.AccountPrincipal(canvas_account_id)],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
            )
        )
        consumer.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
                # However deep the queue, the consumer never takes more than this many executions.
                max_concurrency=max_concurrency,
            )
        )
