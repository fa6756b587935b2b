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

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_imports.core.unusual import (
    FIGURES, KEEP, MIN_HISTORY, Baseline, End, baseline_from_item, baseline_item, check, figures_of, shape_of,
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
    assert len(str(item)) < 2_000  # one small item: 30 ends in well under 1 KB of figures each
    assert baseline_from_item("u", "s", item).ends == baseline.ends


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
