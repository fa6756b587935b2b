"""One reconcile pass: read Canvas's SIS Import API, compare with the table, write what differs.

Per Canvas instance: the root account (`accounts/self`, cached), its marker item, one query of the
open-batches index, the listing of the imports created in the lookback window, one fetch by id per open
batch older than the window; then one write per difference through the core (reconcile.plan decides),
one per newly stuck batch, and one per end whose figures the notifier owes (read again). Every read
happens before any write, so a pass that fails (Canvas down, 401, throttled past the backoff) changes
nothing; the next pass tries again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from ..adapters.canvas_api import CanvasApi, CanvasError, CanvasNotFound
from ..adapters.observability import count, logger
from ..adapters.store import BatchStore
from ..core.reconcile import CanvasImport, event_time, plan, to_fetch
from ..core.states import WorkflowState
from .school_history import SEED_DAYS, SEED_IMPORTS, SchoolHistory


# The listing starts this long before the last successful pass started: imports Canvas created while that
# pass ran, and any difference between Canvas's clock and ours, are listed again rather than missed.
LIST_OVERLAP_SECONDS = 15 * 60
# Import ends whose figures Canvas did not give when they alerted, asked for again per pass (the rest wait for
# the next pass): each costs the notifier one read of Canvas.
RECHECKS_PER_PASS = 20


class ReconcileError(Exception):
    """A pass for one instance could not be done; `str(exc)` is safe to log (no token)."""


@dataclass
class Instance:
    url: str
    api: CanvasApi
    root_account_uuid: str | None = None  # from accounts/self, cached for the container's life
    account_id: str | None = None
    reconciled_before: bool = False
    previous_answers: dict[str, WorkflowState] | None = None  # the last successful pass's, by id
    listed_through: float | None = None  # when the last successful pass started: the next lists from there

    @property
    def hostname(self) -> str | None:
        return urlsplit(self.url).hostname


@dataclass
class InstanceSummary:
    url: str
    root_account_uuid: str | None = None
    ok: bool = True
    error: str | None = None
    first_pass: bool = False
    seen: int = 0
    open: int = 0  # batches open in our table at the pass's start (the ImportsOpen gauge)
    corrected: int = 0
    missed: int = 0
    stuck: int = 0
    queued: int = 0  # `created` imports waiting behind a running import of the root account: not stuck
    requests: int = 0
    throttled: int = 0
    baseline_ends: int = 0  # successful ends added to the school's baselines (usecases/school_history.py)
    rhythm_writes: int = 0
    gaps: int = 0  # missing-import gaps found
    figures_rechecked: int = 0  # ends whose figures the notifier is asked to read again (usecases/unusual_ends.py)
    listed_from: str | None = None  # the listing's created_since: the last pass's start less an overlap
    changes: list[dict[str, Any]] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        store: BatchStore,
        instances: list[Instance],
        *,
        allowed_root_accounts: frozenset[str] | None,
        lookback_hours: int,
        stuck_minutes: dict[WorkflowState, int],
        clock: Callable[[], float] = time.time,
        history: SchoolHistory | None = None,
    ):
        self._store = store
        self.instances = instances
        self._allowed = allowed_root_accounts
        self._lookback_seconds = lookback_hours * 3600
        self._stuck_minutes = stuck_minutes
        self._clock = clock
        self._history = history

    def run(self, only: str | None = None) -> dict[str, Any]:
        """A pass over every instance, or over the one whose base URL is `only` (the schedule's fan-out:
        one invocation per instance). An `only` no instance has is refused and counted, never guessed."""
        summaries = []
        chosen = [i for i in self.instances if only is None or i.url.rstrip("/") == only.rstrip("/")]
        if only is not None and not chosen:
            count("ReconcileFailures")
            logger.error("reconcile pass asked for an instance that is not in CANVAS_INSTANCES",
                         extra={"canvas": only[:300]})
            return {"instances": [vars(InstanceSummary(only[:300], ok=False,
                                                       error="not one of CANVAS_INSTANCES"))]}
        for instance in chosen:
            summary = InstanceSummary(instance.url)
            instance.api.reset_counters()
            try:
                self._reconcile(instance, summary)
            except (CanvasError, ReconcileError, ValueError, KeyError) as exc:
                summary.ok, summary.error = False, f"{type(exc).__name__}: {exc}"
                count("ReconcileFailures")
                logger.error("reconcile pass failed; nothing was changed, the next pass tries again",
                             extra={"canvas": instance.url, "reason": summary.error})
            counters = instance.api.counters()
            summary.requests, summary.throttled = int(counters["requests"]), int(counters["throttled"])
            count("CanvasRequests", summary.requests)
            count("CanvasThrottled", summary.throttled)
            summaries.append(summary)
        return {"instances": [vars(s) for s in summaries]}

    def _listing(self, instance: Instance, since: datetime, window_start: float,
                 limit: int | None = None) -> list[tuple[CanvasImport, dict[str, Any]]]:
        """The imports created after `since`, each timed by the request that brought its page: asked when
        that request went out (after any throttling wait), read when its answer came. Beyond
        `window_start`, at most `limit` (newest first)."""
        answers: list[tuple[CanvasImport, dict[str, Any]]] = []
        pages = instance.api.sis_imports_created_since("self", since)
        asked_at = read_at = self._clock()
        beyond = 0
        while True:
            before, requests = self._clock(), instance.api.requests
            try:
                raw = next(pages)
            except StopIteration:
                return answers
            if instance.api.requests != requests:  # this item's page was fetched now
                asked_at, read_at = before, self._clock()
            answer = CanvasImport.of(raw, read_at, asked_at)
            if answer.created_at is not None and answer.created_at <= window_start:
                beyond += 1
                if limit is not None and beyond > limit:
                    return answers
            answers.append((answer, raw))

    def _reconcile(self, instance: Instance, summary: InstanceSummary) -> None:
        if instance.root_account_uuid is None:
            account = instance.api.account_self()
            instance.root_account_uuid, instance.account_id = str(account["uuid"]), str(account["id"])
        uuid = instance.root_account_uuid
        summary.root_account_uuid = uuid
        if self._allowed is not None and uuid not in self._allowed:
            raise ReconcileError(f"its root account {uuid} is not in SIS_ROOT_ACCOUNTS (root_account_uuids)")
        # Every pass: the figures the notifier could not read are owed there; and after a cold start, the mark.
        marker = self._store.pass_marker(uuid)
        if not instance.reconciled_before or instance.listed_through is None:  # a cold container
            instance.reconciled_before = marker is not None
            instance.listed_through = (marker or {}).get("listed_through")
        summary.first_pass = not instance.reconciled_before

        started = self._clock()
        rhythm = self._history.rhythm(uuid) if self._history else None
        seed = self._history is not None and rhythm is None  # the school's history starts: list further back
        open_batches = self._store.open_batches(uuid)
        summary.open = len(open_batches)
        count("ImportsOpen", summary.open)  # a gauge: the dashboard shows its maximum
        window_start = started - self._lookback_seconds
        listed_from = window_start
        if instance.listed_through is not None and not seed:  # what was created since the last pass, and a margin
            listed_from = max(window_start, instance.listed_through - LIST_OVERLAP_SECONDS)
        summary.listed_from = event_time(listed_from)
        since = datetime.fromtimestamp(listed_from - (SEED_DAYS * 86400 if seed else 0), timezone.utc)
        listed = self._listing(instance, since, window_start, SEED_IMPORTS if seed else None)
        answers = [a for a, _ in listed if a.created_at is None or a.created_at > window_start]
        for sis_batch_id in to_fetch(open_batches, answers):
            asked_at = self._clock()
            try:
                raw = instance.api.sis_import("self", sis_batch_id)
                answers.append(CanvasImport.of(raw, self._clock(), asked_at))
                listed.append((answers[-1], raw))
            except CanvasNotFound:
                logger.warning("an open batch is unknown to Canvas (deleted, or another instance's)",
                               extra={"canvas": instance.url, "sis_batch_id": sis_batch_id})
        summary.seen = len(answers)
        count("ImportsSeen", summary.seen)

        previous = instance.previous_answers
        if previous is None:  # a cold container: what our table holds, read before any write is tried
            open_ids = {b.sis_batch_id for b in open_batches}
            ended = [a.sis_batch_id for a in answers if a.terminal and a.sis_batch_id not in open_ids]
            previous = self._store.known_states(uuid, ended) if ended else {}
        owed = plan(answers, open_batches, previous=previous, now=self._clock(), stuck_minutes=self._stuck_minutes)
        for answer in owed.writes:
            event = answer.as_event(uuid, instance.account_id or "self", instance.hostname)
            result = self._store.reconcile(event, asked_at=answer.asked_time,
                                           baseline=summary.first_pass and answer.terminal)
            if result is None:
                continue
            summary.corrected += 1
            summary.missed += result.created
            previous = result.previous_state.value if result.previous_state else None
            summary.changes.append({"sis_batch_id": answer.sis_batch_id, "from": previous,
                                    "to": answer.workflow_state.value})
            logger.info("state corrected from Canvas's SIS Import API",
                        extra={"canvas": instance.url, "sis_batch_id": answer.sis_batch_id, "from": previous,
                               "to": answer.workflow_state.value, "baseline": summary.first_pass})
        summary.queued = len(owed.queued)
        for sis_batch_id, state in owed.stuck:
            if self._store.mark_stuck(uuid, sis_batch_id, state.value):
                summary.stuck += 1
                logger.warning("import stuck", extra={"canvas": instance.url, "sis_batch_id": sis_batch_id,
                                                      "workflow_state": state.value})
        count("StatesCorrected", summary.corrected)
        count("EventsMissed", summary.missed)
        count("ImportsStuck", summary.stuck)
        if self._history is not None:
            written = self._history.record(uuid, instance.hostname, listed, rhythm, self._clock(),
                                           previous=instance.previous_answers)
            summary.baseline_ends, summary.rhythm_writes, summary.gaps = (
                written["baseline_ends"], written["rhythm_writes"], written["gaps"])
        owed_figures = list((marker or {}).get("figures_owed") or ())[:RECHECKS_PER_PASS]
        if owed_figures:
            # Off the marker first: an end the notifier owes again after this recheck stays owed.
            self._store.take_owed_figures(uuid, owed_figures)
            summary.figures_rechecked = sum(self._store.recheck_figures(uuid, i) for i in owed_figures)
        if summary.first_pass:
            self._store.mark_reconciled(uuid, event_time(started))
            instance.reconciled_before = True
        self._store.mark_listed(uuid, started)
        instance.listed_through = started
        instance.previous_answers = {a.sis_batch_id: a.workflow_state for a in answers}
