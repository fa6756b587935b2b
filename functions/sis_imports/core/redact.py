"""What is kept of a URL Canvas reports (`metadata.url`, `metadata.referrer`): scheme, host, and
the path's route words and numeric ids.

Canvas accepts API tokens in the query string, and tokens come in more shapes than any list of
parameter names can foresee (`;access_token=`, `access_token[]=`, a nested `?return_to=…?token=`,
`refresh_token`, `client_secret`, `verifier`…). So nothing of the query string or the fragment is
kept, nor user info.

The path can hold capabilities too: calendar and announcement feeds (`/feeds/calendars/user_<code>.ics`),
confirmation and password nonces (`/register/<nonce>`), a token after `/login/oauth2/token/`, file
names, a query smuggled in percent-encoded (`%3Faccess_token%3D…`). Rather than list them, the rule
is safe by default: a segment is kept only when it looks like a Canvas route word (lowercase ASCII
letters and underscores, up to 40, optionally a digit at the end and a format like `.json`: `api`,
`v1`, `oauth2`, `sis_imports.json`) or a numeric id (`1`, `21070000000000001`, `2107~1`); every other
segment becomes `REDACTED`. After a segment that introduces a capability (`feeds`, `token`, `register`,
`change_password`…), every later segment is replaced whatever it looks like, since a nonce can happen
to look like a word.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
REDACTED = "REDACTED"
# Everything after one of these is a capability (a feed code, a token, a nonce), even a word or a number.
CAPABILITY_BEFORE = frozenset({"token", "tokens", "register", "change_password", "reset_password", "confirm",
                               "confirmations", "verifier", "verifiers"})
# A feed's kind is kept (`/feeds/calendars/…`); every segment after it is replaced.
FEEDS = "feeds"


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
        # A route word or a numeric id (a global one may be written shard~id); [0-9], never \d (other scripts).
        re.compile(r"[a-z](?:[a-z_]{0,38}[a-z0-9])?(?:\.[a-z]{2,5})?|[0-9]{1,20}(?:~[0-9]{1,20})?"),
    )


def redact_path(path: str) -> str:
    """`path` with every segment that is not a route word or a numeric id replaced by REDACTED."""
    kept_pattern = _patterns()[4]
    segments = path.split("/")
    secret_from = len(segments)  # the index from which every segment is a capability
    out = []
    for index, segment in enumerate(segments):
        if not segment:
            out.append(segment)  # the leading or a trailing slash: nothing to hide
            continue
        out.append(segment if index < secret_from and kept_pattern.fullmatch(segment) else REDACTED)
        if segment in CAPABILITY_BEFORE:
            secret_from = min(secret_from, index + 1)
        elif segment == FEEDS:
            secret_from = min(secret_from, index + 2)
    return "/".join(out)


def redact_url(url: str | None) -> str | None:
    """`scheme://host[:port]/path` of `url`, path redacted (`redact_path`), or None when it has no
    host we can trust to keep."""
    if not url:
        return None
    not_url, scheme, host_chars, path_chars, _ = _patterns()
    url = not_url.split(url, maxsplit=1)[0]
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None  # a URL we cannot parse: keep nothing rather than risk a secret
    if not host or not host_chars.fullmatch(host) or not scheme.fullmatch(parts.scheme):
        return None
    # Cut the path at the first character a path cannot hold (`;`, whitespace, a stray `?`...).
    path = redact_path(path_chars.match(parts.path).group(0))  # type: ignore[union-attr]
    netloc = host if port is None else f"{host}:{port}"
    kept = f"{parts.scheme.lower()}://{netloc}{path}"
    if len(kept) > MAX_URL_LENGTH:
        # Cut at a segment's start, so that no word or REDACTED is left half.
        kept = kept[: kept.rfind("/", 0, MAX_URL_LENGTH + 1)]
    return kept
