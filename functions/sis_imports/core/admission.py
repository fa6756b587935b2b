"""Which valid events get in: the trust boundary past authentication (pure, no AWS).

Canvas signs the Live Events of every customer with one key set, and one AWS account sends every
customer's SQS messages: a valid signature proves "came through Instructure", not "came from our
Canvas". Only `root_account_uuid` (and `hostname`, when present) says whose an event is, so only
the operator's root accounts (and host names) are let in.

Time is checked too: an event from more than `FUTURE_TOLERANCE_SECONDS` ahead would freeze its
batch (every real later event would look older), and one older than the retention period would
re-create a batch whose item has expired (a replay of an old archive).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .batch import FUTURE_TOLERANCE_SECONDS
from .events import FieldError, InvalidEvent, SisBatchEvent
from .table import ID_PATTERN

ANY = "*"


class NotAllowed(Exception):
    """An event from a root account (or host) this deployment does not serve.

    `names` holds what may be logged of it: only values that are well-formed ids or host names."""

    def __init__(self, field: str, reason: str, names: dict[str, str | None] | None = None):
        self.field = field
        self.reason = reason
        self.names = names or {}
        super().__init__(f"{field}: {reason}")


def _loggable_id(value: str) -> str:
    # Not validated yet: it may be huge, or not an id at all; only an id's shape is worth a log line.
    return value if re.fullmatch(ID_PATTERN, value) else "(not a valid id)"


_ROOT_ACCOUNT_REASON = "this Canvas root account is not allowed here"


class Verdict:
    """What `Admission.check` answers (plain constants: an Enum costs the ingest's cold start)."""

    ADMIT = "admit"
    TOO_OLD = "too_old"  # older than the retention period: acknowledged, ignored


def _names(raw: str) -> frozenset[str] | None:
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    return None if not names or ANY in names else names


def event_epoch(event_time: str) -> float:
    return datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


class Admission:
    # A plain class, not a dataclass: the generated methods cost the ingest's cold start.
    __slots__ = ("root_accounts", "hostnames", "retention_seconds")

    def __init__(self, root_accounts: frozenset[str] | None, hostnames: frozenset[str] | None, retention_seconds: int):
        self.root_accounts = root_accounts  # None: any root account (the explicit `*`)
        self.hostnames = hostnames  # None: any host name
        self.retention_seconds = retention_seconds

    @classmethod
    def of(cls, root_accounts: str, hostnames: str = "", retention_days: int = 90) -> Admission:
        """From the comma-separated settings (`*` for any root account)."""
        if not root_accounts.strip():
            raise ValueError("no root accounts given: list the root_account_uuids to allow, or * for any")
        lowered = _names(hostnames.lower())
        return cls(_names(root_accounts), lowered, retention_days * 86400)

    def check_root_account(self, raw: Any) -> None:
        """Before validation: raises NotAllowed when the decoded event names a root account not allowed here.

        Another Canvas's event is refused whatever else is wrong with it, so that it never waits in our
        dead-letter queue (with its logins and tokens) nor sets off the dead-letter and error alarms.
        Tolerant on purpose: when `metadata.root_account_uuid` is absent, or neither a string nor a
        number (read as validation reads ids), validation names the problem as for any event."""
        if self.root_accounts is None or not isinstance(raw, dict):
            return
        metadata = raw.get("metadata")
        if not isinstance(metadata, dict):
            return
        uuid = metadata.get("root_account_uuid")
        if isinstance(uuid, int) and not isinstance(uuid, bool):
            uuid = str(uuid)  # as validation reads it
        if isinstance(uuid, str) and uuid not in self.root_accounts:
            raise NotAllowed("metadata.root_account_uuid", _ROOT_ACCOUNT_REASON,
                             {"root_account_uuid": _loggable_id(uuid)})

    def check(self, event: SisBatchEvent, now: float) -> str:
        """ADMIT or TOO_OLD; raises NotAllowed (not ours) or InvalidEvent (from the future)."""
        names = {"root_account_uuid": event.root_account_uuid, "hostname": event.metadata.hostname,
                 "sis_batch_id": event.sis_batch_id}
        if self.root_accounts is not None and event.root_account_uuid not in self.root_accounts:
            raise NotAllowed("metadata.root_account_uuid", _ROOT_ACCOUNT_REASON, names)
        hostname = event.metadata.hostname
        if self.hostnames is not None and hostname is not None and hostname.lower() not in self.hostnames:
            raise NotAllowed("metadata.hostname", "this Canvas host name is not allowed here", names)
        moment = event_epoch(event.event_time)
        if moment > now + FUTURE_TOLERANCE_SECONDS:
            raise InvalidEvent([FieldError("metadata.event_time", "is more than 1 hour in the future")])
        if moment < now - self.retention_seconds:
            return Verdict.TOO_OLD
        return Verdict.ADMIT
