"""Text that Canvas or an uploader wrote, made safe to print on one line: the email's and the chats'.

Pure: no AWS, no HTTP. Canvas passes the SIS file's own content through (error messages, file names,
data set identifiers), so such text can hold line breaks, control characters and bidirectional
overrides: printed as is, it could draw a line of its own (a fake link) or reorder what a name
appears to say. `one_line` folds it into a single line without them.
"""

from __future__ import annotations

import re
from typing import Any

# C0/C1 controls, zero-width and bidirectional formatting characters (which can reorder what a file
# name appears to say), line and paragraph separators, byte order mark; and lone surrogates (a JSON
# answer can hold one as an escape; no UTF-8 encoder takes it).
INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                       r"\ud800-\udfff]")
SPACES = re.compile(r"\s+")
ELLIPSIS = "…"


def one_line(value: Any, limit: int) -> str:
    """Untrusted text as one line without invisible characters, at most `limit` characters (an
    ellipsis ends it when cut). Anything but a string or a number gives ""."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    text = SPACES.sub(" ", INVISIBLE.sub(" ", str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS
