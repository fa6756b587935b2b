"""What `make status` prints: the health verdict's parts and the batches' table (ops/status.py reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LastPass:
    """The reconciler's last pass: when, whether every Canvas instance was read, and why not."""

    at: str | None  # ISO-8601 UTC; None: no pass found
    ok: bool
    why: str | None = None  # the failures, one per instance; or why no pass was found

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "ok": self.ok, "why": self.why}


@dataclass
class Health:
    dead_letters: dict[str, int] = field(default_factory=dict)  # queue name -> messages waiting
    alarms: list[tuple[str, str]] | None = None  # (name, description) in ALARM; None: no alarms here (local)
    reconciler: LastPass | None = None  # None: no reconciler (a stack without canvas_instances)

    @property
    def healthy(self) -> bool:
        return (not any(self.dead_letters.values()) and not self.alarms
                and (self.reconciler is None or self.reconciler.ok))

    def to_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "dead_letters": self.dead_letters, "alarms": self.alarms,
                "reconciler": self.reconciler.to_json() if self.reconciler else None}


@dataclass
class Page:
    batches: list[dict[str, Any]]
    cursor: str | None  # --next for the page after (one root account asked)
    more: bool  # more batches match than these
    rhythms: dict[str, Any] = field(default_factory=dict)  # root account -> the list route's `rhythm` (or None)


# Newest first event first, as the list route answers (its order does not move while an import runs).
COLUMNS = (("first event", "first_event_at"), ("root account", "root_account_uuid"), ("batch", "sis_batch_id"),
           ("state", "workflow_state"), ("outcome", "outcome"), ("unusual", "unusual"),
           ("last activity", "last_event_at"), ("host", "hostname"))


def cell(batch: dict[str, Any], key: str) -> str:
    if key == "outcome" and batch.get("stuck"):
        return "stuck"  # an open import the reconciler found stuck in its state: no end's outcome yet
    if key == "unusual":  # the figures its end was unusual in
        return ",".join(str(f) for f in batch.get("unusual") or ()) or "-"
    return str(batch.get(key) or "-")


def table(batches: list[dict[str, Any]]) -> str:
    rows = [[cell(b, key) for _, key in COLUMNS] for b in batches]
    widths = [max([len(title), *(len(row[i]) for row in rows)]) for i, (title, _) in enumerate(COLUMNS)]
    lines = ["  ".join(title.ljust(w) for (title, _), w in zip(COLUMNS, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def describe_pass(last: LastPass | None) -> str:
    if last is None:
        return "reconciler: none in this stack (no canvas_instances)"
    if last.at is None:
        return f"reconciler: {'no pass yet' if last.ok else 'FAILING'}: {last.why}"
    if last.ok:
        return f"reconciler: last pass {last.at}: ok"
    return f"reconciler: last pass {last.at}: FAILED: {last.why}"


def describe_health(health: Health, where: str) -> str:
    queues = ", ".join(f"{name} {depth}" for name, depth in health.dead_letters.items()) or "none found"
    if health.healthy:
        alarms = "none in ALARM" if health.alarms is not None else "none locally (CloudWatch alarms are deployed only)"
        return (f"pipeline: healthy ({where}; dead letters: {queues}; alarms: {alarms})\n"
                + describe_pass(health.reconciler))
    lines = [f"pipeline: UNHEALTHY ({where})"]
    for name, depth in health.dead_letters.items():
        if depth:
            lines.append(f"  dead letters: {name} holds {depth} message(s): docs/runbook.md, then make redrive")
    for name, description in health.alarms or []:
        lines.append(f"  alarm in ALARM: {name}: {description}")
    lines.append("  " + describe_pass(health.reconciler)
                 + ("" if health.reconciler is None or health.reconciler.ok
                    else ': docs/runbook.md, "Reconcile passes failing"'))
    return "\n".join(lines)


def _when(iso: str | None) -> str:
    """`2026-12-02T02:00:00Z` -> `2026-12-02 02:00 UTC`."""
    return f"{iso[:10]} {iso[11:16]} UTC" if isinstance(iso, str) and len(iso) >= 16 else "unknown"


def _every(seconds: Any) -> str:
    """An interval as people say it: `~45 min`, `~1 h`, `~1.5 h`, `~7 d`."""
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"~{round(seconds / size, 1):g} {unit}"
    return f"~{max(1, round(seconds / 60))} min"


def describe_rhythm(uuid: str, rhythm: dict[str, Any] | None) -> str:
    """One root account's rhythm in one line, as the list route answers it (its `rhythm` object)."""
    if not rhythm:
        return f"rhythm of {uuid}: none yet (the reconciler keeps it, from its first pass over this root account)"
    parts = []
    if rhythm.get("usual_interval_seconds"):
        parts.append(f"imports every {_every(rhythm['usual_interval_seconds'])} ({rhythm.get('source')})")
    else:
        parts.append(str(rhythm.get("source")))
    if rhythm.get("last_import_at"):
        parts.append(f"last {_when(rhythm['last_import_at'])}")
    if rhythm.get("expected_by"):
        parts.append(f"next expected by {_when(rhythm['expected_by'])}")
    if rhythm.get("missing"):
        parts.append(f"MISSING since {_when(rhythm.get('last_import_at'))} (found {_when(rhythm.get('detected_at'))})")
    elif rhythm.get("alert_after") and rhythm.get("alerts"):
        parts.append(f"missing if none by {_when(rhythm['alert_after'])}")
    if not rhythm.get("alerts"):
        parts.append("missing-import alerts off")
    return f"rhythm of {uuid}: " + "; ".join(parts)


def describe_rhythms(rhythms: dict[str, Any]) -> str:
    return "\n".join(describe_rhythm(uuid, rhythm) for uuid, rhythm in sorted(rhythms.items()))
