"""Missing imports: a root account that imports on a rhythm and has created no import for too long.

Pure: no AWS, no HTTP. The reconciler feeds a root account's creation times from Canvas's listing (the
truth: a Live Event can be lost) and asks `step` what is owed; the stream of the rhythm item carries
the rest (`missing_owed`, `resumed_owed`), so each gap is alerted once, and its end once.

The rule: creations less than `ROUND_SECONDS` apart are one *round* (an SIS that uploads five files a
night imports once a night). The usual interval is learnt from the rounds of the last `KEEP` creations, once
`min_history` intervals are known, or given (`expected_import_every`). A gap is owed when nothing has
been created for longer than the longest usual interval (leaving out the longest one in twenty
of them: a past outage does not widen it) plus a quarter of it, and at least 30 minutes more. So a school
that skips nights or weekends is told only of a gap longer than those; one that imports by hand,
only of a silence longer than any it had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .alerts import Alert, _printable
from .unusual import median

ROUND_SECONDS = 15 * 60
KEEP = 120  # creations kept: 120 hourly rounds, or 24 nights of five files
MIN_HISTORY = 10
GRACE_FRACTION = 0.25
GRACE_MIN_SECONDS = 30 * 60



@dataclass(frozen=True)
class Expectation:
    usual_seconds: int  # the median interval, or the one given
    alert_after_seconds: int  # a gap longer than this after the last import is owed
    source: str  # in words: learnt from how many, or given


@dataclass(frozen=True)
class Rhythm:
    root_account_uuid: str
    created: tuple[tuple[str, int], ...] = ()  # (sis_batch_id, created_at epoch), oldest first
    gap: Mapping[str, Any] | None = None  # owed a `missing` alert: the gap after `last_import_at`
    resumed: Mapping[str, Any] | None = None  # owed a `resumed` alert: the gap that ended
    hostname: str | None = None
    version: int = field(default=0, compare=False)

    @property
    def last_import_at(self) -> int | None:
        return self.created[-1][1] if self.created else None

    def rounds(self) -> list[int]:
        return _round_starts(list(self.created))

    def with_creations(self, creations: Iterable[tuple[str, int]]) -> Rhythm:
        """Idempotent by id; the newest rounds are kept."""
        known = dict(self.created)
        for sis_batch_id, at in creations:
            known.setdefault(sis_batch_id, at)
        # The newest KEEP creations, not rounds: rounds depend on where the list starts, and the same
        # creations seen again must keep the same list (a pass that learns nothing writes nothing).
        ordered = sorted(known.items(), key=lambda c: (c[1], c[0]))
        return replace(self, created=tuple(ordered[-KEEP:]))

    def expectation(self, expected_every: int | None = None, min_history: int = MIN_HISTORY) -> Expectation | None:
        if expected_every:
            return Expectation(expected_every, _allowed(expected_every), "expected_import_every")
        starts = self.rounds()
        intervals = sorted(b - a for a, b in zip(starts, starts[1:]))
        if len(intervals) < min_history:
            return None
        usual = int(median(intervals))
        longest = intervals[len(intervals) - 1 - len(intervals) // 20]  # one in twenty may be an outage
        return Expectation(usual, _allowed(longest), f"learnt from the last {len(intervals) + 1} imports")


def _round_starts(ordered: list[tuple[str, int]]) -> list[int]:
    starts: list[int] = []
    for _, at in ordered:
        if not starts or at - starts[-1] >= ROUND_SECONDS:
            starts.append(at)
    return starts


def _allowed(longest: int) -> int:
    return int(longest + max(GRACE_FRACTION * longest, GRACE_MIN_SECONDS))


def step(rhythm: Rhythm, creations: Iterable[tuple[str, int]], now: float, *, expected_every: int | None = None,
         min_history: int = MIN_HISTORY, enabled: bool = True) -> Rhythm:
    """The rhythm after a pass saw `creations` at `now`: a gap that ended is `resumed`, a new gap is owed."""
    out = rhythm.with_creations(creations)
    last = out.last_import_at
    if out.gap is not None and last is not None and last > int(out.gap["last_import_at"]):
        first = next(c for c in out.created if c[1] > int(out.gap["last_import_at"]))
        out = replace(out, gap=None, resumed={**out.gap, "resumed_at": first[1], "sis_batch_id": first[0]})
    if not enabled or last is None:
        return out
    expected = out.expectation(expected_every, min_history)
    if expected is None or now - last <= expected.alert_after_seconds:
        return out
    if out.gap is not None and int(out.gap["last_import_at"]) == last:
        return out  # this gap is owed already
    return replace(out, gap={"last_import_at": last, "expected_by": last + expected.usual_seconds,
                             "alert_after": last + expected.alert_after_seconds, "detected_at": int(now),
                             "usual_seconds": expected.usual_seconds, "source": expected.source})


def missing_owed(old: Rhythm | None, new: Rhythm) -> bool:
    return new.gap is not None and (old is None or old.gap is None
                                    or old.gap.get("last_import_at") != new.gap.get("last_import_at"))


def resumed_owed(old: Rhythm | None, new: Rhythm) -> bool:
    if new.resumed is None:
        return False
    key = (new.resumed.get("last_import_at"), new.resumed.get("resumed_at"))
    return old is None or old.resumed is None or (old.resumed.get("last_import_at"),
                                                   old.resumed.get("resumed_at")) != key


# -- alerts ------------------------------------------------------------------------------------

def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, (int, float)):
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    days, hours = divmod(hours, 24)
    minutes = rest // 60
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return " ".join(parts) or "under a minute"


def _where(rhythm: Rhythm) -> str:
    return f"on {rhythm.hostname}" if rhythm.hostname else f"in root account {rhythm.root_account_uuid}"


def _message(rhythm: Rhythm, kind: str, gap: Mapping[str, Any]) -> dict[str, Any]:
    key = f"{rhythm.root_account_uuid}/{kind}/{gap.get('last_import_at')}"
    return {
        "type": "sis_import_missing",
        "alert_id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "root_account_uuid": rhythm.root_account_uuid,
        "hostname": rhythm.hostname,
        "outcome": kind,
        "last_import_at": _iso(gap.get("last_import_at")),
        "expected_by": _iso(gap.get("expected_by")),
        "alert_after": _iso(gap.get("alert_after")),
        "usual_interval_seconds": gap.get("usual_seconds"),
        "rhythm": gap.get("source"),
        "detected_by": "sis_import_api",
    }


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: str(message[name]) for name in ("type", "outcome", "root_account_uuid", "alert_id")
            if message.get(name)}


def missing_alert(rhythm: Rhythm) -> Alert:
    gap = rhythm.gap or {}
    message = _message(rhythm, "missing", gap)
    usual = _span(float(gap.get("usual_seconds") or 0))
    message["detected_at"] = _iso(gap.get("detected_at"))
    message["summary"] = (f"No SIS import has been created {_where(rhythm)} since {_when(gap.get('last_import_at'))}; "
                          f"one usually comes every {usual} ({gap.get('source')}), so the next was expected by "
                          f"{_when(gap.get('expected_by'))}. Check the SIS export and its upload job.")
    subject = f"No SIS import {_where(rhythm)} since {_when(gap.get('last_import_at'))} (usually every {usual})"
    return Alert(_printable(subject), message, _attributes(message))


def resumed_alert(rhythm: Rhythm) -> Alert:
    gap = rhythm.resumed or {}
    message = _message(rhythm, "resumed", gap)
    resumed_at, last = gap.get("resumed_at"), gap.get("last_import_at")
    message.update(resumed_at=_iso(resumed_at), sis_batch_id=gap.get("sis_batch_id"),
                   gap_seconds=int(resumed_at - last) if isinstance(resumed_at, int) and isinstance(last, int)
                   else None)
    message["summary"] = (f"SIS imports resumed {_where(rhythm)}: import {gap.get('sis_batch_id')} was created at "
                          f"{_when(resumed_at)}, {_span(message['gap_seconds'] or 0)} after the one before it.")
    subject = f"SIS imports resumed {_where(rhythm)} after {_span(message['gap_seconds'] or 0)}"
    return Alert(_printable(subject), message, _attributes(message))


def _when(epoch: Any) -> str:
    iso = _iso(epoch)
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "unknown"


# -- the rhythm item (plain values; the store converts them) --------------------------------------

def rhythm_item(rhythm: Rhythm) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "rhythm", "created": [f"{i} {at}" for i, at in rhythm.created],
                            "version": rhythm.version + 1}
    for name in ("gap", "resumed", "hostname"):
        if getattr(rhythm, name) is not None:
            item[name] = dict(getattr(rhythm, name)) if name != "hostname" else rhythm.hostname
    return item


def rhythm_from_item(root_account_uuid: str, item: Mapping[str, Any] | None) -> Rhythm:
    if not item:
        return Rhythm(root_account_uuid)
    created = tuple((str(line).split(" ")[0], int(str(line).split(" ")[1])) for line in item.get("created") or ())

    def plain(value: Any) -> Any:
        return {k: int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (bool, str)) and
                int(v) == v else v for k, v in value.items()} if isinstance(value, Mapping) else None

    return Rhythm(root_account_uuid, created, plain(item.get("gap")), plain(item.get("resumed")),
                  item.get("hostname"), int(item.get("version") or 0))

