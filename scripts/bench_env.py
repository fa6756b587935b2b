"""What every benchmark on moto sets before it imports the functions' code: their folders on the path, fake
credentials in one region, metrics and logs quiet, and no profile or endpoint that could reach a real AWS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare() -> None:
    for folder in (ROOT, ROOT / "functions"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    venv_node = Path(sys.prefix) / "bin" / "node"  # jsii (infra's imports) needs Node 22+: the venv's, as tests do
    if venv_node.exists():
        os.environ.setdefault("JSII_NODE", str(venv_node))
