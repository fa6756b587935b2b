"""Unusual ends: an import's figures against the school's own recent imports of the same shape.

Pure: no AWS, no HTTP. Canvas reports the facts at the end (data.counts, data.statistics, started_at,
ended_at); `figures_of` reads the few that tell damage from routine. A root account's successful ends
of one *shape* (import type, batch mode, the kinds of objects supplied) make its baseline: the last
`KEEP` of them, robust statistics over them (median and MAD), so one outlier never moves it.

The rule, per figure, once `min_history` earlier successful ends of the shape have it:
- `tolerance = max(sensitivity x 1.4826 x MAD, median, floor)`: wider than the spread, never tighter
  than the median itself (twice the usual) nor than the figure's floor (a handful of deletions is
  noise);
- unusual when the figure is above `median + tolerance`;
- for `changes`, also when it is 0 while at least 9 in 10 earlier ends changed something (an export
  sent twice changes nothing);
- the usual range said in the sentence is the range of the history within `median +/- tolerance`;
- Canvas counts deletions among the state changes: `changes` is not said to be unusual when the unusual
  deletions of the same end account for what is beyond its usual level (one damage, one sentence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .moments import epoch_seconds

KEEP = 30  # successful ends kept per shape: a month of nightly imports, a day and a bit of hourly ones
MIN_HISTORY = 10  # earlier ends of the shape a claim needs
SENSITIVITY = 5.0  # in robust standard deviations; 0 turns the check off
MAD_SCALE = 1.4826  # MAD -> standard deviation for normally distributed figures


def median(values: "Iterable[float]") -> float:
    """statistics.median, without its import (fractions, random: a tenth of a cold start's budget)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class Figure:
    what: str  # "{v}" is the figure in words
    floor: int
    unit: str = "count"  # or "seconds"
    unchanged: bool = False  # 0 is unusual when 9 in 10 earlier ends were not 0


FIGURES: dict[str, Figure] = {
    "enrollments_deleted": Figure("deleted {v} enrollments", 50),
    "courses_deleted": Figure("deleted {v} courses", 10),
    "sections_deleted": Figure("deleted {v} sections", 10),
    "users_deleted": Figure("deleted {v} logins", 25),
    "changes": Figure("changed {v} objects", 50, unchanged=True),
    "duration_seconds": Figure("took {v}", 300, unit="seconds"),
    "error_count": Figure("reported {v} errors", 25),
    "warning_count": Figure("reported {v} warnings", 25),
}
# Deletions: Canvas's batch-mode counts (present only when non-zero) and newer Canvas's statistics.
_DELETIONS = {"enrollments_deleted": ("batch_enrollments_deleted", "Enrollment"),
              "courses_deleted": ("batch_courses_deleted", "Course"),
              "sections_deleted": ("batch_sections_deleted", "CourseSection"),
              "users_deleted": (None, "Pseudonym")}
_NOT_OBJECTS = re.compile(r"^(error_count|warning_count|batch_.*)$")
_WORD = re.compile(r"[^A-Za-z0-9_]")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _data(sis_import: Mapping[str, Any]) -> Mapping[str, Any]:
    data = sis_import.get("data")
    return data if isinstance(data, Mapping) else {}


def figures_of(sis_import: Mapping[str, Any]) -> dict[str, int]:
    """The figures one SisImport answer reports (a figure Canvas does not report is left out)."""
    data = _data(sis_import)
    counts = data.get("counts") if isinstance(data.get("counts"), Mapping) else {}
    statistics = data.get("statistics", sis_import.get("statistics"))
    statistics = statistics if isinstance(statistics, Mapping) else {}
    figures: dict[str, int] = {}
    for name, (batch_key, kind) in _DELETIONS.items():
        per_kind = statistics.get(kind) if isinstance(statistics.get(kind), Mapping) else {}
        found = [v for v in (_count(counts.get(batch_key)) if batch_key else None, _count(per_kind.get("deleted")))
                 if v is not None]
        if found or (counts and batch_key):  # batch-mode counts leave out a zero: counts without it mean 0
            figures[name] = max(found, default=0)
    total = _count(statistics.get("total_state_changes"))
    if total is None and counts:
        total = sum(v for k, v in counts.items() if not _NOT_OBJECTS.match(str(k)) and _count(v) is not None)
    if total is not None:
        figures["changes"] = total
    for name in ("error_count", "warning_count"):
        if _count(counts.get(name)) is not None:
            figures[name] = counts[name]
    started, ended = epoch_seconds(sis_import.get("started_at")), epoch_seconds(sis_import.get("ended_at"))
    if started is not None and ended is not None and ended >= started:
        figures["duration_seconds"] = int(round(ended - started))
    return figures


def shape_of(sis_import: Mapping[str, Any]) -> str:
    """What makes imports comparable: import type, batch mode, the kinds of objects supplied."""
    data = _data(sis_import)
    kind = _WORD.sub("", str(data.get("import_type") or "instructure_csv"))[:40] or "unknown"
    batch = sis_import.get("batch_mode") is True or sis_import.get("multi_term_batch_mode") is True
    supplied = data.get("supplied_batches") if isinstance(data.get("supplied_batches"), list) else []
    kinds = sorted({_WORD.sub("", str(s))[:30] for s in supplied} - {""})[:20]
    return f"{kind}.{'batch' if batch else 'plain'}.{'+'.join(kinds) or 'none'}"


def shape_words(shape: str) -> str:
    kind, mode, supplied = (shape.split(".") + ["", ""])[:3]
    what = "batch-mode " if mode == "batch" else ""
    return f"{what}{kind} imports of {supplied.replace('+', ', ') or 'nothing'}"


@dataclass(frozen=True)
class End:
    """One successful end in a baseline."""

    sis_batch_id: str
    ended_at: int  # epoch seconds
    figures: Mapping[str, int]


@dataclass(frozen=True)
class Baseline:
    """A root account's last `KEEP` successful ends of one shape, oldest first."""

    root_account_uuid: str
    shape: str
    ends: tuple[End, ...] = ()
    version: int = 0

    def with_ends(self, new: Iterable[End], keep: int = KEEP) -> Baseline:
        """Idempotent: an end already kept (by id) is not added again; the newest `keep` stay."""
        merged = {e.sis_batch_id: e for e in self.ends}
        for end in new:
            merged.setdefault(end.sis_batch_id, end)
        kept = sorted(merged.values(), key=lambda e: (e.ended_at, e.sis_batch_id))
        return Baseline(self.root_account_uuid, self.shape, tuple(kept[-keep:]), self.version)

    def history_for(self, sis_batch_id: str, ended_at: float | None) -> list[End]:
        """What an end is compared with: the other ends kept, those before it when its time is known."""
        return [e for e in self.ends if e.sis_batch_id != sis_batch_id and (ended_at is None or e.ended_at <= ended_at)]


@dataclass(frozen=True)
class Anomaly:
    figure: str
    value: int
    usual_low: int
    usual_high: int
    history: int  # how many earlier ends the usual range is drawn from
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "value": self.value, "usual_low": self.usual_low,
                "usual_high": self.usual_high, "history": self.history, "sentence": self.sentence}


@dataclass(frozen=True)
class Check:
    anomalies: tuple[Anomaly, ...]
    history: int
    not_checked: str | None = None  # why no claim is made (too little history, turned off, no figures)


def duration_words(seconds: float) -> str:
    """`1 h 10 min`, `4 min 5 s`, `10 min` (not `10 min 0 s`), `0 s`: what an alert's reader sees."""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes) + \
        [f"{secs} s"] * (not hours and (bool(secs) or not minutes))
    return " ".join(parts) or "0 s"


def words(figure: str, value: float) -> str:
    return duration_words(value) if FIGURES[figure].unit == "seconds" else f"{int(value):,}"


def _usual(values: list[int], sensitivity: float, floor: int) -> tuple[float, float, list[int]]:
    middle = median(values)
    spread = MAD_SCALE * median(abs(v - middle) for v in values)
    tolerance = max(sensitivity * spread, middle, floor)
    return middle, tolerance, [v for v in values if abs(v - middle) <= tolerance]


def check(figures: Mapping[str, int], history: list[End], *, sensitivity: float = SENSITIVITY,
          min_history: int = MIN_HISTORY) -> Check:
    """The figures of one end against the earlier successful ends of its shape."""
    if sensitivity <= 0:
        return Check((), len(history), "the unusual-import check is turned off (anomaly_sensitivity=0)")
    if not figures:
        return Check((), len(history), "Canvas reported no figures for this import")
    if len(history) < min_history:
        return Check((), len(history), f"too little history: {len(history)} earlier successful imports of "
                                       f"this kind, {min_history} needed")
    found = []
    for name, spec in FIGURES.items():
        value = figures.get(name)
        values = [e.figures[name] for e in history if name in e.figures]
        if value is None or len(values) < min_history:
            continue
        middle, tolerance, usual = _usual(values, sensitivity, spec.floor)
        low, high = min(usual), max(usual)
        deleted = sum(a.value for a in found if a.figure in _DELETIONS)
        if value > middle + tolerance and not (name == "changes" and value - deleted <= middle + tolerance):
            what = spec.what.format(v=words(name, value))
        elif spec.unchanged and value == 0 and 10 * values.count(0) <= len(values):
            what = "changed nothing"  # while at least 9 in 10 usual ends changed something
            low = min((v for v in usual if v > 0), default=low)
        else:
            continue
        span = words(name, low) if low == high else f"{words(name, low)}–{words(name, high)}"
        found.append(Anomaly(name, value, low, high, len(values),
                             f"{what}; usually {span} over the last {len(values)} imports"))
    return Check(tuple(found), len(history))


# -- the baseline item (plain values; the store converts them) ------------------------------------
#
# The whole item is written at each successful end, and DynamoDB bills a write unit per KB of attribute names
# and values: the ends are one binary value, packed column by column so that 30 ends stay under 1 KB. Each
# column is frame-of-reference bit-packed: its least value, then every value less that one in as few bits as
# the largest needs. Ids and end times, which grow from end to end, are packed as their first value and the
# differences. Items written as text lines (`ends` a list of `id epoch v1 v2 ...`, with `figures` naming their
# order) are still read; an end the packing cannot hold (an id that is not a plain decimal, a figure it does
# not know) is written so too, losing nothing.

PACKED_FORMAT = 1  # the first byte of packed `ends`
# Format 1's figure order, fixed for good: a figure added to FIGURES needs a format 2 (until then its ends
# are written as text lines, which name their figures).
PACKED_FIGURES = ("enrollments_deleted", "courses_deleted", "sections_deleted", "users_deleted", "changes",
                  "duration_seconds", "error_count", "warning_count")
# Attributes of the item's earlier format: removed when the item is written again.
BASELINE_FORMER_ATTRIBUTES = ("kind", "shape", "figures")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _varint(n: int) -> bytes:
    """LEB128: 7 bits a byte, low bits first (a timestamp 5 bytes, a count under 16,384 2)."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _signed(n: int) -> bytes:
    return _varint(2 * n if n >= 0 else -2 * n - 1)  # zigzag: small negatives stay small


def _column(values: list[int | None]) -> bytes:
    """Least value, then (width << 1 | absent), then each value less the least in `width` bits, little-endian.
    With `absent`, 0 stands for a figure not reported and the others are one more."""
    present = [v for v in values if v is not None]
    low, absent = min(present, default=0), int(len(present) < len(values))
    shifted = [0 if v is None else v - low + absent for v in values]
    width = max(shifted, default=0).bit_length()
    packed = 0
    for v in reversed(shifted):
        packed = packed << width | v
    return _signed(low) + _varint(width << 1 | absent) + packed.to_bytes((width * len(values) + 7) // 8, "little")


def _sequence(values: list[int]) -> bytes:
    return _signed(values[0]) + _column([b - a for a, b in zip(values, values[1:])])


class _Reader:
    def __init__(self, data: bytes):
        self._data, self._at = data, 0

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self._data[self._at]
            self._at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def signed(self) -> int:
        n = self.varint()
        return n >> 1 if n % 2 == 0 else -(n >> 1) - 1

    def column(self, count: int) -> list[int | None]:
        low, head = self.signed(), self.varint()
        width, absent = head >> 1, head & 1
        size = (width * count + 7) // 8
        if self._at + size > len(self._data):
            raise IndexError("column beyond the end")
        packed = int.from_bytes(self._data[self._at:self._at + size], "little")
        self._at += size
        mask = (1 << width) - 1
        shifted = [packed >> (i * width) & mask for i in range(count)]
        return [None if absent and v == 0 else v + low - absent for v in shifted]

    def sequence(self, count: int) -> list[int]:
        if not count:
            return []
        values = [self.signed()]
        for delta in self.column(count - 1):
            values.append(values[-1] + (delta or 0))
        return values

    def done(self) -> bool:
        return self._at == len(self._data)


def pack_ends(ends: "tuple[End, ...] | list[End]") -> bytes | None:
    """The ends as format 1, or None when one cannot be packed without loss (an id that is not a plain decimal, a
    figure format 1 does not know, a value that is not a whole number)."""
    if any(not _DECIMAL.fullmatch(e.sis_batch_id) or set(e.figures) - set(PACKED_FIGURES)
           or not all(type(v) is int for v in (e.ended_at, *e.figures.values())) for e in ends):
        return None
    columns = [_sequence([int(e.sis_batch_id) for e in ends]) if ends else b"",
               _sequence([e.ended_at for e in ends]) if ends else b""]
    columns += [_column([e.figures.get(n) for e in ends]) for n in PACKED_FIGURES] if ends else []
    return bytes([PACKED_FORMAT]) + _varint(len(ends)) + b"".join(columns)


def unpack_ends(data: bytes) -> tuple[End, ...]:
    if not data or data[0] != PACKED_FORMAT:
        raise ValueError(f"the baseline item's ends are in an unknown format ({data[:1].hex() or 'empty'}): "
                         f"this code reads format {PACKED_FORMAT} and text lines")
    reader = _Reader(data[1:])
    try:
        count = reader.varint()
        ids, times = reader.sequence(count), reader.sequence(count)
        figures = [reader.column(count) if count else [] for _ in PACKED_FIGURES]
    except IndexError:
        raise ValueError(f"the baseline item's ends are cut short ({len(data)} bytes)") from None
    if not reader.done():
        raise ValueError(f"the baseline item's ends have bytes left over after {count} ends")
    return tuple(End(str(ids[i]), times[i], {n: column[i] for n, column in zip(PACKED_FIGURES, figures)
                                             if column[i] is not None}) for i in range(count))


def end_line(end: End) -> str:
    """One end as a short string: `id epoch v1 v2 ...` in FIGURES order, `-` where not reported."""
    values = " ".join(str(end.figures[n]) if n in end.figures else "-" for n in FIGURES)
    return f"{end.sis_batch_id} {end.ended_at} {values}"


def end_from_line(line: str, names: list[str]) -> End:
    parts = line.split(" ")
    figures = {n: int(v) for n, v in zip(names, parts[2:]) if v != "-"}
    return End(parts[0], int(parts[1]), figures)


def baseline_item(baseline: Baseline) -> dict[str, Any]:
    """The shape is the item's key (the store's), so the item holds only the ends and its version."""
    packed = pack_ends(baseline.ends)
    if packed is not None:
        return {"ends": packed, "version": baseline.version + 1}
    return {"figures": list(FIGURES), "ends": [end_line(e) for e in baseline.ends], "version": baseline.version + 1}


def baseline_from_item(root_account_uuid: str, shape: str, item: Mapping[str, Any] | None) -> Baseline:
    """Either format: `ends` as bytes (packed; DynamoDB's Binary reads as bytes) or as text lines."""
    if not item:
        return Baseline(root_account_uuid, shape)
    stored = item.get("ends", ())
    if isinstance(stored, (list, tuple)):
        names = [str(n) for n in item.get("figures") or list(FIGURES)]
        ends = tuple(end_from_line(str(line), names) for line in stored)
    else:
        ends = unpack_ends(bytes(stored))
    return Baseline(root_account_uuid, shape, ends, int(item.get("version") or 0))


def annotate(alert: Any, result: Check) -> Any:
    """An end alert with the check's verdict: `anomalies` (each with its sentence), `unusual`, and why no
    claim was made (`anomaly_check`); an unusual end says so in its subject and in the `unusual` attribute
    a subscriber's filter policy can match."""
    from .alerts import SUBJECT_LIMIT, Alert

    message = {**alert.message, "unusual": bool(result.anomalies),
               "anomalies": [a.to_dict() for a in result.anomalies]}
    if result.not_checked:
        message["anomaly_check"] = result.not_checked
    if not result.anomalies:
        return Alert(alert.subject, message, alert.attributes)
    subject = alert.subject[:SUBJECT_LIMIT - len(" (unusual)")] + " (unusual)"
    return Alert(subject, message, {**alert.attributes, "unusual": "true"})
