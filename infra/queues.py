"""SQS queues as this stack makes them: encrypted (SSE-SQS) and TLS-only."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .nag import acknowledge


def queue(scope: Construct, construct_id: str, **props: Any) -> sqs.Queue:
    # SSE-SQS rather than KMS: Canvas's account sends to one of these, and could not use a key of
    # ours without a key policy we cannot verify from here.
    return sqs.Queue(scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **props)


# Dead letters are raw Canvas events (tokens in metadata.url, client_ip, user_login): kept the shortest time
# that still lets an operator act after a long weekend, as long as the Canvas queue keeps its messages.
DEAD_LETTER_RETENTION = Duration.days(4)


def dead_letter_queue(
    scope: Construct,
    construct_id: str,
    *,
    holds: str | None = None,
    retention_period: Duration = DEAD_LETTER_RETENTION,
    **props: Any,
) -> sqs.Queue:
    """A queue that keeps failures for 4 days unless told otherwise; `holds` says what, when no
    redrive policy names it."""
    dlq = queue(scope, construct_id, retention_period=retention_period, **props)
    if holds:
        acknowledge(dlq, "AwsSolutions-SQS3", f"This queue is itself a dead-letter queue: {holds}.")
    return dlq
