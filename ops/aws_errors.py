"""An AWS failure as the operator's tools say it: one line, never a traceback."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

AWS_FAILURES = (BotoCoreError, ClientError)


def one_line(exc: BotoCoreError | ClientError, doing: str) -> str:
    """What went wrong, for `make status` and `make redrive` (`doing`: "read <stack>", "redrive <stack>")."""
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (the stack's region) or a profile's region"
    if isinstance(exc, NoCredentialsError):
        return f"no AWS credentials found: sign in to {doing}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
    return f"AWS could not be asked: {exc}"
