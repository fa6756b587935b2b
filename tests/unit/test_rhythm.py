"""Missing imports (pure core, issue 17).

The promise (README, "Unusual and missing imports"): once a root account has a learnt rhythm (at
least MIN_HISTORY intervals between its rounds of imports) or an expected one, a silence far longer
than its usual intervals (more than twice the longest, plus 30 minutes) is alerted once, and its end
once ("resumed"); a round on time never is; nothing is claimed before the history suffices. The
property's oracle is that promise on drawn schedules, checked by passes at drawn moments.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core.rhythm import (
    MIN_HISTORY, Rhythm, missing_alert, missing_owed, resumed_alert, resumed_owed, rhythm_from_item, rhythm_item, step,
)

START = 1_700_000_000  # any epoch: nothing here reads a clock
HOUR = 3600


def passes(rhythm: Rhythm, creations: list[tuple[str, int]], moments: list[int], **options) -> tuple[Rhythm, list[str]]:
    """Reconcile passes at `moments`, each seeing the imports created by then; the alerts owed, in order."""
    owed = []
    for now in moments:
        new = step(rhythm, [c for c in creations if c[1] <= now], now, **options)
        owed += ["missing"] * missing_owed(rhythm, new) + ["resumed"] * resumed_owed(rhythm, new)
        rhythm = new
    return rhythm, owed


def hourly(n: int, start: int = START) -> list[tuple[str, int]]:
    return [(str(i), start + i * HOUR + (37 * i) % 120) for i in range(n)]


def test_the_issue_example_one_missing_alert_then_one_resumed():
    creations = hourly(25)
    last = creations[-1][1]
    moments = list(range(START, last + 3 * HOUR, 300))  # a pass every 5 minutes through 3 silent hours
    rhythm, owed = passes(Rhythm("u"), creations, moments)
    assert owed == ["missing"]
    alert = missing_alert(rhythm)
    assert alert.message["outcome"] == "missing" and alert.message["type"] == "sis_import_missing"
    assert "usually every 1 h" in alert.subject and alert.message["last_import_at"].endswith("Z")
    came = last + 3 * HOUR + 100
    rhythm, owed = passes(rhythm, creations + [("new", came)], [came + 60, came + 360])
    assert owed == ["resumed"]
    assert "after 3 h 1 min" in resumed_alert(rhythm).subject
    assert rhythm_from_item("u", rhythm_item(rhythm)) == rhythm


def test_rounds_of_several_files_count_once_and_an_expected_interval_needs_no_history():
    creations = [(f"{r}-{k}", START + r * 24 * HOUR + k * 60) for r in range(3) for k in range(5)]
    assert len(Rhythm("u").with_creations(creations).rounds()) == 3
    assert Rhythm("u").with_creations(creations).expectation() is None
    day = 24 * HOUR
    _, owed = passes(Rhythm("u"), creations, list(range(START, START + 5 * day, HOUR)), expected_every=day)
    assert owed == ["missing"]
    _, owed = passes(Rhythm("u"), creations, list(range(START, START + 5 * day, HOUR)), expected_every=day,
                     enabled=False)
    assert owed == []


def test_a_school_that_skips_nights_is_not_told_each_night():
    days = [(f"{d}-{h}", START + d * 24 * HOUR + h * HOUR) for d in range(6) for h in range(8, 18)]
    _, owed = passes(Rhythm("u"), days, list(range(START, START + 6 * 24 * HOUR, 600)))
    assert owed == []


@st.composite
def schedule(draw):
    interval = draw(st.integers(30 * 60, 2 * 24 * HOUR))
    jitter = draw(st.integers(0, interval // 10))
    rounds = draw(st.integers(1, 30))
    creations, at = [], START
    for r in range(rounds):
        moment = at + draw(st.integers(-jitter, jitter))
        creations += [(f"{r}-{k}", moment + 60 * k) for k in range(draw(st.integers(1, 3)))]
        at += interval
    longest = interval + 2 * jitter + 120
    silent = draw(st.booleans())
    # The next round: on time, or after a silence far longer than any usual interval.
    gap = draw(st.integers(2 * longest + 1800 + 1, 4 * longest + 7200)) if silent else draw(st.integers(0, interval))
    resumes = at - interval + gap + jitter + 120
    every = draw(st.integers(60, max(61, interval // 3)))
    moments = list(range(START, resumes + 2 * every, every))
    return creations + [("next", resumes)], moments, silent, rounds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule())
def test_a_silence_is_alerted_once_and_its_end_once_and_nothing_else(drawn):
    creations, moments, silent, rounds = drawn
    _, owed = passes(Rhythm("u"), creations, moments)
    expected = ["missing", "resumed"] if silent and rounds - 1 >= MIN_HISTORY else []
    assert owed == expected


def test_expected_import_every_is_read_or_refused_by_name():
    from sis_imports.core.expected_every import parse_expected

    assert parse_expected("") == {}
    assert parse_expected("abc=90m, def=6h,ghi=1d,jkl=off") == {"abc": 5400, "def": 21600, "ghi": 86400, "jkl": 0}
    for bad in ("abc", "abc=6", "abc=h", "=6h", "abc=6w", "abc=-1h"):
        with pytest.raises(ValueError, match="expected_import_every: .* is not <root_account_uuid>="):
            parse_expected(bad)


def test_seeing_older_creations_again_keeps_the_same_rhythm():
    """A cold pass that lists the whole window again learns nothing new, so it must write nothing: the kept
    creations do not depend on how far back a listing went."""
    every_5_minutes = [(str(i), START + 300 * i) for i in range(600)]
    recent = Rhythm("u").with_creations(every_5_minutes[-30:])
    seeded = Rhythm("u").with_creations(every_5_minutes[:-30]).with_creations(every_5_minutes[-30:])
    assert seeded.with_creations(every_5_minutes) == seeded
    assert recent.with_creations(every_5_minutes[-200:]).created == seeded.created
