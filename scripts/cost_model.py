"""The monthly bill's arithmetic: a Deployment (read from the template by scripts/cost.py), a traffic
figure and unit prices in, one priced line per item out. No AWS, no template parsing, no I/O.

Everything this model assumes about traffic and about the code's behaviour is in ASSUMPTIONS and the
tables beside it (scripts/cost_assumptions.py), each with where the figure comes from; the prices are in
scripts/prices.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Re-exported: the model's callers and tests name them as the model's.
from scripts.cost_assumptions import (  # noqa: F401
    ASSUMPTIONS, CHANGED_BY_EVERY_EVENT, CUSTOM_METRICS, DETAILED_METRICS, KEY_LIFECYCLE, OPEN_KEY, UNPRICED_METRICS,
    Assumptions)

HOURS_PER_MONTH = 730  # AWS's own month in its pricing examples
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1024**3
NEVER_EXPIRES_DAYS = 365  # a log group without retention is priced as holding a year


@dataclass(frozen=True)
class Function:
    name: str
    role: str  # the handler module: ingest, notifier, reconciler, ...
    memory_mb: int
    architecture: str  # x86_64 or arm64
    tracing: bool  # X-Ray active tracing
    timeout_seconds: int
    app_log_level: str  # Lambda's ApplicationLogLevel (what it lets through of the code's lines)
    system_log_level: str  # Lambda's platform lines (INFO unless set)
    log_retention_days: int | None
    code_log_level: str = "INFO"  # the logger's own level (POWERTOOLS_LOG_LEVEL / LOG_LEVEL)
    log_sample_rate: float = 0.0  # POWERTOOLS_LOGGER_SAMPLE_RATE: invocations logged at DEBUG


@dataclass(frozen=True)
class Alarm:
    metrics: int  # alarm metrics billed: 1, or each metric of a metric-math alarm
    high_resolution: bool = False
    composite: bool = False


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY, INCLUDE
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deployment:
    functions: tuple[Function, ...]
    alarms: tuple[Alarm, ...] = ()
    dashboards: int = 0
    kms_keys: int = 0
    polled_queues: int = 0  # SQS queues a Lambda event source long-polls
    indexes: tuple[Index, ...] = ()
    point_in_time_recovery: bool = False
    secrets: int = 0
    token_secret_readers: int = 0  # functions reading a shared token per request path (auth_mode=token)
    canvas_instances: int = 0
    root_accounts: int = 1
    reconcile_minutes: float = 5
    reconcile_lookback_hours: float = 48
    retention_days: int = 90
    access_log_retention_days: int | None = None  # None: the API logs no access lines
    detailed_metrics: bool = False  # DETAILED_METRICS emitted too (the functions' DETAILED_METRICS=true)
    # Functions publishing to the alert topic when it is KMS-encrypted (0: not encrypted).
    alert_topic_kms_publishers: int = 0
    # One entry per email subscription to the alert topic: the outcomes its filter admits, with "unusual" when
    # it admits an unusual end whatever its outcome (None: every alert).
    email_subscriptions: tuple[frozenset[str] | None, ...] = ()
    # The notifier compares each end with its shape's baseline (ANOMALY_SENSITIVITY above 0, with the table
    # and the Canvas instances to read): a GetItem per end alert, an UpdateItem per successful end it records.
    unusual_check: bool = False


@dataclass(frozen=True)
class Line:
    group: str
    item: str
    usd: float
    detail: str = ""


def _money(x: float) -> str:
    return f"${x:,.4f}".rstrip("0").rstrip(".") if x < 0.01 else f"${x:,.2f}"


def index_writes_per_import(index: Index, events: int) -> int:
    """Index writes (each ≤ 1 KB: 1 WRU) over one import's `events` in-order writes, by DynamoDB's rules:
    a new entry is one put; a changed key is a delete and a put; a key removed is one delete; an entry
    whose key stays is rewritten only when a projected attribute changed."""
    kinds = set()
    for key in index.keys:
        if key not in KEY_LIFECYCLE:
            raise ValueError(f"index {index.name}: no rule for when its key attribute {key!r} changes "
                             f"(add it to KEY_LIFECYCLE in scripts/cost_assumptions.py)")
        kinds.add(KEY_LIFECYCLE[key])
    projected_changes = index.projection == "ALL" or (
        index.projection == "INCLUDE" and bool(CHANGED_BY_EVERY_EVENT & set(index.attributes)))
    later = events - 1
    if "every_event" in kinds:
        return 1 + 2 * later
    if "while_open" in kinds:  # put at the first event, rewritten while open, deleted at the end
        return 1 + (later - 1) * int(projected_changes) + 1
    return 1 + later * int(projected_changes)


def _passes_finding(per_month: float, passes: float) -> float:
    """Passes of one instance that find at least one new thing of which `per_month` come, evenly at random."""
    return passes * (1 - math.exp(-per_month / passes)) if passes else 0.0


def mark_writes(d: Deployment, a: Assumptions) -> int:
    """Write units of one unusual mark: the ended batch's item with the mark, and each index that holds an ended
    batch (no key removed at the end) and projects the mark."""
    held = [i for i in d.indexes if all(KEY_LIFECYCLE.get(k) != "while_open" for k in i.keys)]
    projecting = sum(1 for i in held if i.projection == "ALL" or "unusual" in i.attributes)
    return math.ceil((a.item_bytes + a.unusual_mark_bytes) / 1024) + projecting


def _admitted(outcomes: frozenset[str], a: Assumptions) -> float:
    """The share of end alerts an email filter lets through: its outcomes, and with "unusual" the unusual
    ends of the other outcomes too."""
    share = sum(a.outcome_mix.get(o, 0) for o in outcomes)
    if "unusual" in outcomes:
        share += a.unusual_share * (1 - share)
    return share


def plain_success_share(a: Assumptions) -> float:
    """The share of end alerts that are a success whose figures are not unusual: the notifier logs their
    line at DEBUG, every other alert's at INFO."""
    return a.outcome_mix.get("success", 0) * (1 - a.unusual_share)


def sampled_traces(invocations: float, a: Assumptions) -> float:
    reservoir = a.xray_reservoir_per_second * SECONDS_PER_MONTH
    return min(invocations, reservoir) + a.xray_rate * max(0.0, invocations - reservoir)


def hours_emitted(per_month: float) -> float:
    """Fraction of the month's hours in which something happening `per_month` times (evenly, at random)
    happens at least once: a custom metric is billed for those hours only."""
    return 1 - math.exp(-per_month / HOURS_PER_MONTH)


def monthly_bill(d: Deployment, events: float, emails: int | None, p: dict[str, float],
                 a: Assumptions = ASSUMPTIONS) -> list[Line]:
    """The month's bill, line by line. `emails`: email subscribers to every alert, or None for the
    template's own email subscriptions (with their filters)."""
    lines: list[Line] = []
    add = lambda group, item, usd, detail="": lines.append(Line(group, item, usd, detail))  # noqa: E731
    roles = {f.role for f in d.functions}
    reconciler = "reconciler" in roles
    imports = events / a.events_per_import
    alerts = imports
    passes = HOURS_PER_MONTH * 60 / d.reconcile_minutes if reconciler else 0.0
    open_per_month = imports * (1 + a.open_hours_per_import)  # imports that overlap some hour: open at its passes
    per = {"events": events, "alerts": alerts, "passes": passes,
           "imports_in_window": imports * d.reconcile_lookback_hours if reconciler else 0.0,
           "imports_open": open_per_month if reconciler else 0.0,
           **{f"alerts_{o}": alerts * share for o, share in a.outcome_mix.items()}}

    # Fixed: CloudWatch, KMS, Secrets Manager, idle SQS polling.
    standard = sum(x.metrics for x in d.alarms if not x.high_resolution and not x.composite)
    high = sum(x.metrics for x in d.alarms if x.high_resolution and not x.composite)
    composite = sum(1 for x in d.alarms if x.composite)
    add("CloudWatch", "dashboards", d.dashboards * p["cloudwatch_dashboard"],
        f"{d.dashboards} x {_money(p['cloudwatch_dashboard'])}")
    add("CloudWatch", "alarms", standard * p["cloudwatch_alarm_metric_standard"]
        + high * p["cloudwatch_alarm_metric_high_resolution"] + composite * p["cloudwatch_alarm_composite"],
        f"{len(d.alarms)} alarms: {standard} standard-resolution and {high} high-resolution alarm metrics, "
        f"{composite} composite")
    metric_months = sum(hours_emitted(per[rate]) for name, role, rate in CUSTOM_METRICS
                        if role in roles and (d.detailed_metrics or name.split()[0] not in DETAILED_METRICS))
    add("CloudWatch", "custom metrics", metric_months * p["cloudwatch_custom_metric"],
        f"{metric_months:.1f} metric-months (name x dimensions, by hours emitted)")
    add("KMS", "customer managed keys", d.kms_keys * p["kms_key_month"], f"{d.kms_keys} key(s)")
    polls = d.polled_queues * a.sqs_idle_pollers * SECONDS_PER_MONTH / a.sqs_poll_seconds
    windows = SECONDS_PER_MONTH / a.sns_data_key_seconds
    kms_requests = d.alert_topic_kms_publishers * 2 * windows * (1 - math.exp(-alerts / windows))
    add("KMS", "requests (alert topic data keys)", kms_requests * p["kms_request"],
        f"{kms_requests:,.0f} requests: {d.alert_topic_kms_publishers} publisher(s), a data key per 5 minutes in use")
    add("SQS", "event source long polls", polls * p["sqs_request"],
        f"{d.polled_queues} queue(s) x {a.sqs_idle_pollers} pollers, {a.sqs_poll_seconds} s polls: "
        f"{polls:,.0f} requests")
    secret_reads = passes * d.canvas_instances
    if reconciler:  # the notifier reads an instance's token for a failure's why
        secret_reads += min(alerts * (1 - a.outcome_mix.get("success", 0)), a.secret_reads_per_hour * HOURS_PER_MONTH)
    secret_reads += d.token_secret_readers * min(events, a.secret_reads_per_hour * HOURS_PER_MONTH)
    add("Secrets Manager", "secrets", d.secrets * p["secret_month"], f"{d.secrets} secret(s)")
    add("Secrets Manager", "API calls", secret_reads * p["secrets_api_call"], f"{secret_reads:,.0f} GetSecretValue")

    # Ingress.
    https = events * a.via_https
    add("Ingress", "HTTP API requests", https * p["http_api_request"], f"{https:,.0f} requests")
    add("Ingress", "EventBridge custom events", events * a.via_eventbridge * p["eventbridge_custom_event"],
        f"{events * a.via_eventbridge:,.0f} events")
    sqs_requests = events * a.via_sqs * (1 + 2 / 10)
    add("Ingress", "Canvas queue requests", sqs_requests * p["sqs_request"],
        f"{sqs_requests:,.0f} requests: Canvas's send per event, a receive and a delete per 10 messages")

    # The school's history (issue 17; usecases/school_history.py, usecases/unusual_ends.py), per Canvas instance
    # (the reconciler reads one root account's each): a pass reads its rhythm, and writes it when a creation is
    # new; it reads a shape's baseline when it lists a new successful end, and writes it (the ends of the pass
    # at once) unless the notifier recorded them first. The notifier reads the baseline for each end alert and
    # records each successful end (one write per end), and marks an unusual end's batch. A rhythm write and a
    # mark pass the notifier's stream filter: each is an invocation more.
    instances = d.canvas_instances if reconciler else 0
    success_ends = alerts * (a.outcome_mix.get("success", 0) + a.outcome_mix.get("warning", 0))
    new_end_passes = instances * _passes_finding(success_ends / max(instances, 1), passes)
    rhythm_writes = instances * _passes_finding(imports / max(instances, 1), passes)
    compares = d.unusual_check and reconciler  # the notifier reads an end's figures from the reconciler's Canvas
    marks = alerts * a.unusual_share if compares else 0.0

    # Lambda, logs and traces per function.
    invocations = {"ingest": https, "sqs_consumer": events * a.via_sqs / 10, "eventbridge": events * a.via_eventbridge,
                   # One invocation per Canvas instance and pass (the schedule's fan-out).
                   "notifier": alerts + rhythm_writes + marks, "reconciler": passes * max(d.canvas_instances, 1),
                   "query": 0.0,
                   "alert_retry": 0.0,
                   "chat_webhook": alerts * (1 - a.outcome_mix.get("success", 0))}
    requests = 0.0
    durations: list[Line] = []
    log_bytes: dict[int | None, float] = {}
    traces = 0.0
    notes = []
    for f in d.functions:
        if f.role not in invocations:
            raise ValueError(f"function {f.name}: no traffic rule for handler module {f.role!r} "
                             f"(add it in scripts/cost_model.py)")
        n = invocations[f.role]
        if f.role == "reconciler":
            # A pass lists what its instance created since the last pass began, less 15 minutes (its high-water
            # mark), at most the lookback window.
            listed_hours = min((d.reconcile_minutes + 15) / 60, d.reconcile_lookback_hours)
            in_window = imports / max(d.canvas_instances, 1) * listed_hours / HOURS_PER_MONTH
            pages = max(1, math.ceil(in_window / 100))  # 100 imports a page
            seconds = a.reconcile_pass_base_seconds + (pages - 1) * a.reconcile_page_seconds
            if seconds > f.timeout_seconds:
                notes.append(f"a reconcile pass would need {seconds:,.0f} s ({pages:,} listing pages): over its "
                             f"{f.timeout_seconds} s timeout; billed at the timeout")
                seconds = f.timeout_seconds
        else:
            seconds = a.duration_ms.get(f.role, 0) / 1000
        cold = min(n, a.cold_starts_per_hour * HOURS_PER_MONTH)
        requests += n
        gbs = (n * seconds + cold * a.init_seconds) * f.memory_mb / 1024
        durations.append(Line("Lambda", f"duration: {f.role}", gbs * p[f"lambda_gb_second_{f.architecture}"],
                              f"{gbs:,.0f} GB-s at {f.memory_mb} MB {f.architecture}, {seconds:g} s a call, "
                              f"{cold:,.0f} inits"))
        per_call = a.emf_bytes.get(f.role, 0) + (a.emf_detailed_extra_bytes.get(f.role, 0) if d.detailed_metrics else 0)
        # the notifier's line per alert: INFO but for a plain success, whose line is DEBUG
        info_share, debug_share = ((1 - plain_success_share(a), plain_success_share(a)) if f.role == "notifier"
                                   else (1.0, 1.0))
        if _level(f.app_log_level) <= _level("INFO") and _level(f.code_log_level) <= _level("INFO"):
            per_call += info_share * a.app_log_bytes.get(f.role, 0)
        if _level(f.app_log_level) <= _level("DEBUG"):
            share = 1.0 if _level(f.code_log_level) <= _level("DEBUG") else f.log_sample_rate
            per_call += share * debug_share * a.debug_log_bytes.get(f.role, 0)
        if _level(f.system_log_level) <= _level("INFO"):
            per_call += a.platform_log_bytes
        log_bytes[f.log_retention_days] = log_bytes.get(f.log_retention_days, 0.0) + n * per_call
        if f.tracing:
            traces += sampled_traces(n, a)
    add("Lambda", "requests", requests * p["lambda_request"], f"{requests:,.0f} invocations")
    lines += durations

    # DynamoDB (on-demand).
    writes_per_import = a.events_per_import * math.ceil(a.item_bytes / 1024) + sum(
        index_writes_per_import(i, a.events_per_import) for i in d.indexes)
    wru = imports * writes_per_import
    index_share = 1 - a.events_per_import * math.ceil(a.item_bytes / 1024) / writes_per_import
    add("DynamoDB", "writes", wru * p["dynamodb_write_request_unit"],
        f"{writes_per_import / a.events_per_import:.2f} WRU/event ({index_share:.0%} for {len(d.indexes)} indexes)")
    rru = passes * d.root_accounts * a.reconcile_read_units
    open_index = next((i for i in d.indexes if OPEN_KEY in i.keys), None)
    if reconciler and open_index is not None and open_index.projection == "KEYS_ONLY":
        # the index gives keys only: each pass reads the open items (eventually consistent, 0.5 RRU per 4 KB);
        # open at a time, by Little's law: imports an hour x hours each is open
        open_items = imports / HOURS_PER_MONTH * a.open_hours_per_import
        rru += passes * open_items * math.ceil(a.item_bytes / 4096) * 0.5
    add("DynamoDB", "reads", rru * p["dynamodb_read_request_unit"], f"{rru:,.0f} RRU (reconciler)")
    add("DynamoDB", "stream reads", alerts * p["dynamodb_stream_read_by_lambda"],
        "by Lambda's event source: not charged")
    entry = sum(a.index_entry_overhead_bytes + (a.item_bytes if i.projection == "ALL" else
                a.index_projected_bytes if i.projection == "INCLUDE" else 0) for i in d.indexes)
    stored_gb = imports * d.retention_days / (HOURS_PER_MONTH / 24) * (a.item_bytes + entry) / GB
    add("DynamoDB", "storage", stored_gb * p["dynamodb_storage_gb_month"],
        f"{stored_gb:,.2f} GB ({d.retention_days} days of batches)")
    if d.point_in_time_recovery:
        add("DynamoDB", "point-in-time recovery", stored_gb * p["dynamodb_pitr_gb_month"], f"{stored_gb:,.2f} GB")
    rru_price, wru_price = p["dynamodb_read_request_unit"], p["dynamodb_write_request_unit"]
    baseline_rru, baseline_wru = math.ceil(a.baseline_item_bytes / 4096), math.ceil(a.baseline_item_bytes / 1024)
    notifier_reads = alerts if compares else 0.0
    baseline_writes = success_ends if compares else new_end_passes
    # the notifier's read is eventually consistent (half a unit), the reconciler's strongly consistent
    add("DynamoDB", "history: baselines", (notifier_reads * 0.5 + new_end_passes) * baseline_rru * rru_price
        + baseline_writes * baseline_wru * wru_price,
        f"{notifier_reads + new_end_passes:,.0f} reads ({notifier_reads:,.0f} by the notifier, eventually "
        f"consistent), {baseline_writes:,.0f} writes; {baseline_rru} RRU (consistent) and {baseline_wru} WRU each "
        f"({a.baseline_item_bytes:,} bytes)")
    rhythm_reads = passes * instances
    rhythm_rru, rhythm_wru = math.ceil(a.rhythm_item_bytes / 4096), math.ceil(a.rhythm_item_bytes / 1024)
    add("DynamoDB", "history: rhythm", rhythm_reads * rhythm_rru * rru_price + rhythm_writes * rhythm_wru * wru_price,
        f"{rhythm_reads:,.0f} reads, {rhythm_writes:,.0f} writes; {rhythm_rru} RRU and {rhythm_wru} WRU each "
        f"({a.rhythm_item_bytes:,} bytes)")
    units = mark_writes(d, a)
    add("DynamoDB", "unusual marks", marks * units * wru_price, f"{marks:,.0f} marks, {units} WRU each")

    # Alerts.
    publishes = alerts  # one publish per alert to the alert topic
    add("SNS", "alert publishes", publishes * p["sns_publish"], f"{publishes:,.0f} publishes")
    if emails is None:
        admitted = [1.0 if outcomes is None else _admitted(outcomes, a) for outcomes in d.email_subscriptions]
        label = f"{len(admitted)} subscription(s) in the template"
    else:
        admitted = [1.0] * emails
        label = f"{emails} subscriber(s), unfiltered"
    deliveries = alerts * sum(admitted)
    add("SNS", "email deliveries", deliveries * p["sns_email"], f"{deliveries:,.0f} emails, {label}")

    # Logs and traces.
    if d.access_log_retention_days is not None:
        days = d.access_log_retention_days
        log_bytes[days] = log_bytes.get(days, 0.0) + https * a.access_log_bytes
    ingested = sum(log_bytes.values()) / GB
    stored = sum(b / GB * (days or NEVER_EXPIRES_DAYS) / (HOURS_PER_MONTH / 24) for days, b in log_bytes.items())
    add("CloudWatch Logs", "ingestion", ingested * p["cloudwatch_logs_ingestion_gb"], f"{ingested:,.2f} GB")
    add("CloudWatch Logs", "storage", stored * p["cloudwatch_logs_storage_gb_month"],
        f"{stored:,.2f} GB-months (uncompressed)")
    add("X-Ray", "traces recorded", traces * p["xray_trace_recorded"], f"{traces:,.0f} traces (1/s + 5% sampling)")
    for note in notes:
        add("Note", note, 0.0)
    return lines


_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50, "CRITICAL": 50}


def _level(name: str) -> int:
    try:
        return _LEVELS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (one of {', '.join(_LEVELS)})") from None


def total(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)
