#!/usr/bin/env python3
"""CDK entry point: `make synth`, `make deploy ARGS="-c notify_emails=ops@example.edu"`."""

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, load_config
from infra.stack import CanvasSisImportsStack

app = cdk.App()
try:
    config = load_config(app.node.try_get_context)
except ConfigError as exc:
    sys.exit(f"configuration error: {exc}")
CanvasSisImportsStack(
    app,
    f"CanvasSisImports-{config.stage}",
    config=config,
    # Without credentials (make synth) the stack is environment-agnostic; deploy fills these in.
    env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
)
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
