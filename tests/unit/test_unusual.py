"""Unusual ends against the school's own history (pure core, issue 17).

The promise (README, "Unusual and missing imports"): once at least MIN_HISTORY earlier successful
imports of a shape are known, an end whose figure is far outside them (above twice their usual level
and above the figure's floor, or unchanged when changes are usual) is flagged with a sentence naming the
figure and the usual range; routine ends are never flagged; no claim is made before; one outlier
does not move the baseline (a second one is flagged as well). The property test's oracle is that
promise on drawn routines: it never
computes a median.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core.unusual import (
    FIGURES, KEEP, MIN_HISTORY, PACKED_FIGURES, Baseline, End, baseline_from_item, baseline_item, check, figures_of,
    shape_of,
)

START = 1_700_000_000  # any epoch: nothing here reads a clock


def sis_import(**counts: int) -> dict:
    return {"id": 5, "workflow_state": "imported", "batch_mode": True, "started_at": "2026-01-05T10:00:00Z",
            "ended_at": "2026-01-05T10:04:10Z",
            "data": {"import_type": "instructure_csv", "supplied_batches": ["user", "enrollment"],
                     "counts": {"users": 10, "enrollments": 340, "error_count": 0, "warning_count": 0, **counts}}}


def test_figures_come_from_counts_statistics_and_times():
    figures = figures_of(sis_import(batch_enrollments_deleted=4800))
    assert figures["enrollments_deleted"] == 4800
    assert figures["courses_deleted"] == 0  # batch-mode counts leave zeros out
    assert figures["changes"] == 350 and figures["duration_seconds"] == 250
    answer = sis_import()
    answer["data"]["statistics"] = {"total_state_changes": 7, "Enrollment": {"deleted": 3}, "Pseudonym": {"deleted": 2}}
    figures = figures_of(answer)
    assert (figures["changes"], figures["enrollments_deleted"], figures["users_deleted"]) == (7, 3, 2)


def test_figures_ignore_what_is_not_a_count():
    answer = {"data": {"counts": {"users": True, "enrollments": "12", "error_count": -1}}, "started_at": "soon"}
    assert figures_of(answer) == {"enrollments_deleted": 0, "courses_deleted": 0, "sections_deleted": 0,
                                  "changes": 0}
    assert figures_of({}) == {}


def test_shape_separates_mode_and_supplied_kinds_and_keeps_to_safe_characters():
    plain = {**sis_import(), "batch_mode": False}
    assert shape_of(sis_import()) == "instructure_csv.batch.enrollment+user"
    assert shape_of(plain) == "instructure_csv.plain.enrollment+user"
    hostile = {"data": {"import_type": "x.y/../#z", "supplied_batches": ["é#", "user", "user"]}}
    assert shape_of(hostile) == "xyz.plain.user"


def _baseline(values: list[dict[str, int]]) -> Baseline:
    return Baseline("u", "s").with_ends(End(str(i), START + 3600 * i, v) for i, v in enumerate(values))


def test_the_issue_example_names_the_figure_and_the_usual_range():
    history = [{"enrollments_deleted": d, "changes": 330 + d} for d in [0, 3, 12, 1, 0, 5, 2, 0, 7, 4] * 2 + [0] * 4]
    baseline = _baseline(history)
    result = check({"enrollments_deleted": 4800, "changes": 340}, baseline.history_for("new", None))
    assert [a.figure for a in result.anomalies] == ["enrollments_deleted"]
    assert result.anomalies[0].sentence == "deleted 4,800 enrollments; usually 0–12 over the last 24 imports"
    assert (result.anomalies[0].usual_low, result.anomalies[0].usual_high) == (0, 12)


def test_no_claim_without_history_and_none_when_turned_off():
    baseline = _baseline([{"enrollments_deleted": 0}] * (MIN_HISTORY - 1))
    result = check({"enrollments_deleted": 10_000}, baseline.ends)
    assert result.anomalies == () and "9 earlier successful imports" in result.not_checked
    assert "10 needed" in result.not_checked
    full = _baseline([{"enrollments_deleted": 0}] * MIN_HISTORY)
    assert check({"enrollments_deleted": 10_000}, full.ends).anomalies
    assert check({"enrollments_deleted": 10_000}, full.ends, sensitivity=0).not_checked.endswith("=0)")


def test_an_unchanged_import_is_unusual_only_when_changes_are_usual():
    busy = _baseline([{"changes": 300 + i} for i in range(12)])
    assert check({"changes": 0}, busy.ends).anomalies[0].sentence == (
        "changed nothing; usually 300–311 over the last 12 imports")
    quiet = _baseline([{"changes": 300}] * 10 + [{"changes": 0}] * 2)
    assert check({"changes": 0}, quiet.ends).anomalies == ()


def test_durations_read_as_time():
    baseline = _baseline([{"duration_seconds": 240 + 5 * i} for i in range(12)])
    (anomaly,) = check({"duration_seconds": 4200}, baseline.ends).anomalies
    assert anomaly.sentence == "took 1 h 10 min; usually 4 min–4 min 55 s over the last 12 imports"


def test_the_baseline_is_bounded_idempotent_and_survives_its_item():
    baseline = _baseline([{"changes": i} for i in range(KEEP + 15)])
    assert len(baseline.ends) == KEEP and baseline.ends[0].sis_batch_id == "15"
    again = baseline.with_ends(baseline.ends)
    assert again == baseline
    item = baseline_item(baseline)
    assert set(item) == {"ends", "version"} and isinstance(item["ends"], bytes)
    assert baseline_from_item("u", "s", item).ends == baseline.ends


# -- the baseline item's size and formats -----------------------------------------------------------

UUID = "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"  # Canvas's root account uuids are 40 characters
SHAPE = "instructure_csv.batch.course+enrollment+section+term+user"  # a nightly full-sync import's shape


def item_bytes(item: dict) -> int:
    """DynamoDB's size of an item (what a write unit, 1 KB, is counted in): each attribute's name in UTF-8, plus
    its value: a string in UTF-8, binary its length, a number about a byte per two significant digits plus one,
    a list 3 bytes plus each element and a byte for it. Written from AWS's sizing rule, not from the code."""
    def value(v):
        if isinstance(v, str):
            return len(v.encode())
        if isinstance(v, bytes):
            return len(v)
        if isinstance(v, int):
            return (len(str(abs(v)).strip("0")) + 1) // 2 + 1
        return 3 + sum(value(e) + 1 for e in v)
    key = {"root_account_uuid": UUID, "sis_batch_id": "#baseline#" + SHAPE}
    return sum(len(name.encode()) + value(v) for name, v in {**key, **item}.items())


def _stored(ends: list[End], version: int = 9_999) -> dict:
    return baseline_item(Baseline(UUID, SHAPE, tuple(ends), version - 1))


def test_the_worst_baseline_canvas_can_report_stays_one_write_unit():
    # 30 ends, every figure present: 20-digit ids of one Canvas instance's id sequence (busy: thousands of other
    # imports between two of the school's), a month of ends at any hour, every count anywhere in 0 to 9,999,999,
    # durations anywhere in 0 to 10 days
    rng = random.Random(17)
    ids = sorted(rng.sample(range(98_765_432_109_876_500_000, 98_765_432_109_876_590_000), 30))
    times = sorted(START + rng.randrange(30 * 86_400) for _ in range(30))
    ends = [End(str(i), t, {n: rng.randrange(10 * 86_400 if n == "duration_seconds" else 10_000_000)
                            for n in FIGURES}) for i, t in zip(ids, times)]
    ends[0] = End(ends[0].sis_batch_id, ends[0].ended_at, {n: 0 for n in FIGURES})  # the full range in each
    ends[1] = End(ends[1].sis_batch_id, ends[1].ended_at,
                  {n: 10 * 86_400 - 1 if n == "duration_seconds" else 9_999_999 for n in FIGURES})
    item = _stored(ends)
    assert baseline_from_item(UUID, SHAPE, item).ends == tuple(ends)
    assert item_bytes(item) <= 1024
    # the same ends as text lines (the earlier format) took about three write units
    text = {"kind": "baseline", "shape": SHAPE, "figures": list(FIGURES),
            "ends": [f"{e.sis_batch_id} {e.ended_at} " + " ".join(str(e.figures[n]) for n in FIGURES) for e in ends],
            "version": 9_999}
    assert item_bytes(text) > 3 * 1024


def test_a_typical_baseline_is_a_few_hundred_bytes():
    # a school's nightly imports: 7-digit ids a few thousand apart, about a day apart, hundreds of changes
    ends = [End(str(4_100_000 + 3_000 * i + i % 7), START + 86_400 * i + 37 * (i % 5),
                {"enrollments_deleted": i % 4, "courses_deleted": 0, "sections_deleted": 0, "users_deleted": 0,
                 "changes": 480 + (i * 37) % 90, "duration_seconds": 200 + (i * 13) % 60, "error_count": 0,
                 "warning_count": i % 3}) for i in range(30)]
    item = _stored(ends)
    assert baseline_from_item(UUID, SHAPE, item).ends == tuple(ends)
    assert item_bytes(item) < 400


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**25), st.integers(0, 2**40),
                          st.dictionaries(st.sampled_from(list(FIGURES)), st.integers(0, 10**15))),
                max_size=KEEP, unique_by=lambda e: e[0]))
def test_any_ends_with_decimal_ids_survive_the_packed_item(drawn):
    ends = tuple(End(str(i), at, figures) for i, at, figures in drawn)  # any order, any figures missing
    item = baseline_item(Baseline("u", "s", ends))
    assert isinstance(item["ends"], bytes)
    assert baseline_from_item("u", "s", item).ends == ends


@pytest.mark.parametrize("ends", [
    (End("sis-7", START, {"changes": 5}), End("007", START + 1, {"error_count": 2})),  # not plain decimals
    (End("7", START, {"changes": Decimal(5)}),),  # a number as DynamoDB gives it
])
def test_ends_the_packing_cannot_hold_are_kept_as_text_lines(ends):
    item = baseline_item(Baseline("u", "s", ends))
    assert isinstance(item["ends"], list) and item["figures"] == list(FIGURES)
    assert baseline_from_item("u", "s", item).ends == ends


def test_an_item_written_as_text_lines_is_still_read():
    # as deployed tables hold it (the earlier format), numbers as DynamoDB gives them
    item = {"kind": "baseline", "shape": "s",
            "figures": ["changes", "duration_seconds", "enrollments_deleted"],
            "ends": ["1002 1796085509 542 231 5", "1003 1796089127 535 - 0"], "version": Decimal(31)}
    baseline = baseline_from_item("u", "s", item)
    assert baseline.version == 31
    assert baseline.ends == (
        End("1002", 1796085509, {"changes": 542, "duration_seconds": 231, "enrollments_deleted": 5}),
        End("1003", 1796089127, {"changes": 535, "enrollments_deleted": 0}))
    # written again, it is packed, and says so by the type of `ends`
    again = baseline_item(baseline.with_ends([End("1004", 1796092660, {"changes": 522})]))
    assert isinstance(again["ends"], bytes) and again["version"] == 32
    assert [e.sis_batch_id for e in baseline_from_item("u", "s", again).ends] == ["1002", "1003", "1004"]


def test_every_figure_the_rule_judges_is_packed():
    assert set(FIGURES) <= set(PACKED_FIGURES)


@pytest.mark.parametrize(("data", "error"), [
    (b"\x02\x00", "unknown format \\(02\\)"),
    (b"", "unknown format \\(empty\\)"),
    (b"\x01\x1e\xd0", "cut short \\(3 bytes\\)"),
    (b"\x01\x00\x00", "bytes left over after 0 ends"),
])
def test_a_damaged_packed_item_is_refused_with_what_is_wrong(data, error):
    with pytest.raises(ValueError, match=error):
        baseline_from_item("u", "s", {"ends": data, "version": 1})


# -- the property ---------------------------------------------------------------------------------

ROUTINE = {  # (low, high) of a figure on a routine day: high <= 1.5 x low, or under the figure's floor
    "changes": st.integers(100, 2000).map(lambda low: (low, low * 3 // 2)),
    "duration_seconds": st.integers(60, 3000).map(lambda low: (low, low * 3 // 2)),
    "enrollments_deleted": st.integers(0, 12).map(lambda high: (0, high)),
    "error_count": st.integers(0, 5).map(lambda high: (0, high)),
}


@st.composite
def school(draw):
    ranges = {name: draw(strategy) for name, strategy in ROUTINE.items()}
    ends = draw(st.integers(0, 45))
    routine = [{name: draw(st.integers(low, high)) for name, (low, high) in ranges.items()} for _ in range(ends)]
    at = draw(st.integers(0, ends))
    figure = draw(st.sampled_from([*ROUTINE, "unchanged"]))
    outlier = dict(draw(st.sampled_from(routine)) if routine else {n: lo for n, (lo, _) in ranges.items()})
    if figure == "unchanged":
        outlier["changes"] = 0
    else:
        low, high = ranges[figure]
        outlier[figure] = max(high * 10, FIGURES[figure].floor * 3) + draw(st.integers(0, 10**6))
    second = None  # one outlier must not move the baseline: a second one later is flagged as well
    if draw(st.booleans()) and at < ends:
        second = draw(st.integers(at + 1, ends))
    drawn = routine[:at] + [outlier] + routine[at:]
    if second is not None:
        twin = dict(routine[second - 1])
        twin[figure if figure != "unchanged" else "changes"] = (
            0 if figure == "unchanged" else max(ranges[figure][1] * 10, FIGURES[figure].floor * 3))
        drawn.insert(second + 1, twin)
        second += 1
    return drawn, [i for i in (at, second) if i is not None], "changes" if figure == "unchanged" else figure


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(school())
def test_the_outlier_and_only_it_is_flagged_once_history_suffices(drawn):
    ends, outliers, figure = drawn
    baseline = Baseline("u", "s")
    flagged = {}
    for i, figures in enumerate(ends):
        result = check(figures, baseline.history_for(str(i), START + i))
        if result.anomalies:
            flagged[i] = [a.figure for a in result.anomalies]
        baseline = baseline.with_ends([End(str(i), START + i, figures)])  # every end was a success
    expected = {i: [figure] for i in outliers if i >= MIN_HISTORY}
    assert flagged == expected


def test_a_failure_that_is_also_unusual_says_both_and_subscribers_can_filter_on_it():
    from sis_imports.core.alert_text import email_text
    from sis_imports.core.alerts import SUBJECT_LIMIT, Alert
    from sis_imports.core.unusual import annotate

    baseline = _baseline([{"error_count": i % 3} for i in range(12)])
    result = check({"error_count": 900}, baseline.ends)
    message = {"type": "sis_import_finished", "sis_batch_id": "9", "hostname": "canvas.example.edu",
               "workflow_state": "failed_with_messages", "outcome": "failure", "alert_id": "a" * 32}
    alert = annotate(Alert("S" * SUBJECT_LIMIT, message, {"outcome": "failure"}), result)
    assert alert.attributes == {"outcome": "failure", "unusual": "true"}
    assert alert.subject.endswith(" (unusual)") and len(alert.subject) == SUBJECT_LIMIT
    text = email_text(alert.message)
    assert text.startswith("The SIS import 9 on canvas.example.edu ended: failed_with_messages (failure).")
    assert ("Also unusual against this school's own imports:\n"
            "  - reported 900 errors; usually 0–2 over the last 12 imports") in text
    routine = annotate(Alert("S", message, {"outcome": "failure"}), check({"error_count": 1}, baseline.ends))
    assert routine.attributes == {"outcome": "failure"} and routine.message["unusual"] is False
    assert "unusual" not in email_text(routine.message).lower()


def test_deletions_that_explain_the_changes_are_said_once():
    """Canvas's statistics count deletions among the state changes: one damage, one sentence; changes beyond
    what the deletions explain are said as well."""
    baseline = _baseline([{"enrollments_deleted": i % 4, "changes": 520 + i} for i in range(20)])
    (only,) = check({"enrollments_deleted": 4800, "changes": 5330}, baseline.ends).anomalies
    assert only.figure == "enrollments_deleted"
    both = check({"enrollments_deleted": 4800, "changes": 12_000}, baseline.ends).anomalies
    assert [a.figure for a in both] == ["enrollments_deleted", "changes"]
