"""`make status`'s view of issue 17: each batch's unusual figures, each root account's rhythm (what the
list route answers, made here by the route's own view of a rhythm the core stepped), and `--unusual`.
No local run: the route's answers are given to `fetch_all`, and `main` is given a page."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone

import pytest

from ops import status
from ops.status_view import Health, LastPass, Page, describe_rhythm, table
from sis_imports.core.rhythm import Rhythm, step
from sis_imports.usecases.batches import RhythmSettings, rhythm_view

UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
HOUR = 3600
LAST = 1_790_000_000 - 1_790_000_000 % HOUR  # 2026-09-21 14:00 UTC, on the hour


def when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def hourly(count: int) -> list[tuple[str, int]]:
    return [(str(1000 + n), LAST - HOUR * (count - 1 - n)) for n in range(count)]


def route_rhythm(count: int, now: int, settings: RhythmSettings | None = None) -> dict:
    """What GET /batches/{uuid} answers as `rhythm` after the reconciler's pass at `now`."""
    return rhythm_view(step(Rhythm(UUID), hourly(count), now=now), settings or RhythmSettings())


def batch(sis_batch_id: str, unusual: list[str]) -> dict:
    return {"last_event_at": "2026-11-27T15:31:34.127Z", "root_account_uuid": UUID, "sis_batch_id": sis_batch_id,
            "workflow_state": "imported", "outcome": "success", "unusual": unusual, "stuck": False,
            "first_event_at": "2026-11-27T15:30:00.120Z", "hostname": "oxana.instructure.com"}


def test_each_batch_shows_the_figures_its_end_was_unusual_in():
    lines = table([batch("1", ["enrollments_deleted", "duration_seconds"]), batch("2", [])]).splitlines()
    assert lines[0].split()[:9] == ["first", "event", "root", "account", "batch", "state", "outcome", "unusual",
                                    "last"]
    assert lines[1].split()[5] == "enrollments_deleted,duration_seconds"
    assert lines[2].split()[5] == "-"


def test_a_learnt_rhythm_reads_as_every_last_next_and_when_missing_alerts():
    line = describe_rhythm(UUID, route_rhythm(24, now=LAST + 600))
    # The promise: the usual interval is the hour between imports; the next is due an hour after the
    # last; a missing import alerts after the longest interval and a quarter, at least 30 min: 1.5 h.
    assert line == (f"rhythm of {UUID}: imports every ~1 h (learnt from the last 24 imports); last {when(LAST)}; "
                    f"next expected by {when(LAST + HOUR)}; missing if none by {when(LAST + HOUR + 1800)}")


def test_a_missing_import_is_said_with_since_when_and_when_found():
    line = describe_rhythm(UUID, route_rhythm(24, now=LAST + 2 * HOUR))
    assert line.endswith(f"next expected by {when(LAST + HOUR)}; "
                         f"MISSING since {when(LAST)} (found {when(LAST + 2 * HOUR)})")


def test_a_young_rhythm_a_given_one_an_unwatched_one_and_none():
    assert describe_rhythm(UUID, route_rhythm(3, now=LAST)) == (
        f"rhythm of {UUID}: not learnt yet: 3 imports seen, 11 needed; last {when(LAST)}")
    daily = route_rhythm(3, now=LAST, settings=RhythmSettings(expected_every={UUID: 86400}))
    assert describe_rhythm(UUID, daily).startswith(f"rhythm of {UUID}: imports every ~1 d (expected_import_every); ")
    off = route_rhythm(24, now=LAST, settings=RhythmSettings(missing_imports=False))
    assert describe_rhythm(UUID, off).endswith(f"next expected by {when(LAST + HOUR)}; missing-import alerts off")
    assert "none yet" in describe_rhythm(UUID, None)


@pytest.mark.parametrize(("seconds", "words"), [(2700, "~45 min"), (3600, "~1 h"), (5400, "~1.5 h"),
                                                  (86400, "~1 d"), (7 * 86400, "~7 d"), (20, "~1 min")])
def test_intervals_read_as_people_say_them(seconds, words):
    rhythm = {"usual_interval_seconds": seconds, "source": "learnt", "alerts": True}
    assert describe_rhythm("u", rhythm) == f"rhythm of u: imports every {words} (learnt)"


def test_fetch_all_asks_for_unusual_ends_and_keeps_each_accounts_rhythm():
    asked = []
    rhythm = route_rhythm(24, now=LAST)

    def get(url: str) -> dict:
        asked.append(url)
        account = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
        return {"batches": [batch(account, ["changes"])], "next": None, "rhythm": rhythm if account == "A" else None}

    args = status.parser().parse_args(["--unusual", "--limit", "5"])
    page = status.fetch_all(["A", "B"], status.list_query(args), get, "http://127.0.0.1:1/batches/")
    assert [urllib.parse.parse_qs(urllib.parse.urlsplit(u).query) for u in asked] == [
        {"unusual": ["true"], "limit": ["5"]}] * 2
    assert page.rhythms == {"A": rhythm, "B": None}
    assert "unusual" not in status.list_query(status.parser().parse_args([]))


def test_main_prints_the_rhythms_and_json_holds_them(monkeypatch, capsys):
    rhythm = route_rhythm(24, now=LAST + 2 * HOUR)
    page = Page([batch("1", ["enrollments_deleted"])], None, False, {UUID: rhythm})
    monkeypatch.setattr(status, "local_status", lambda args: (page, Health(reconciler=LastPass("t", True))))
    assert status.main([]) == status.HEALTHY  # a missing import is the school's, not the pipeline's health
    out = capsys.readouterr().out.splitlines()
    assert out[2] == describe_rhythm(UUID, rhythm) and "MISSING since" in out[2]
    assert status.main(["--json"]) == status.HEALTHY
    answer = json.loads(capsys.readouterr().out)
    assert answer["rhythms"] == {UUID: rhythm} and answer["batches"][0]["unusual"] == ["enrollments_deleted"]
