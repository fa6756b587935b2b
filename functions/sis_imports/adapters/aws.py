"""AWS clients with the limits of each service's calls (boto3 comes with the Lambda runtime)."""

from __future__ import annotations

from typing import Any


class ClientLimits:
    """How long one AWS call may take: botocore's defaults (60 s reads, up to 3 tries) would outlast the
    functions that make them, and a timed-out Lambda repeats what it had already done.

    A plain class, not a dataclass: every handler loads it at cold start, where a dataclass costs
    about 4 M instructions.
    """

    __slots__ = ("connect", "read", "attempts")

    def __init__(self, *, connect: float, read: float, attempts: int):
        self.connect = connect  # seconds to open the connection
        self.read = read  # seconds of silence allowed while waiting for the answer
        self.attempts = attempts  # tries in all (botocore's standard mode: only errors worth retrying are retried)

    def worst_seconds(self) -> float:
        """Every try connecting and reading up to its limit, with standard mode's longest backoffs
        (a throttled try waits up to 1 s, then 2 s, ...)."""
        return self.attempts * (self.connect + self.read) + (2 ** (self.attempts - 1) - 1)


# The one place AWS clients get their limits. A function's timeout must cover the calls it makes in a
# row (tests/infra/test_stack.py adds them up): DynamoDB and Secrets Manager answer in milliseconds, so
# a short read and one retry; SNS and SQS a little longer, and their caller has a fallback each (the
# retry queue, then Lambda's own retry) rather than a long wait.
CLIENT_LIMITS = {
    "dynamodb": ClientLimits(connect=0.5, read=1.0, attempts=2),  # 4 s at worst
    "secretsmanager": ClientLimits(connect=0.5, read=1.0, attempts=2),  # 4 s
    "sns": ClientLimits(connect=1.0, read=2.0, attempts=2),  # 7 s
    "sqs": ClientLimits(connect=1.0, read=2.0, attempts=2),  # 7 s
}


def client_config(service: str) -> Any:
    """The botocore Config of `service`'s clients (CLIENT_LIMITS)."""
    from botocore.config import Config

    limits = CLIENT_LIMITS[service]
    return Config(connect_timeout=limits.connect, read_timeout=limits.read,
                  retries={"mode": "standard", "total_max_attempts": limits.attempts})


def worst_seconds(service: str) -> float:
    return CLIENT_LIMITS[service].worst_seconds()


def remaining_ms(context: Any) -> int:
    """What is left of the Lambda invocation (a minute when the context cannot say: tests, the local run)."""
    try:
        return int(context.get_remaining_time_in_millis())
    except Exception:
        return 60_000


def client(service: str) -> Any:
    import boto3  # the runtime provides it; imported here so pure modules stay AWS-free

    return boto3.client(service, config=client_config(service))
