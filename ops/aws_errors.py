"""An AWS failure as the operator's tools say it: one line, never a traceback."""

from __future__ import annotations

from typing import Any

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


class NotSignedIn(Exception):
    """No usable AWS credentials: its message is the one line to print."""


def signed_in_session(doing: str) -> Any:
    """A boto3 session that has credentials (`doing`: "read <stack>", "redrive <stack>")."""
    import boto3

    session = boto3.Session()
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise NotSignedIn(f"cannot read AWS credentials: {exc}") from None
    if credentials is None:
        raise NotSignedIn(f"no AWS credentials found: sign in (aws sso login, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                          f"AWS_SECRET_ACCESS_KEY) to {doing}")
    return session
