"""Lambda functions: the shared layer and code asset, one role and one log group per function.

A function may add a layer of its own (`extra_layer`): the reconciler's canvasapi goes to it alone, so
that no other function (above all the ingest path) can load it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .bundling import BOTOCORE_DATA_PATH, FUNCTIONS, build_code, build_layer
from .config import StackConfig
from .nag import acknowledge

sys.path.insert(0, str(FUNCTIONS))
# The services the functions make clients for: the trimmed botocore data in the layer keeps these.
from sis_imports.adapters.aws import CLIENT_LIMITS  # noqa: E402

ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


class Functions(Construct):
    """Builds the assets once; `add` makes a function with its own least-privilege role."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.architecture = ARCHITECTURES[config.architecture]
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(build_layer(config.architecture, botocore_services=tuple(CLIENT_LIMITS)))),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_13],
            compatible_architectures=[self.architecture],
            description="Powertools, pydantic-core, PyJWT (pinned in requirements/runtime.txt); botocore's "
                        "endpoints data cut to the services used",
        )
        self.code = lambda_.Code.from_asset(str(build_code()))
        self._made: list[tuple[lambda_.Function, iam.Role]] = []

    def extra_layer(self, construct_id: str, *, requirements: Path, name: str, description: str) -> lambda_.LayerVersion:
        """A layer of `requirements` (fully pinned, installed with --no-deps), built into `.build/<name>-…`
        beside the shared one; give it to the functions that need it through `add(layers=…)`."""
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=lambda_.Code.from_asset(str(build_layer(self._config.architecture, requirements, name=name))),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_13],
            compatible_architectures=[self.architecture],
            description=description,
        )

    def add(
        self,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str] | None = None,
        timeout: Duration = Duration.seconds(10),
        memory_size: int = 512,
        reserved_concurrency: int = 0,
        any_resource_reason: str = "",
        layers: Sequence[lambda_.ILayerVersion] = (),
    ) -> lambda_.Function:
        """`any_resource_reason` names what, besides X-Ray, the caller grants on '*' and why;
        `reserved_concurrency` 0 means no reservation (a reservation of 0 would stop the function);
        `layers` come after the shared one (Lambda unpacks them in order into /opt)."""
        config = self._config
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{construct_id}: its log group, and what the stack grants it (X-Ray with tracing=true)",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=self.architecture,
            handler=handler,
            code=self.code,
            layers=[self.layer, *layers],
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda drops what is below these before it is billed: the platform's START/END/REPORT lines are
            # INFO (system_log_level, WARN by default); the application's DEBUG lines (the per-event line)
            # pass only when some invocations are sampled at DEBUG (event_log_sample_rate).
            system_log_level_v2=lambda_.SystemLogLevel[config.system_log_level],
            application_log_level_v2=(lambda_.ApplicationLogLevel.DEBUG if config.event_log_sample_rate
                                      else lambda_.ApplicationLogLevel.INFO),
            # X-Ray only when asked for (tracing=true): $5 a million traces recorded.
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency or None,
            environment={
                "POWERTOOLS_SERVICE_NAME": "canvas-sis-imports",
                "POWERTOOLS_METRICS_NAMESPACE": "CanvasSisImports",
                "LOG_LEVEL": "INFO",
                **({"POWERTOOLS_LOGGER_SAMPLE_RATE": f"{config.event_log_sample_rate:g}"}
                   if config.event_log_sample_rate else {}),
                # The custom metrics no alarm reads (adapters/observability.py DETAILED_ONLY) only when asked for.
                **({"DETAILED_METRICS": "true"} if config.detailed_metrics else {}),
                # botocore reads its endpoints data from here first: the layer's trimmed copy (bundling.py).
                "AWS_DATA_PATH": BOTOCORE_DATA_PATH,
                **(environment or {}),
            },
        )
        self._made.append((function, role))
        reasons = ["X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions; "
                   "Lambda active tracing needs them on '*'."] if config.tracing else []
        if any_resource_reason:
            reasons.append(any_resource_reason)
        if reasons:
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                        " ".join(reasons) + " Every other statement of this role names its resources.")
        acknowledge(
            function.node.default_child,  # type: ignore[arg-type]
            "AwsSolutions-L1",
            "Python 3.13 is deliberate: the layer's cp313 wheels, the tests and the bundle import test all "
            "run on 3.13; moving to a newer runtime is one change across all of them.",
        )
        return function

    def finish(self) -> None:
        """Call once every grant is made: each function then depends on its policy alone.

        CDK also lists the role in DependsOn, which the function's Role GetAtt already implies
        (cfn-lint W3005).
        """
        for function, role in self._made:
            policy = role.node.try_find_child("DefaultPolicy")
            depends_on = [Stack.of(self).get_logical_id(policy.node.default_child)] if policy else []
            function.node.default_child.add_override("DependsOn", depends_on)  # type: ignore[union-attr]


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch's retention enum for a number of days config.py has already checked."""
    names = {
        1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
        60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
        365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
        1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
        3653: "TEN_YEARS",
    }
    return logs.RetentionDays[names[days]]
