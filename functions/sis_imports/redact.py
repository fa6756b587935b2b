"""What is kept of a URL Canvas reports (`metadata.url`, `metadata.referrer`): scheme, host and path.

Canvas accepts API tokens in the query string, and tokens come in more shapes than any list of
parameter names can foresee (`;access_token=`, `access_token[]=`, a nested `?return_to=…?token=`,
`refresh_token`, `client_secret`, `verifier`…). So nothing of the query string or the fragment is
kept, nor user info: what an operator needs (which host, which API route) is all in the path.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


@cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """Compiled on the first URL, not at import: the ingest's cold start does not pay for them."""
    return (
        # No URL holds these; urlsplit silently deletes tabs and newlines, which would join what follows.
        re.compile(r"[\s\x00-\x1f\x7f]"),
        re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}"),  # scheme
        re.compile(r"[A-Za-z0-9.\-\[\]:]{1,253}"),  # host
        # The characters RFC 3986 allows in a path, less `;` (path parameters, where a token could hide).
        re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*"),
    )


def redact_url(url: str | None) -> str | None:
    """`scheme://host[:port]/path` of `url`, or None when it has no host we can trust to keep."""
    if not url:
        return None
    not_url, scheme, host_chars, path_chars = _patterns()
    url = not_url.split(url, maxsplit=1)[0]
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None  # a URL we cannot parse: keep nothing rather than risk a secret
    if not host or not host_chars.fullmatch(host) or not scheme.fullmatch(parts.scheme):
        return None
    # Cut the path at the first character a path cannot hold (`;`, whitespace, a stray `?`...).
    path = path_chars.match(parts.path).group(0)  # type: ignore[union-attr]
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{path}"[:MAX_URL_LENGTH]
