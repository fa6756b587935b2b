"""Removes secrets from URLs before they are stored (Canvas puts API tokens in query strings)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = frozenset(
    {"access_token", "token", "key", "api_key", "secret", "password", "signature", "sig", "verifier", "code"}
)
REDACTED = "REDACTED"
MAX_URL_LENGTH = 2048


def redact_url(url: str | None) -> str | None:
    """The URL with secret-looking query values replaced, user info dropped; None if unparseable."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        # A URL we cannot parse cannot be redacted reliably: keep nothing rather than a secret.
        return None
    query = [
        (name, REDACTED if name.lower() in SECRET_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    # The fragment is never sent to Canvas's server and may hold an OAuth token: drop it.
    redacted = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/:,~"), ""))
    return redacted[:MAX_URL_LENGTH]
