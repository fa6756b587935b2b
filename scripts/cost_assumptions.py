"""What `make cost`'s model assumes about traffic and about the code's behaviour (ASSUMPTIONS, each figure with
where it comes from), and the tables of what the code does (which index keys change when, which custom metrics
are emitted how often). scripts/cost_model.py prices with them; no AWS, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Assumptions:
    # Canvas sends an import's life as sis_batch_created (initializing), then sis_batch_updated for
    # created, importing and its end: 4 events, and one end, so one alert, per import.
    events_per_import: int = 4
    # Alerts by outcome. A guess (most SIS imports succeed), not a measurement: say so when quoting.
    outcome_mix: dict[str, float] = field(default_factory=lambda: {"success": 0.90, "warning": 0.08, "failure": 0.02})
    # Which transport carries the events: the HTTPS webhook (the default Canvas subscription).
    via_https: float = 1.0
    via_sqs: float = 0.0
    via_eventbridge: float = 0.0
    # Warm duration billed per invocation (ms), at the functions' memory. Not measured on AWS: `make bench`
    # measures cold imports, not warm calls. Ingest: JWT check + one conditional UpdateItem; notifier: one
    # SNS publish per record.
    duration_ms: dict[str, float] = field(default_factory=lambda: {
        "ingest": 30, "sqs_consumer": 40, "eventbridge": 30, "notifier": 60, "query": 30, "alert_retry": 60,
        "chat_webhook": 300})
    # A reconcile pass for one instance: a base (accounts/self or the marker read, one index query, the first
    # listing page) and each further page of 100 imports (the README's pass over 1,000 imports: 11 pages).
    reconcile_pass_base_seconds: float = 1.0
    reconcile_page_seconds: float = 0.25
    # Cold starts: Lambda bills the init phase. At most one per function per hour in use (environments are
    # recycled every few hours even under load; a 5-minute schedule mostly finds a warm one), each this long.
    cold_starts_per_hour: float = 1.0
    init_seconds: float = 0.5
    # Log bytes per invocation. The line per event is ~740 bytes with a real ARN and function name (600
    # measured under test names), logged at DEBUG (usecases/ingest.py): only by invocations sampled at DEBUG
    # (POWERTOOLS_LOGGER_SAMPLE_RATE), and only when Lambda's application log level lets DEBUG through.
    # EMF metrics blobs per call, and what the detailed metrics add to them: the ingress functions'
    # EventsAccepted alone (225 bytes measured, and CloudWatch's 26 bytes an event), with EventsApplied 50
    # more; the notifier's ImportsFinished and AlertsPublished + ImportDuration, detailed only; the
    # reconciler's pass blob (nothing on a pass with nothing to put right, but for detailed metrics).
    # Lambda's platform lines in JSON (platform.start, platform.report) ~500 bytes, INFO. The notifier writes
    # one line per alert (usecases/notify.py): at INFO for an alert that is not a plain success (see
    # plain_success_share), at DEBUG for a plain success; the reconciler one summary line per pass. The event
    # functions' INFO lines (refusals) are left out (rare).
    debug_log_bytes: dict[str, int] = field(default_factory=lambda: {
        "ingest": 740, "sqs_consumer": 740, "eventbridge": 740, "notifier": 740})
    app_log_bytes: dict[str, int] = field(default_factory=lambda: {
        "notifier": 740, "query": 600, "alert_retry": 600, "chat_webhook": 600, "reconciler": 1000})
    emf_bytes: dict[str, int] = field(default_factory=lambda: {
        "ingest": 250, "sqs_consumer": 250, "eventbridge": 250, "query": 300, "alert_retry": 300,
        "chat_webhook": 300})
    emf_detailed_extra_bytes: dict[str, int] = field(default_factory=lambda: {
        "ingest": 50, "sqs_consumer": 50, "eventbridge": 50, "notifier": 600, "reconciler": 450})
    platform_log_bytes: int = 500
    access_log_bytes: int = 250  # one API Gateway access log line (the stage's 11-field JSON format)
    # DynamoDB: an item stays under 1 KB through a 4-event import (631 to 883 bytes measured on the
    # tests' example import), so each write of it is 1 WRU; an index entry of a few projected attributes too.
    item_bytes: int = 900
    index_entry_overhead_bytes: int = 100
    index_projected_bytes: int = 200  # an INCLUDE projection's attributes (KEYS_ONLY: none)
    # The reconciler per pass and root account: the marker GetItem (strongly consistent, 1 RRU) and one
    # query of the open-batches index (eventually consistent, 0.5 RRU per 4 KB); no write when nothing changed.
    reconcile_read_units: float = 1.5
    # Secrets: Powertools Parameters caches a secret 5 minutes, so at most this many reads an hour per reader.
    secret_reads_per_hour: float = 12
    # Ends whose figures are unusual against the school's history (the `unusual` attribute an email filter
    # may admit whatever the outcome): a guess, as the outcome mix is.
    unusual_share: float = 0.02
    # How long an import stays open (initializing to its end), in hours: the reconciler's ImportsOpen is
    # emitted only in hours when some batch is open at a pass. A guess: most SIS imports run minutes.
    open_hours_per_import: float = 0.25
    # X-Ray's default sampling rule: the first request each second, then 5% of the rest (traffic assumed
    # spread evenly over the month).
    xray_reservoir_per_second: float = 1.0
    xray_rate: float = 0.05
    # SNS reuses a topic's data key up to 5 minutes per publishing principal, at 2 KMS requests each
    # (the SNS developer guide's "Estimating AWS KMS costs").
    sns_data_key_seconds: int = 300
    # SQS event sources long-poll (20 s) with 5 pollers while the queue is empty.
    sqs_idle_pollers: int = 5
    sqs_poll_seconds: int = 20
    # The school's history (issue 17), items sized by scripts/bench_unusual.py (DynamoDB's rule: names plus
    # values, as the store writes them). A shape's baseline with 30 ends: 276 bytes on the simulator, 1,014 at
    # the largest figures Canvas reports (its ends packed: 1 write unit; 1,434 bytes and 2 units as text
    # lines). The rhythm: 777 bytes at 30 creations, 2,411 at its full 120 (3 write units). Both are read
    # strongly consistent (1 read unit up to 4 KB), but for the notifier's baseline read (eventually consistent:
    # half a unit).
    baseline_item_bytes: int = 1014
    rhythm_item_bytes: int = 2411
    # What an unusual end's mark adds to its batch's item (`unusual`, the names of the unusual figures).
    unusual_mark_bytes: int = 40


ASSUMPTIONS = Assumptions()

# When a table attribute that keys an index changes, per the store's UpdateItem (functions/sis_imports/store.py):
# "fixed" never, "every_event" on every event, "while_open" set at a batch's first event and removed at its end.
# first_event_at is set by a batch's first write and kept (if_not_exists); only an event older than the
# first one seen, which out-of-order delivery makes rare, moves it.
KEY_LIFECYCLE = {"root_account_uuid": "fixed", "sis_batch_id": "fixed", "last_event_at": "every_event",
                 "first_event_at": "fixed", "open_since": "while_open"}
OPEN_KEY = "open_since"  # the sparse index of open batches, which the reconciler reads every pass
# Attributes every event's write changes (the store's SET list): an index projecting one is rewritten.
CHANGED_BY_EVERY_EVENT = frozenset({"workflow_state", "event_time", "order_key", "last_event_at", "history", "version",
                                    "expires_at", "terminal"})

# The custom metrics the functions emit (functions/sis_imports/adapters/observability.py and its count()
# calls), each a metric name x dimension set, billed for the hours it is emitted in; count() emits no zero.
# `rate` names what it is emitted per, a month; `role` the function that must be deployed. Rejections,
# late and duplicate events are left out (rare).
CUSTOM_METRICS: tuple[tuple[str, str, str], ...] = (
    # the reconciler's pass summary: every pass asks Canvas at least once; it sees imports when its window
    # holds any; some are open when an import runs during the hour
    ("CanvasRequests", "reconciler", "passes"),
    ("ImportsSeen", "reconciler", "imports_in_window"),
    ("ImportsOpen", "reconciler", "imports_open"),
    ("EventsAccepted", "ingest", "events"),
    ("EventsApplied", "ingest", "events"),
    ("AlertsPublished", "notifier", "alerts"),
    ("ImportDuration", "notifier", "alerts"),
    ("ImportsFinished outcome=success", "notifier", "alerts_success"),
    ("ImportsFinished outcome=warning", "notifier", "alerts_warning"),
    ("ImportsFinished outcome=failure", "notifier", "alerts_failure"),
)

# Emitted only with the context setting detailed_metrics=true or dashboard=true (the functions'
# DETAILED_METRICS; the code's observability.DETAILED_ONLY, which a test holds equal): priced only when the
# template sets it.
DETAILED_METRICS = frozenset({"EventsApplied", "AlertsPublished", "ImportsSeen", "CanvasRequests", "ImportsOpen",
                              "ImportsFinished", "ImportDuration"})

# Emitted only when something goes wrong or someone asks (refusals, late or duplicate events, failures, the
# query route, chat): not priced. A test checks that these and CUSTOM_METRICS are every name the code emits.
UNPRICED_METRICS = frozenset({
    "EventsLate", "EventsDuplicate", "EventsIgnored", "EventsTooOld", "EventsRejected", "IngestFailures",
    "AlertsFailed", "AlertsDeferred", "AlertsParked", "AlertsRepublished", "RecordsUnreadable", "BatchQueries",
    "BatchLists", "ReconcileFailures", "ChatMessagesDelivered", "ChatMessagesFailed",
    # the reconciler's, zero on a pass that found nothing to put right (not emitted then)
    "StatesCorrected", "EventsMissed", "ImportsStuck", "CanvasThrottled"})
