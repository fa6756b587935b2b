"""What `make synth` made: where each template went, and cdk-nag's verdict on it.

cdk-nag runs inside the synth as a policy-validation plugin (infra/application.py): any finding not
acknowledged fails the synth before this runs, so reaching here means none is left. The acknowledged
ones and their reasons are in each resource's `Metadata.cdk_nag`; this counts them.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def summary(assembly: Path) -> list[str]:
    templates = sorted(assembly.glob("*.template.json"))
    if not templates:
        raise SystemExit(f"synth summary: no template in {assembly}/ (did the synth run?)")
    lines = []
    for template in templates:
        body = json.loads(template.read_text())
        resources = body.get("Resources", {})
        acknowledged = Counter(rule["id"] for resource in resources.values()
                               for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []))
        kinds = Counter(r["Type"] for r in resources.values())
        lines.append(f"template: {template} ({len(resources)} resources: {kinds['AWS::Lambda::Function']} functions, "
                     f"{kinds['AWS::CloudWatch::Alarm']} alarms; {len(body.get('Outputs', {}))} outputs)")
        lines.append(f"cdk-nag (AwsSolutions): no unacknowledged finding; {sum(acknowledged.values())} acknowledged "
                     f"({len(acknowledged)} rules), each with its reason in the template's Metadata.cdk_nag")
    return lines


if __name__ == "__main__":
    print("\n".join(summary(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out"))))
