"""The reconciler (issue 9): every `reconcile_minutes`, Canvas's SIS Import API read through the same core.

Made only with `canvas_instances`: one Secrets Manager secret per instance for its API token (the
operator sets it; README), a function with a layer of its own (canvasapi and its dependencies, which
no other function gets), and a schedule. Its grants: conditional writes and reads of batch items, a
query of the open-batches index, and the value of its own secrets; nothing else.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .bundling import RECONCILER_REQUIREMENTS
from .config import StackConfig
from .functions import Functions
from .nag import acknowledge
from .table import grant_index_query, grant_items, shape

HANDLER = "handlers.reconciler.handler"
TIMEOUT = Duration.seconds(120)
MEMORY_MB = 512


def stuck_minutes(config: StackConfig) -> str:
    """STUCK_MINUTES as the function reads it: `initializing=60,created=60,importing=360,…`."""
    return ",".join(f"{state}={minutes}" for state, minutes in config.stuck_minutes)


TARGETS_PER_RULE = 5  # EventBridge's limit of targets per rule
MAX_PARALLEL = 20  # reserved concurrency at most: 100 instances, passes under 60 s, fit a 5-minute interval


def rhythm_env(config: StackConfig) -> dict[str, str]:
    """The school's baselines and rhythm (sis_imports/usecases/school_history.py): the reconciler keeps them,
    the query route shows the rhythm as the reconciler judges it."""
    return {"MISSING_IMPORTS": "true" if config.missing_imports else "false",
            "EXPECTED_IMPORT_EVERY": config.expected_import_every,
            "ANOMALY_MIN_HISTORY": str(config.anomaly_min_history)}


class CanvasApiToken(Construct):
    """One instance's API token: a generated placeholder, so that no token ever sits in the template,
    the context or the repository; the operator overwrites it with the real one (README)."""

    def __init__(self, scope: Construct, construct_id: str, *, url: str) -> None:
        super().__init__(scope, construct_id)
        self.url = url
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description=f"Canvas API token for {url}, used by the SIS import reconciler (a user whose root account "
            "role has SIS Data - import); set it with aws secretsmanager put-secret-value",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "A Canvas API token is issued, regenerated and revoked by an admin in Canvas (the token's user's "
            "settings), which no Lambda rotation can do: rotating it is putting the new value here (README).",
        )


class Reconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: Functions,
        table: dynamodb.Table,
        store_env: dict[str, str],
    ) -> None:
        """`store_env`: what every function that applies events reads (TABLE_NAME, RETENTION_DAYS,
        SIS_ROOT_ACCOUNTS, SIS_HOSTNAMES): the reconciler's states go through the same core."""
        super().__init__(scope, construct_id)
        # Ids from the host (and port), not the position in the list: reordering, adding or removing an
        # instance never replaces another instance's secret, whose token would be lost.
        self.tokens = [
            CanvasApiToken(self, "Token-" + url.removeprefix("https://").replace(":", "-"), url=url)
            for url in config.canvas_instances
        ]
        layer = functions.extra_layer(
            "ReconcilerDependencies",
            requirements=RECONCILER_REQUIREMENTS,
            name="reconciler-layer",
            description="canvasapi, requests, arrow (pinned in requirements/reconciler.txt): the reconciler's alone",
        )
        instances = [{"url": token.url, "token_secret": token.secret.secret_arn} for token in self.tokens]
        self.layer = layer
        self.instances_json = Stack.of(self).to_json_string(instances)
        self.function = functions.add(
            "Reconciler",
            handler=HANDLER,
            description=f"Every {config.reconcile_minutes} min: Canvas's SIS Import API -> the same core "
            "(aborted, stuck and lost imports)",
            environment={
                **store_env,
                "CANVAS_INSTANCES": self.instances_json,
                "RECONCILE_LOOKBACK_HOURS": str(config.reconcile_lookback_hours),
                "STUCK_MINUTES": stuck_minutes(config),
                **rhythm_env(config),
            },
            timeout=TIMEOUT,
            memory_size=MEMORY_MB,
            # One slot per Canvas instance (the schedule invokes once per instance), at most MAX_PARALLEL: an
            # instance's passes never overlap while each ends within its interval; 0: no reservation.
            reserved_concurrency=min(len(self.tokens), MAX_PARALLEL) if config.reconciler_concurrency else 0,
            layers=[layer],
        )
        grant_items(self.function, table, "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                    "dynamodb:UpdateItem")
        grant_index_query(self.function, table, shape.OPEN_INDEX)
        # GetSecretValue alone (what Powertools' get_secret calls), on these secrets alone; they use the
        # AWS managed key, whose key policy already lets this account's Secrets Manager callers decrypt.
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["secretsmanager:GetSecretValue"],
            resource_arns=[token.secret.secret_arn for token in self.tokens],
        )

        interval = Duration.minutes(config.reconcile_minutes)
        # A pass that fails is not retried: the next one, an interval later, tries again. A pass that
        # cannot start (the one before still runs: reserved concurrency 1) waits at most one interval in
        # Lambda's queue, then is dropped, so that passes never pile up behind a slow Canvas.
        max_age = Duration.seconds(min(max(interval.to_seconds(), 60), 6 * 3600))
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=max_age)
        # Fan-out: one invocation per instance, naming it ({"instance": <base URL>}), so that a consortium's
        # instances are reconciled side by side, each pass on its own clock (timeout, throttling) rather than
        # one after another in one function. A rule takes at most 5 targets.
        urls = [token.url for token in self.tokens]
        self.schedules = [
            events.Rule(
                self,
                "Schedule" if start == 0 else f"Schedule{start // TARGETS_PER_RULE + 1}",
                description=f"A reconcile pass every {config.reconcile_minutes} min, one per Canvas instance",
                schedule=events.Schedule.rate(interval),
                targets=[targets.LambdaFunction(self.function, event=events.RuleTargetInput.from_object({"instance": url}),
                                                retry_attempts=0, max_event_age=max_age)
                         for url in urls[start:start + TARGETS_PER_RULE]],
            )
            for start in range(0, len(urls), TARGETS_PER_RULE)
        ]
