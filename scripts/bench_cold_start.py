"""Cold init of each handler from its synthesized bundle vs `import boto3; boto3.client("dynamodb")`.

Each figure is the median over fresh `python3.13 -I -S` processes of the time to import the
handler module, which (as in Lambda, with AWS_LAMBDA_FUNCTION_NAME set) also builds its clients.
Run `make synth` first; `make bench` prints the table. Target: every ratio <= 1.2. Each handler
is imported with its own layers (the reconciler, present when synthesized with `canvas_instances`,
with its second layer too) and the environment its function deploys with (the layer's trimmed
botocore data through AWS_DATA_PATH among it), so each figure is what that function loads. The
baseline keeps botocore's own data: it is the floor any function with a client pays.

A function of another architecture than this machine's (arm64, the default, measured on x86_64) is
imported with its layers' twins for this machine (scripts/bundle.py, Bundle.importable): the same pinned
requirements, Python code, byte code and trimmed botocore data, with this machine's native code. The
output says so; the figures are then of the same Python code, not of Graviton's speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from infra.bundling import find_python313, host_architecture
from scripts.bundle import LAMBDA_ENV, Bundle, bundles, run_isolated, runtime_dir

TIMED = "import time\nw = time.perf_counter()\n{code}\nprint(time.perf_counter() - w, 0)"
BASELINE = 'import boto3; boto3.client("dynamodb")'
TARGET = 1.2


def once(python: str, paths: list[Path], code: str, env: dict[str, str] | None = None) -> float:
    result = run_isolated(python, paths, TIMED.format(code=code), env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return float(result.stdout.split()[-2]) * 1000


def measure(python: str, bundle: Bundle, runtime: Path, runs: int) -> tuple[list[float], list[float]]:
    """Handler and baseline timings, alternated run by run so both see the same machine."""
    handler, baseline = [], []
    paths = [*bundle.paths, runtime]
    for _ in range(runs):
        baseline.append(once(python, paths, BASELINE))
        handler.append(once(python, paths, f"import {bundle.module}", bundle.environment))
    return handler, baseline


def data_path(bundle: Bundle | None) -> str:
    """Where botocore reads its data from first: the function's AWS_DATA_PATH, and the folder here it stands for."""
    deployed = dict(bundle.variables).get("AWS_DATA_PATH") if bundle else None
    if not deployed:
        return "botocore's own data"
    folder = bundle.local(deployed)
    size = (folder / "endpoints.json").stat().st_size if (folder / "endpoints.json").exists() else 0
    return f"AWS_DATA_PATH={deployed}: {folder.parent.name[:14]}…/{folder.name}, endpoints.json {size / 1024:.0f} KB"


def instructions(python: str, paths: list[Path], code: str, env: dict[str, str] | None = None) -> int:
    """Instructions executed (valgrind's callgrind): the same count run after run, whatever the load."""
    import re
    import subprocess

    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, "-I", "-S", "-c",
                          prelude + code], capture_output=True, text=True, env=LAMBDA_ENV if env is None else env,
                         cwd="/", timeout=900)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assembly", default="cdk.out", type=Path)
    parser.add_argument("--runs", default=15, type=int)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions with valgrind instead of timing (slow, but load-independent)")
    args = parser.parse_args()
    python = find_python313()
    if python is None:
        print("python3.13 not found: the Lambda runtime's version is needed to measure")
        return 1
    runtime = runtime_dir()
    found = bundles(args.assembly)
    if not found:
        print(f"no functions in {args.assembly}: run `make synth` first")
        return 1
    found = [bundle.importable() for bundle in found]
    twinned = sorted({bundle.architecture for bundle in found if bundle.shipped})
    if twinned:
        here = host_architecture()
        print(f"this machine is {here}; the {' and '.join(twinned)} functions are imported with {here} twins of their "
              f"layers: the same pinned requirements built for {here}, the same code, byte code and trimmed botocore "
              f"data (the figures are of the same Python code)")
    if args.instructions:
        paths = [*found[0].paths, runtime]
        startup = instructions(python, paths, "pass")
        base = instructions(python, paths, BASELINE) - startup
        print(f"instructions beyond interpreter start-up; baseline {BASELINE!r} ({data_path(None)}): "
              f"{base / 1e6:.0f} M")
        worst = 0.0
        for bundle in found:
            env = bundle.environment
            count = instructions(python, [*bundle.paths, runtime], f"import {bundle.module}", env) - startup
            worst = max(worst, count / base)
            print(f"{bundle.handler:32} {count / 1e6:7.0f} M   ratio {count / base:.2f}   {data_path(bundle)}",
                  flush=True)
        print(f"every function within {TARGET}x the baseline: {'yes' if worst <= TARGET else 'no'} (worst {worst:.2f})")
        return 0
    rows = []
    for bundle in found:
        handler, baseline = measure(python, bundle, runtime, args.runs)
        median, base_median = statistics.median(handler), statistics.median(baseline)
        rows.append({"handler": bundle.handler, "data": data_path(bundle),
                     "median_ms": round(median), "boto3_median_ms": round(base_median),
                     "ratio_median": round(median / base_median, 2), "min_ms": round(min(handler)),
                     "boto3_min_ms": round(min(baseline)), "ratio_min": round(min(handler) / min(baseline), 2)})
    print(f"cold init, {args.runs} fresh processes each, alternating with the baseline {BASELINE!r} "
          f"({data_path(None)})")
    print(f"{'handler':32} {'median':>7} {'boto3':>6} {'ratio':>6}   {'min':>5} {'boto3':>6} {'ratio':>6}   data")
    for r in rows:
        print(f"{r['handler']:32} {r['median_ms']:>7} {r['boto3_median_ms']:>6} {r['ratio_median']:>6}   "
              f"{r['min_ms']:>5} {r['boto3_min_ms']:>6} {r['ratio_min']:>6}   {r['data']}")
    print(json.dumps(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
