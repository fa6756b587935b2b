"""`make synth` ends by saying where the template went and what cdk-nag found (scripts/synth_summary.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def summary(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.synth_summary", str(folder)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_it_names_the_template_and_counts_what_cdk_nag_was_told(synthesized, tmp_path):
    out = summary(synthesized.assembly)
    assert out.returncode == 0, out.stderr
    template_line, nag_line = out.stdout.splitlines()
    body = json.loads(synthesized.template_file.read_text())
    functions = [r for r in body["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert template_line.startswith(f"template: {synthesized.template_file} ({len(body['Resources'])} resources: "
                                    f"{len(functions)} functions, ")
    acknowledged = [rule for r in body["Resources"].values()
                    for rule in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])]
    assert acknowledged and all(rule.get("reason") for rule in acknowledged)
    assert nag_line.startswith(f"cdk-nag (AwsSolutions): no unacknowledged finding; {len(acknowledged)} acknowledged")
    empty = summary(tmp_path)  # no synth ran: said in one line, not a traceback
    assert empty.returncode == 1 and "no template in" in empty.stderr and "Traceback" not in empty.stderr
