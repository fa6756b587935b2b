"""The monitor monitored (issue 11): CloudWatch alarms on the ops topic, and one dashboard (dashboard=true).

Every alarm's description says what it means and what to do, and names its entry in docs/runbook.md
(`Runbook: "<title>"`); a test holds the two together. Written with aws-cdk-lib's CloudWatch
constructs rather than cdk-monitoring-constructs: most alarms here are on this app's own metrics
(heartbeat, 401/403 surge, reconcile passes), which that library would wrap in the same definitions,
and its jsii assembly is loaded at every synth for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import StackConfig

NAMESPACE = "CanvasSisImports"
SERVICE = "canvas-sis-imports"  # the functions' POWERTOOLS_SERVICE_NAME: every metric's `service` dimension
FIVE_MINUTES = Duration.minutes(5)
RUNBOOK = "docs/runbook.md"
# Thresholds that are not context settings (README, Operations; docs/runbook.md).
CANVAS_QUEUE_AGE_SECONDS = 15 * 60  # the consumer takes a message within seconds; 15 min means it is not
ITERATOR_AGE_MS = 10 * 60 * 1000  # alerts more than 10 minutes behind their write
API_5XX_PER_5_MINUTES = 5
RECONCILE_FAILED_PASSES = 3  # in a row: one failed pass (Canvas throttled, a blip) is retried by the next


@dataclass(frozen=True)
class Runbook:
    """An entry of docs/runbook.md: its title (a heading there), and the gist an alarm email carries."""

    title: str
    means: str
    todo: str

    def describe(self, detail: str = "") -> str:
        text = f"{self.means}{' ' + detail if detail else ''} {self.todo} Runbook: \"{self.title}\" in {RUNBOOK}."
        return text[:1024]  # CloudWatch's limit


ENTRIES = {
    "canvas_dlq": Runbook(
        "Canvas queue dead letters",
        "Events from Canvas's SQS transport failed 5 times and wait in the dead-letter queue (kept 4 days).",
        "Find why in the SQS consumer's log, fix it, then: make redrive ARGS=\"--stack <stack> --which canvas\".",
    ),
    "eventbridge_dlq": Runbook(
        "EventBridge dead letters",
        "Events put on the bus could not be delivered to, or failed in, the EventBridge consumer (kept 4 days).",
        "Find why in the consumer's log, fix it, then: make redrive ARGS=\"--stack <stack> --which eventbridge\".",
    ),
    "notifier_dlq": Runbook(
        "Notifier failures",
        "Table stream records the notifier could not handle (each message says why): their alerts were not sent.",
        "Read the reason and the notifier's log, fix it, then check the batches they name with make status.",
    ),
    "chat_dlq": Runbook(
        "Chat messages not delivered",
        "Alerts the Slack/Teams webhook did not take after the retries wait in the chat failure queue.",
        "Check the webhook (revoked, channel archived) in the chat function's log; the alert topic still has them.",
    ),
    "dead_letters": Runbook(
        "Dead letters waiting",
        "Messages wait in a dead-letter queue of the stack (its name is in this alarm's name).",
        "Read why in the log of the function that feeds it, fix it, then move or delete the messages.",
    ),
    "alert_retry_dlq": Runbook(
        "Alerts SNS refused for a day",
        "Alerts the alert topic kept refusing for 24 hours wait in the alert-retry dead-letter queue (14 days).",
        "Fix the topic (its policy, its key, a deleted topic), then: make redrive ARGS=\"--stack <stack>\".",
    ),
    "canvas_queue_age": Runbook(
        "Canvas queue backing up",
        "The oldest message on the Canvas queue is over 15 minutes old: the SQS consumer is not keeping up.",
        "Check the consumer's errors and throttles; raise sqs_concurrency/sqs_max_concurrency if it is throttled.",
    ),
    "errors": Runbook(
        "Function errors",
        "A function failed (an unhandled error or a timeout).",
        "Read its log for the error; the event is retried (or dead-lettered) by its trigger.",
    ),
    "throttles": Runbook(
        "Function throttled",
        "A function was throttled at its reserved concurrency.",
        "If it is sustained, raise that function's *_concurrency context setting (or the account's quota).",
    ),
    "iterator_age": Runbook(
        "Alerts delayed",
        "The notifier is more than 10 minutes behind the table's stream: alerts go out late.",
        "Check the notifier's errors, throttles and AlertsFailed; raise notifier_concurrency if throttled.",
    ),
    "api_5xx": Runbook(
        "Webhook answering 5xx",
        "The HTTP API answered 5xx 5 or more times in 5 minutes: Canvas retries, then counts them as errors.",
        "Check IngestFailures and the ingest function's errors (DynamoDB, the JWKS, the token secret).",
    ),
    "auth_surge": Runbook(
        "Surge of 401/403 answers",
        "Many events were refused as unauthorized (401) or from a Canvas not allowed (403) within an hour. "
        "Canvas switches a subscription off after 28,000 errors in 24 hours and tells only its creator.",
        "Read the refusals' reasons in the ingest log: a signing or token change, or a root account to allow.",
    ),
    "ingest_failures": Runbook(
        "Events not stored",
        "IngestFailures: events could not be stored on our side (DynamoDB, the JWKS or the secret); "
        "senders retry.",
        "Read the ingest log's exception; check DynamoDB throttling and the Canvas JWKS URL.",
    ),
    "alerts_failed": Runbook(
        "Alerts failing to publish",
        "AlertsFailed: the notifier could not publish to the alert topic; the stream retries for 24 hours.",
        "Read the notifier's log; check the alert topic exists and the notifier may publish to it.",
    ),
    "reconcile_failures": Runbook(
        "Reconcile passes failing",
        "The reconciler's last 3 passes failed (Canvas down, a 401, throttled past the backoff): aborted and "
        "stuck imports are not being found.",
        "Read the reconciler's log; rotate the Canvas API token if it is 401, or give it a token of its own.",
    ),
    "heartbeat": Runbook(
        "No SIS events",
        "No SIS import event was accepted for heartbeat_hours: SIS imports are scheduled, so silence means a "
        "broken Live Events subscription, not a quiet day.",
        "Check Canvas's Live Events subscription (re-enable it) and the 401/403 refusals.",
    ),
}


@dataclass(frozen=True)
class DeadLetters:
    """A queue where failures wait: any message in it is an alarm."""

    slug: str  # the alarm's name, after the stack's
    entry: str  # its runbook entry (ENTRIES)
    label: str  # on the dashboard
    queue: sqs.IQueue


# Where each dead-letter queue of the stack is made (its construct path) -> its alarm and runbook entry.
KNOWN_DEAD_LETTERS = {
    "CanvasQueue/DeadLetters": ("canvas-dlq", "canvas_dlq", "Canvas queue"),
    "Events/DeadLetters": ("eventbridge-dlq", "eventbridge_dlq", "EventBridge"),
    "Alerts/NotifierFailures": ("notifier-failures", "notifier_dlq", "notifier failures"),
    "Alerts/AlertRetryDeadLetters": ("alert-retry-dlq", "alert_retry_dlq", "alerts refused"),
    "Chat/Failures": ("chat-failures", "chat_dlq", "chat failures"),
}


def dead_letter_queues(stack: Construct) -> list[DeadLetters]:
    """Every dead-letter queue of the stack: a queue another queue's redrive policy names, or one made as
    a place for failures (named ...DeadLetters or ...Failures). One that KNOWN_DEAD_LETTERS does not
    name yet is still watched, under the runbook's general entry."""
    queues = [c for c in stack.node.find_all() if isinstance(c, sqs.Queue)]
    targets = {q.dead_letter_queue.queue.node.path for q in queues if q.dead_letter_queue is not None}
    found = []
    for queue in queues:
        path = queue.node.path.split("/", 1)[1]  # without the stack's id
        if queue.node.path not in targets and not re.search(r"(DeadLetters|Failures)$", queue.node.id):
            continue
        slug, entry, label = KNOWN_DEAD_LETTERS.get(
            path, (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-"), "dead_letters", path))
        found.append(DeadLetters(slug, entry, label, queue))
    return found


def handler_functions(functions: Construct) -> dict[str, lambda_.IFunction]:
    """Every function the Functions construct made (Ingest, Query, Notifier, ...), by its construct id."""
    return {c.node.id: c for c in functions.node.children if isinstance(c, lambda_.Function)}


@dataclass(frozen=True)
class Monitored:
    """What the stack made, for the alarms and the dashboard (None: not deployed in this stack)."""

    functions: dict[str, lambda_.IFunction]  # name -> function (Ingest, Query, Notifier, ...)
    notifier: lambda_.IFunction
    api: apigwv2.HttpApi
    dead_letters: list[DeadLetters]
    canvas_queue: sqs.IQueue | None
    reconciler: lambda_.IFunction | None


def app_metric(name: str, *, statistic: str = "Sum", period: Duration = FIVE_MINUTES, label: str | None = None,
               **dimensions: str) -> cloudwatch.Metric:
    """One of the functions' own metrics (Powertools EMF: namespace, `service`, and any other dimension)."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, statistic=statistic, period=period,
                             dimensions_map={"service": SERVICE, **dimensions}, label=label)


def search(metric_name: str, statistic: str, period: Duration, label: str) -> cloudwatch.MathExpression:
    """Every dimension set of a metric (ImportsFinished by outcome, EventsRejected by reason, ...)."""
    seconds = int(period.to_seconds())
    return cloudwatch.MathExpression(
        expression=f"SEARCH('Namespace=\"{NAMESPACE}\" MetricName=\"{metric_name}\"', '{statistic}', {seconds})",
        using_metrics={}, label=label, period=period,
    )


class Monitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, topic: sns.ITopic,
                 monitored: Monitored) -> None:
        super().__init__(scope, construct_id)
        self._prefix = Stack.of(self).stack_name
        self._action = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        m = monitored

        # Dead letters, and the Canvas queue's backlog.
        for dead in m.dead_letters:
            self._alarm(dead.slug, dead.entry, dead.queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=FIVE_MINUTES), threshold=1)
        if m.canvas_queue is not None:
            self._alarm("canvas-queue-age", "canvas_queue_age", m.canvas_queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=FIVE_MINUTES), threshold=CANVAS_QUEUE_AGE_SECONDS)

        # Each function's errors and throttles; the notifier's place in the stream.
        for name, function in m.functions.items():
            slug = re.sub(r"(?<!^)(?=[A-Z][a-z])", "-", name.replace("EventBridge", "Eventbridge")).lower()
            self._alarm(f"{slug}-errors", "errors", function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                        threshold=1, detail=f"Function: {name}.")
            self._alarm(f"{slug}-throttles", "throttles",
                        function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
                        threshold=1, detail=f"Function: {name} ({concurrency_key(name)}).")
        self._alarm("notifier-iterator-age", "iterator_age",
                    m.notifier.metric("IteratorAge", statistic="Maximum", period=FIVE_MINUTES), threshold=ITERATOR_AGE_MS)

        # The HTTP API: our 5xx, and refusals that Canvas would count against its subscription.
        self._alarm("api-5xx", "api_5xx", m.api.metric_server_error(statistic="Sum", period=FIVE_MINUTES),
                    threshold=API_5XX_PER_5_MINUTES)
        hour = Duration.hours(1)
        refused = cloudwatch.MathExpression(
            expression="FILL(unauthorized, 0) + FILL(forbidden, 0)",
            using_metrics={"unauthorized": app_metric("EventsRejected", period=hour, reason="unauthorized"),
                           "forbidden": app_metric("EventsRejected", period=hour, reason="not_allowed")},
            label="401 + 403 answers", period=hour,
        )
        self._alarm("auth-refusals", "auth_surge", refused, threshold=config.auth_failures_per_hour,
                    detail=f"Threshold: {config.auth_failures_per_hour} in an hour.")

        # The app's own failure counts.
        self._alarm("ingest-failures", "ingest_failures", app_metric("IngestFailures"), threshold=1)
        self._alarm("alerts-failed", "alerts_failed", app_metric("AlertsFailed"), threshold=1)
        if m.reconciler is not None:
            every = Duration.minutes(config.reconcile_minutes)
            self._alarm("reconcile-failures", "reconcile_failures", app_metric("ReconcileFailures", period=every),
                        threshold=1, periods=RECONCILE_FAILED_PASSES)

        # Silence: Canvas's scheduled imports stopped reaching us. Hourly periods (an alarm may look back
        # at most 7 days); a period without data (no event at all) counts as breaching.
        if config.heartbeat_hours:
            self._alarm("heartbeat", "heartbeat", app_metric("EventsAccepted", period=hour), threshold=1,
                        periods=config.heartbeat_hours,
                        comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                        missing=cloudwatch.TreatMissingData.BREACHING,
                        detail=f"heartbeat_hours: {config.heartbeat_hours}.")

        # $3 a month whether anyone looks or not: made when asked for (dashboard=true). The alarms, the metrics
        # and the runbook's commands are there either way.
        self.dashboard = self._dashboard(config, m) if config.dashboard else None

    def _alarm(self, slug: str, entry: str, metric: cloudwatch.IMetric, *, threshold: float, periods: int = 1,
               comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
               detail: str = "") -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "Alarm-" + slug,
            alarm_name=f"{self._prefix}-{slug}",
            alarm_description=ENTRIES[entry].describe(detail),
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)  # and when it is over
        self.alarms.append(alarm)
        return alarm

    def _dashboard(self, config: StackConfig, m: Monitored) -> cloudwatch.Dashboard:
        hour, width = Duration.hours(1), 8
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"CanvasSisImports-{config.stage}",
            default_interval=Duration.days(7),
        )

        def graph(title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None,
                  stacked: bool = False) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=left, right=right or [], width=width, height=6,
                                          stacked=stacked)

        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"## Canvas SIS imports ({config.stage})\nRecent imports: `make status ARGS=\"--stack "
                f"{self._prefix}\"`. Every alarm's entry is in `{RUNBOOK}`.",
                width=24, height=2,
            )
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=4))
        # Durations against their usual band: CloudWatch's anomaly detection model of the hourly median,
        # declared so that it learns from the deploy on (the band is drawn 2 standard deviations wide).
        median = app_metric("ImportDuration", statistic="p50", period=hour, label="median")
        cloudwatch.CfnAnomalyDetector(
            self, "ImportDurationModel",
            single_metric_anomaly_detector=cloudwatch.CfnAnomalyDetector.SingleMetricAnomalyDetectorProperty(
                namespace=NAMESPACE, metric_name="ImportDuration", stat="p50",
                dimensions=[cloudwatch.CfnAnomalyDetector.DimensionProperty(name="service", value=SERVICE)]))
        band = cloudwatch.MathExpression(expression="ANOMALY_DETECTION_BAND(median, 2)", using_metrics={"median": median},
                                         label="usual band", period=hour)
        dashboard.add_widgets(
            graph("Imports finished per hour, by outcome", [search("ImportsFinished", "Sum", hour, "finished")],
                  stacked=True),
            graph("Import duration (seconds) against the usual band",
                  [median, band, app_metric("ImportDuration", statistic="p90", period=hour, label="p90"),
                   app_metric("ImportDuration", statistic="Maximum", period=hour, label="max")]),
            graph("Stuck and missed imports (reconciler)",
                  [app_metric(n, period=hour) for n in ("ImportsStuck", "StatesCorrected", "EventsMissed")],
                  [app_metric("ImportsSeen", period=hour),
                   app_metric("ImportsOpen", statistic="Maximum", period=hour, label="open (last pass)")]),
        )
        # The detailed metrics (observability.DETAILED_ONLY) are emitted whenever the dashboard is made.
        events = [app_metric(n, period=hour) for n in ("EventsAccepted", "EventsApplied", "EventsLate",
                                                       "EventsDuplicate", "EventsIgnored", "EventsTooOld")]
        dashboard.add_widgets(
            graph("Events", events),
            graph("Events rejected, by reason", [search("EventsRejected", "Sum", hour, "rejected")]),
            graph("Alerts", [app_metric(n, period=hour) for n in ("AlertsPublished", "AlertsFailed", "IngestFailures")]),
        )
        canvas = []
        if m.canvas_queue is not None:
            canvas = [m.canvas_queue.metric_approximate_age_of_oldest_message(statistic="Maximum",
                                                                               label="Canvas queue: oldest (s)")]
        dashboard.add_widgets(
            graph("Dead letters (messages waiting)",
                  [d.queue.metric_approximate_number_of_messages_visible(statistic="Maximum", label=d.label)
                   for d in m.dead_letters], canvas),
            graph("Function errors", [f.metric_errors(statistic="Sum", label=n) for n, f in m.functions.items()]),
            graph("Function throttles", [f.metric_throttles(statistic="Sum", label=n) for n, f in m.functions.items()]),
        )
        dashboard.add_widgets(
            graph("Function duration p90 (ms)",
                  [f.metric_duration(statistic="p90", label=n) for n, f in m.functions.items()]),
            graph("HTTP API", [m.api.metric_count(statistic="Sum", label="requests"),
                               m.api.metric_client_error(statistic="Sum", label="4xx"),
                               m.api.metric_server_error(statistic="Sum", label="5xx")]),
            graph("Latency p90 (ms)", [m.api.metric_latency(statistic="p90", label="API"),
                                       m.api.metric_integration_latency(statistic="p90", label="integration")],
                  [m.notifier.metric("IteratorAge", statistic="Maximum", label="notifier iterator age")]),
        )
        if m.reconciler is not None:
            dashboard.add_widgets(
                graph("Canvas API (reconciler)",
                      [app_metric("CanvasRequests", period=hour), app_metric("CanvasThrottled", period=hour)],
                      [app_metric("ReconcileFailures", period=hour)]),
            )
        return dashboard


def concurrency_key(function_name: str) -> str:
    """The context setting that reserves a function's concurrency (README's configuration reference)."""
    return {"Ingest": "ingest_concurrency", "Query": "query_concurrency", "Notifier": "notifier_concurrency",
            "SqsConsumer": "sqs_concurrency", "EventBridgeConsumer": "eventbridge_concurrency",
            "Reconciler": "reconciler_concurrency", "AlertRetry": "2, or none with notifier_concurrency=0",
            "ChatSlack": "2, or none with notifier_concurrency=0",
            "ChatTeams": "2, or none with notifier_concurrency=0"}.get(function_name,
                                                                                    "no reservation: the account's quota")
