"""Synthesizes each stack variant once per test session (synth takes seconds, tests milliseconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DEFAULT: dict[str, Any] = {}
VARIANT: dict[str, Any] = {
    "auth_mode": "token",
    "canvas_sqs": "false",
    "domain_name": "sis-events.example.edu",
    "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0f6e-4a1b",
    "notify_emails": "ops@example.edu,registrar@example.edu",
    "eventbridge_source_accounts": "111122223333",
    "throttle_rate": "20",
    "throttle_burst": "40",
}


def synthesize(context: dict[str, Any], outdir: Path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    from infra.config import load_config
    from infra.stack import CanvasSisImportsStack

    app = cdk.App(context=context, outdir=str(outdir))
    stack = CanvasSisImportsStack(app, "CanvasSisImports-test", config=load_config(app.node.try_get_context))
    # As in app.py: synth fails on any cdk-nag finding that is not acknowledged.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    return Template.from_stack(stack), Path(assembly.directory)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    return synthesize(DEFAULT, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized[0]


@pytest.fixture(scope="session")
def assembly(synthesized):
    return synthesized[1]


@pytest.fixture(scope="session")
def variant(tmp_path_factory):
    return synthesize(VARIANT, tmp_path_factory.mktemp("cdk-variant"))[0]
