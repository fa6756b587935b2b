"""GET /batches/{root_account_uuid}/{sis_batch_id}: the current state of one SIS import.
GET /batches/{root_account_uuid}: the root account's recent imports, newest first (by
their first event, as Canvas lists its imports by creation).

The list takes `state=`, `outcome=` (an end's outcome, or `stuck`: open imports the reconciler found
stuck in their current state), `unusual=` (`true`: the ends the notifier found unusual; `false`: the
others), `since=` (first event at or after: `2026-11-28`,
`2026-11-28T09:00:00Z`, or with an offset), `limit=` (1 to 200, 50 by default) and `next=` (the
cursor a previous page answered). It answers `{"batches": [<batch view without history>, ...],
"next": <cursor or null>, "rhythm": <the root account's rhythm, or null>}`; an unknown or bad parameter
is 400 naming it. The rhythm is what the reconciler keeps of the root account's imports (one GetItem of
its `#rhythm` item): the usual interval, the last import, when the next is expected, when a missing
one alerts, and whether it is missing now.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

from ..adapters.http import HttpRequest, response
from ..adapters.observability import count, logger
from ..core.batch import Batch
from ..core.rhythm import MIN_HISTORY, Rhythm
from ..core.states import Outcome, WorkflowState
from ..core.table import LIST_SORT_KEY, ID_PATTERN, PARTITION_KEY, SORT_KEY

ID = re.compile(ID_PATTERN)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIST_PARAMETERS = ("state", "outcome", "unusual", "since", "limit", "next")
# Canvas's event_time format, which every stored time has (core/events.py checks it; not imported here:
# it would load the event validator into the query function).
EVENT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
SINCE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?")
CURSOR = re.compile(r"[A-Za-z0-9_-]{1,2048}")
# Not an end's outcome: an open import the reconciler marked stuck in the state it is still in.
STUCK = "stuck"


class BadParameter(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def batch_view(batch: Batch) -> dict[str, Any]:
    return {
        "root_account_uuid": batch.root_account_uuid,
        "root_account_id": batch.root_account_id,
        "sis_batch_id": batch.sis_batch_id,
        "account_id": batch.account_id,
        "hostname": batch.hostname,
        "workflow_state": batch.workflow_state.value,
        "terminal": batch.terminal,
        "outcome": batch.outcome,
        "stuck": is_stuck(batch),
        "unusual": list(batch.unusual),  # the figures its end was unusual in (the notifier's check)
        "first_event_at": batch.first_event_at,
        "last_event_at": batch.last_event_at,
        "history": [entry.to_dict() for entry in batch.history],
    }


def is_stuck(batch: Batch) -> bool:
    """Marked stuck by the reconciler in the state it is still in (a later state may be stuck again)."""
    return not batch.terminal and batch.stuck_state == batch.workflow_state.value


def summary_view(batch: Batch) -> dict[str, Any]:
    """The batch view without its history: what the list route answers for each batch."""
    view = batch_view(batch)
    del view["history"]
    return view


def canvas_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_since(text: str) -> str:
    """`since=` in Canvas's event_time format (UTC, milliseconds), rounded up to the millisecond so
    that "at or after" holds; a date alone is its midnight, UTC."""
    if not SINCE.fullmatch(text):
        raise BadParameter("since", "an ISO-8601 date or time with its zone: 2026-11-28, 2026-11-28T09:00:00Z")
    try:
        if "T" not in text:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
        if moment.microsecond % 1000:
            moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    except (ValueError, OverflowError):
        raise BadParameter("since", "not a real date or time") from None
    return canvas_time(moment)


def encode_cursor(key: dict[str, str]) -> str:
    """Opaque to callers: base64url (unpadded) of the index key's JSON."""
    text = json.dumps(key, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(text: str, root_account_uuid: str, since: str | None) -> dict[str, str]:
    """The key a cursor stands for, checked as strictly as any input: it goes to DynamoDB as a start key."""
    if not CURSOR.fullmatch(text):
        raise BadParameter("next", "not a cursor this route answered")
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise BadParameter("next", "not a cursor this route answered") from None
    names = (PARTITION_KEY, SORT_KEY, LIST_SORT_KEY)
    if (not isinstance(key, dict) or set(key) != set(names) or not all(isinstance(key[n], str) for n in names)
            or not ID.fullmatch(key[SORT_KEY]) or not EVENT_TIME.fullmatch(key[LIST_SORT_KEY])
            or encode_cursor(key) != text):
        raise BadParameter("next", "not a cursor this route answered")
    if key[PARTITION_KEY] != root_account_uuid:
        raise BadParameter("next", "a cursor of another root account")
    if since is not None and key[LIST_SORT_KEY] < since:
        raise BadParameter("next", "a cursor from before since=: give the since of the first page")
    return key


def list_arguments(root_account_uuid: str, query: dict[str, str]) -> dict[str, Any]:
    """The store's `recent` arguments from the query string; BadParameter names the first bad one."""
    for name in query:
        if name not in LIST_PARAMETERS:
            raise BadParameter(name[:64], f"not a parameter of this route (it takes {', '.join(LIST_PARAMETERS)})")
    state, outcome, unusual = query.get("state"), query.get("outcome"), query.get("unusual")
    if state is not None and state not in {s.value for s in WorkflowState}:
        raise BadParameter("state", "one of " + ", ".join(s.value for s in WorkflowState))
    if outcome is not None and outcome not in {*(o.value for o in Outcome), STUCK}:
        raise BadParameter("outcome", "one of " + ", ".join([*(o.value for o in Outcome), STUCK]))
    if unusual is not None and unusual not in ("true", "false"):
        raise BadParameter("unusual", "true (the ends found unusual) or false (the others)")
    since = parse_since(query["since"]) if "since" in query else None
    limit = DEFAULT_LIMIT
    if "limit" in query:
        if not re.fullmatch(r"[0-9]{1,4}", query["limit"]) or not 1 <= int(query["limit"]) <= MAX_LIMIT:
            raise BadParameter("limit", f"a whole number from 1 to {MAX_LIMIT}")
        limit = int(query["limit"])
    start = decode_cursor(query["next"], root_account_uuid, since) if "next" in query else None
    return {"state": state, "outcome": outcome, "unusual": None if unusual is None else unusual == "true",
            "since": since, "limit": limit, "start": start}


@dataclass(frozen=True)
class RhythmSettings:
    """What the reconciler measures a root account's rhythm with (the same settings: the view says what
    it will do). Any object with these three attributes will do."""

    missing_imports: bool = True
    expected_every: Mapping[str, int] = field(default_factory=dict)  # per root account; 0: no missing alerts
    min_history: int = MIN_HISTORY


def _utc(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rhythm_view(rhythm: Rhythm | None, settings: Any) -> dict[str, Any] | None:
    """The root account's rhythm as the list route shows it; None before the reconciler's first pass."""
    if rhythm is None:
        return None
    given = settings.expected_every.get(rhythm.root_account_uuid)
    last, gap = rhythm.last_import_at, rhythm.gap
    usual = after = source = None
    if gap is not None:  # what the reconciler measured the open gap against, and alerted
        usual, after, source = gap.get("usual_seconds"), int(gap["alert_after"]) - int(gap["last_import_at"]), \
            gap.get("source")
    else:
        expectation = rhythm.expectation(given or None, settings.min_history)
        if expectation is not None:
            usual, after, source = expectation.usual_seconds, expectation.alert_after_seconds, expectation.source
        else:
            source = (f"not learnt yet: {len(rhythm.rounds())} imports seen, {settings.min_history + 1} needed"
                      if last is not None else "no import seen yet")
    return {
        "usual_interval_seconds": usual,
        "source": source,
        "last_import_at": _utc(last),
        "expected_by": _utc(last + usual) if last is not None and usual else None,
        "alert_after": _utc(last + after) if last is not None and after else None,
        "missing": gap is not None,
        "detected_at": _utc(gap.get("detected_at")) if gap is not None else None,
        "alerts": bool(settings.missing_imports and given != 0),
    }


class QueryApi:
    def __init__(self, store: Any, rhythm_settings: Any = None):
        self._store = store
        self._rhythm = rhythm_settings or RhythmSettings()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        request = HttpRequest.from_event(event)
        if "sis_batch_id" not in request.path_parameters:
            return self.recent(request.path_parameters.get("root_account_uuid") or "", request.query)
        count("BatchQueries")
        params = request.path_parameters
        for name in ("root_account_uuid", "sis_batch_id"):
            if not ID.fullmatch(params.get(name) or ""):
                return response(400, {"error": "invalid path parameter", "field": name})
        try:
            batch = self._store.get(params["root_account_uuid"], params["sis_batch_id"])
        except Exception:
            logger.exception("the batch could not be read")
            return response(503, {"error": "the batch could not be read; retry later"})
        if batch is None:
            return response(404, {"error": "no such SIS batch"})
        return response(200, batch_view(batch))

    def recent(self, root_account_uuid: str, query: dict[str, str]) -> dict[str, Any]:
        count("BatchLists")
        if not ID.fullmatch(root_account_uuid):
            return response(400, {"error": "invalid path parameter", "field": "root_account_uuid"})
        try:
            arguments = list_arguments(root_account_uuid, query)
        except BadParameter as exc:
            return response(400, {"error": "invalid query parameter", "field": exc.field, "reason": exc.reason})
        try:
            if arguments["outcome"] == STUCK:
                batches, after = self.stuck(root_account_uuid, **arguments)
            else:
                batches, after = self._store.recent(root_account_uuid, **arguments)
            rhythm = rhythm_view(self._store.rhythm(root_account_uuid), self._rhythm)
        except Exception:
            logger.exception("the batches could not be listed")
            return response(503, {"error": "the batches could not be listed; retry later"})
        return response(200, {"batches": [summary_view(b) for b in batches],
                              "next": encode_cursor(after) if after else None, "rhythm": rhythm})

    def stuck(self, root_account_uuid: str, *, state: str | None, outcome: str, unusual: bool | None,
              since: str | None, limit: int, start: dict[str, str] | None) -> tuple[list[Batch], dict[str, str] | None]:
        """`outcome=stuck`: the open batches (one query of the sparse index: open imports are few) that
        are stuck, newest first event first, paged with the same cursor as the list index's. An open
        import has no end, so none is unusual: `unusual=true` finds none of them."""
        if unusual:
            return [], None
        found = [b for b in self._store.open_batches(root_account_uuid) if is_stuck(b)
                 and (state is None or b.workflow_state.value == state)
                 and (since is None or b.first_event_at >= since)]
        found.sort(key=lambda b: (b.first_event_at, b.sis_batch_id), reverse=True)
        if start is not None:
            after = (start[LIST_SORT_KEY], start[SORT_KEY])
            found = [b for b in found if (b.first_event_at, b.sis_batch_id) < after]
        page = found[:limit]
        more = len(found) > limit
        cursor = ({PARTITION_KEY: root_account_uuid, SORT_KEY: page[-1].sis_batch_id,
                   LIST_SORT_KEY: page[-1].first_event_at} if more else None)
        return page, cursor
