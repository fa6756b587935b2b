"""The app as `make synth` builds it; app.py and the infrastructure tests both call `build`."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .config import load_config
from .stack import CanvasSisImportsStack


def build(app: cdk.App) -> CanvasSisImportsStack:
    """Adds the stack configured by the app's context; raises ConfigError naming a bad key."""
    config = load_config(app.node.try_get_context, app.node.get_all_context().keys())
    stack = CanvasSisImportsStack(
        app,
        f"CanvasSisImports-{config.stage}",
        config=config,
        # Without credentials (make synth) the stack is environment-agnostic; the CLI fills these in
        # from the credentials for deploy and diff.
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    # cdk-nag 3 is a policy-validation plugin: any finding not acknowledged (infra/nag.py), error or
    # warning, fails the synth, so nothing unreviewed reaches a deploy. The acknowledgements and their
    # reasons are also written into the template (Metadata cdk_nag), for whoever reviews it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return stack
