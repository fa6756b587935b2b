"""The benchmarks `make bench` prints still run, at a small size (their figures are printed, not asserted: the
README quotes full-size runs). What is checked is what each promises to show, so that none rots unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_reconcile_pass_benchmark_shows_a_cold_container_writing_only_its_mark():
    out = bench("scripts.bench_reconcile", "--imports", "120")
    (cold,) = [line for line in out.splitlines() if line.startswith("pass 4 (cold container")]
    assert "'UpdateItem': 1}" in cold and "PutItem" not in cold


def test_the_fanout_benchmark_prints_each_pass_and_whether_it_fits():
    out = bench("scripts.bench_fanout", "--instances", "3", "--per-day", "48")
    rows = [line for line in out.splitlines() if line[:2] in ("1 ", "2 ", "3 ")]
    assert len(rows) == 3 and all(row.rstrip().endswith(("yes", "NO")) for row in rows), out


def test_the_school_history_benchmark_prints_per_end_and_per_pass_costs():
    out = bench("scripts.bench_unusual", "--accounts", "1", "2")
    assert "the baseline item with 30 ends:" in out and "nothing new" in out and "one new end each" in out, out
