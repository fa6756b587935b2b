"""Stack configuration from CDK context, validated with errors that name the key (pure, no CDK)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from .context_values import ConfigError, _bool, _choice, _each, _int, _list  # noqa: F401 (ConfigError: re-exported)

CANVAS_JWKS_URL = "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
CANVAS_AWS_ACCOUNT = "636161780776"
AUTH_MODES = ("jwt", "token", "none")
ARCHITECTURES = ("x86_64", "arm64")
REMOVAL_POLICIES = ("retain", "destroy")
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
ACCOUNT = re.compile(r"\d{12}")
STAGE = re.compile(r"[a-z][a-z0-9-]{0,19}")
DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
CERT_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+")
# The id alphabet of functions/sis_imports/core/table.py ID_PATTERN (a test keeps the two equal).
ROOT_ACCOUNT_UUID = re.compile(r"[A-Za-z0-9_.:~-]{1,128}")
ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")
ANY_ROOT_ACCOUNT = "*"
# Reserved concurrency per function (0: none), and the SQS event source's maximum concurrency.
CONCURRENCY_KEYS = ("ingest_concurrency", "sqs_concurrency", "eventbridge_concurrency", "query_concurrency",
                    "notifier_concurrency")
# The reconciler's thresholds, in minutes, for a batch that stays in one non-end state: context
# `stuck_<state>_minutes`, the function's STUCK_MINUTES (`initializing=60,created=60,…`).
STUCK_MINUTES = {"initializing": 60, "created": 60, "importing": 360, "cleanup_batch": 60, "restoring": 120}
STUCK_LIMIT_MINUTES = 30 * 24 * 60
# Chat (issue 10): AWS Chatbot's topic, and Slack/Teams webhook subscribers filtered on `outcome`.
CHAT_MODES = ("none", "chatbot")
# core/chat's CHAT_CHOICES (a test holds them equal): the outcomes, and `unusual` (any end found unusual).
CHAT_OUTCOMES = ("failure", "warning", "stuck", "missing", "unusual", "success", "resumed")
# Email subscriptions to the alert topic (issue 18): what reaches them, by `outcome` (and `unusual`, an end
# whose figures are unusual against the school's history). By default not every success: only what needs a
# person. `all` lifts the filter.
EMAIL_OUTCOMES = ("failure", "warning", "success", "stuck", "missing", "resumed", "unusual")
DEFAULT_EMAIL_OUTCOMES = "failure,stuck,missing,resumed,unusual"
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")  # Lambda's advanced logging controls for its platform lines
# A Secrets Manager secret name: 1 to 512 of these (AWS's own rule).
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")

# Every key the stack reads, with its default: README's configuration table lists the same.
DEFAULTS: dict[str, Any] = {
    "stage": "prod",
    "auth_mode": "jwt",
    "jwks_url": CANVAS_JWKS_URL,
    "jwt_issuers": "",
    "retention_days": 30,
    "notify_emails": "",
    "throttle_rate": 50,
    "throttle_burst": 100,
    "architecture": "arm64",  # Graviton: Lambda bills its GB-second 20% lower than x86_64's
    "domain_name": "",
    "certificate_arn": "",
    "removal_policy": "retain",
    "canvas_sqs": False,
    "canvas_account_id": CANVAS_AWS_ACCOUNT,
    "eventbridge_archive_days": 0,
    "eventbridge_source_accounts": "",
    "eventbridge_source_org_id": "",
    "log_retention_days": 30,
    "allow_unauthenticated": False,
    "root_account_uuids": "",  # required: no default (see _root_accounts)
    "canvas_hostnames": "",
    "ingest_concurrency": 10,
    "sqs_max_concurrency": 5,
    "sqs_concurrency": 5,
    "eventbridge_concurrency": 5,
    "query_concurrency": 2,
    "notifier_concurrency": 2,
    # The reconciler (issue 9): none of it exists without canvas_instances.
    "canvas_instances": "",
    "reconcile_minutes": 5,
    "reconcile_lookback_hours": 48,
    **{f"stuck_{state}_minutes": minutes for state, minutes in STUCK_MINUTES.items()},
    "reconciler_concurrency": 1,
    # Unusual and missing imports (issue 17): learnt by the reconciler, checked by the notifier.
    "anomaly_sensitivity": 5,
    "anomaly_min_history": 10,
    "missing_imports": True,
    "expected_import_every": "",
    # Operations (issue 11): the ops topic's subscribers, the alarms' settings, the table's protection.
    "ops_emails": "",
    "heartbeat_hours": 26,
    "auth_failures_per_hour": 50,
    "deletion_protection": True,
    # Chat (issue 10): none of it exists unless asked for.
    "chat": "none",
    "slack_webhook_secret": "",
    "teams_webhook_secret": "",
    "chat_outcomes": "failure,warning,stuck,missing,unusual",
    # Cost and cold start (issue 18): what costs money without being needed by default is asked for.
    "email_outcomes": DEFAULT_EMAIL_OUTCOMES,
    "tracing": False,
    "dashboard": False,
    "ops_topic_key": False,
    "system_log_level": "WARN",
    "event_log_sample_rate": 0,
    "api_access_logs": False,
    "detailed_metrics": False,
}


# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


@dataclass(frozen=True)
class StackConfig:
    stage: str
    auth_mode: str
    jwks_url: str
    jwt_issuers: tuple[str, ...]
    retention_days: int
    notify_emails: tuple[str, ...]
    throttle_rate: int
    throttle_burst: int
    architecture: str
    domain_name: str | None
    certificate_arn: str | None
    removal_policy: str
    canvas_sqs: bool
    canvas_account_id: str
    eventbridge_archive_days: int
    eventbridge_source_accounts: tuple[str, ...]
    log_retention_days: int
    root_account_uuids: tuple[str, ...]  # ("*",): any root account, warned at every synth
    allow_unauthenticated: bool = False
    canvas_hostnames: tuple[str, ...] = ()
    eventbridge_source_org_id: str | None = None
    ingest_concurrency: int = 10  # reserved concurrency per function; 0: no reservation
    sqs_max_concurrency: int = 5  # the SQS event source's maximum concurrency (2..1000)
    sqs_concurrency: int = 5
    eventbridge_concurrency: int = 5
    query_concurrency: int = 2
    notifier_concurrency: int = 2
    canvas_instances: tuple[str, ...] = ()  # base URLs, https://host[:port]; empty: no reconciler at all
    reconcile_minutes: int = 5
    reconcile_lookback_hours: int = 48
    stuck_minutes: tuple[tuple[str, int], ...] = tuple(STUCK_MINUTES.items())  # (state, minutes), in STUCK_MINUTES' order
    reconciler_concurrency: int = 1  # 1: passes never overlap; 0: no reservation
    anomaly_sensitivity: int = 5  # robust standard deviations an unusual figure is beyond; 0: no check
    anomaly_min_history: int = 10  # earlier successful imports of a shape before any claim
    missing_imports: bool = True  # alert when a root account with a rhythm creates no import for too long
    expected_import_every: str = ""  # "<root_account_uuid>=<n>m|h|d|off,...": a rhythm given, not learnt
    ops_emails: tuple[str, ...] = ()  # email subscriptions to the operations topic (alarms)
    heartbeat_hours: int = 26  # alarm when no SIS event is accepted for this long; 0: no heartbeat alarm
    auth_failures_per_hour: int = 50  # alarm when this many events are answered 401/403 within an hour
    deletion_protection: bool = True  # the table's DynamoDB deletion protection
    chat: str = "none"  # chatbot: a topic of AWS Chatbot custom notifications, fed by the notifier
    slack_webhook_secret: str | None = None  # the NAME of a secret holding a Slack incoming-webhook URL
    teams_webhook_secret: str | None = None  # the NAME of a secret holding a Teams Workflows webhook URL
    chat_outcomes: tuple[str, ...] = ("failure", "warning", "stuck", "missing", "unusual")  # in CHAT_OUTCOMES' order
    # What reaches notify_emails, in EMAIL_OUTCOMES' order; None: every alert (email_outcomes=all).
    email_outcomes: tuple[str, ...] | None = tuple(DEFAULT_EMAIL_OUTCOMES.split(","))
    tracing: bool = False  # X-Ray active tracing on every function
    dashboard: bool = False  # the CloudWatch dashboard ($3 a month)
    ops_topic_key: bool = False  # a customer managed KMS key encrypting the operations topic ($1 a month)
    system_log_level: str = "WARN"  # Lambda's platform lines (START, END, REPORT are INFO)
    event_log_sample_rate: float = 0.0  # share of invocations that log at DEBUG (the per-event line)
    api_access_logs: bool = False  # the HTTP API stage's access log (a line per request)
    detailed_metrics: bool = False  # the custom metrics no alarm reads (observability.DETAILED_ONLY)

    @property
    def any_root_account(self) -> bool:
        return self.root_account_uuids == (ANY_ROOT_ACCOUNT,)


def _check_spelling(keys: Iterable[str]) -> None:
    """`-c notify_email=…` would otherwise be ignored without a word (CDK accepts any key)."""
    for key in keys:
        if key in DEFAULTS or ":" in key or key.startswith("@"):
            continue  # ours, or CDK's own (aws:cdk:…, @aws-cdk/… feature flags)
        close = difflib.get_close_matches(key, DEFAULTS, n=1, cutoff=0.75)
        if close:
            raise ConfigError(f"context {key} is not a setting: did you mean {close[0]}?")


def load_config(get: Callable[[str], Any], keys: Iterable[str] = ()) -> StackConfig:
    """`get(key)` returns the context value or None (CDK's `node.try_get_context`); `keys` are
    all the context keys given, checked for misspellings of ours."""
    _check_spelling(keys)

    def value(key: str) -> Any:
        found = get(key)
        return DEFAULTS[key] if found is None or found == "" else found

    stage = str(value("stage"))
    if not STAGE.fullmatch(stage):
        raise ConfigError(f"context stage must be lowercase letters, digits and dashes (max 20), not {stage!r}")
    jwks_url = str(value("jwks_url"))
    if not jwks_url.startswith("https://"):
        raise ConfigError(f"context jwks_url must be an https:// URL, not {jwks_url!r}")
    domain = str(value("domain_name")).strip().lower() or None
    certificate = str(value("certificate_arn")).strip() or None
    if bool(domain) != bool(certificate):
        raise ConfigError("context domain_name and certificate_arn go together: set both or neither")
    if domain and not DOMAIN.fullmatch(domain):
        raise ConfigError(f"context domain_name: {domain!r} is not a domain name")
    if certificate and not CERT_ARN.fullmatch(certificate):
        raise ConfigError(f"context certificate_arn: {certificate!r} is not an ACM certificate ARN")
    canvas_account = str(value("canvas_account_id"))
    _each("canvas_account_id", (canvas_account,), ACCOUNT, "a 12-digit AWS account id")
    throttle_rate = _int("throttle_rate", value("throttle_rate"), 1, 10_000)
    throttle_burst = _int("throttle_burst", value("throttle_burst"), 1, 5_000)
    auth_mode = _choice("auth_mode", value("auth_mode"), AUTH_MODES)
    allow_unauthenticated = _bool("allow_unauthenticated", value("allow_unauthenticated"))
    # An open webhook lets anyone who finds the URL write batch state and trigger alerts.
    if auth_mode == "none" and not allow_unauthenticated:
        raise ConfigError(
            "context auth_mode=none accepts unsigned events from anyone: use jwt or token, "
            "or also set allow_unauthenticated=true to mean it (never for production)"
        )
    retention_days = _int("retention_days", value("retention_days"), 1, 3650)
    archive_days = _int("eventbridge_archive_days", value("eventbridge_archive_days"), 0, 3650)
    # The functions ignore an event older than retention_days (its batch may have expired): an archive
    # kept longer would hold raw events that a replay cannot use, and must never resurrect a batch.
    if archive_days > retention_days:
        raise ConfigError(
            f"context eventbridge_archive_days ({archive_days}) must not exceed retention_days ({retention_days}): "
            "events older than retention_days are ignored when replayed (an expired batch must not be "
            "resurrected), so a longer archive would only keep raw events for nothing"
        )
    source_accounts = _each("eventbridge_source_accounts", _list(value("eventbridge_source_accounts")), ACCOUNT,
                            "a 12-digit AWS account id")
    org_id = str(value("eventbridge_source_org_id")).strip() or None
    if org_id:
        _each("eventbridge_source_org_id", (org_id,), ORG_ID, "an AWS Organizations id (o-, then 10 to 32 "
              "lowercase letters or digits)")
    concurrency = {key: _int(key, value(key), 0, 1000) for key in CONCURRENCY_KEYS}
    sqs_max = _int("sqs_max_concurrency", value("sqs_max_concurrency"), 2, 1000)
    # Fewer reserved than the event source may run throttles the poller's invocations: the messages come
    # back, count as receives, and reach the dead-letter queue unprocessed.
    if 0 < concurrency["sqs_concurrency"] < sqs_max:
        raise ConfigError(
            f"context sqs_concurrency ({concurrency['sqs_concurrency']}) must be 0 (no reservation) or at least "
            f"sqs_max_concurrency ({sqs_max}): a smaller reservation throttles the SQS consumer and sends "
            "messages to the dead-letter queue"
        )
    hostnames = _each("canvas_hostnames", tuple(h.lower() for h in _list(value("canvas_hostnames"))),
                      DOMAIN, "a host name (like canvas.example.edu)")
    instances = _canvas_instances(value("canvas_instances"), hostnames)
    stuck = tuple((state, _int(f"stuck_{state}_minutes", value(f"stuck_{state}_minutes"), 1, STUCK_LIMIT_MINUTES))
                  for state in STUCK_MINUTES)
    for state, minutes in stuck:
        # A batch's item expires retention_days after its last event: past that it cannot be stuck.
        if minutes > retention_days * 24 * 60:
            raise ConfigError(
                f"context stuck_{state}_minutes ({minutes}) must not exceed retention_days in minutes "
                f"({retention_days * 24 * 60}): a batch expires retention_days after its last event, before it "
                "could count as stuck"
            )
    lookback_hours = _int("reconcile_lookback_hours", value("reconcile_lookback_hours"), 1, 720)
    # An import listed further back than retention_days may have expired from the table: the reconciler
    # would write it again as one it never heard of, and its end would be alerted a second time.
    if instances and lookback_hours > retention_days * 24:
        raise ConfigError(
            f"context reconcile_lookback_hours ({lookback_hours}) must not exceed retention_days in hours "
            f"({retention_days * 24}): an import listed beyond retention_days may have expired from the table, and "
            "the reconciler would record it again as new and alert its end again"
        )
    return StackConfig(
        stage=stage,
        auth_mode=auth_mode,
        jwks_url=jwks_url,
        jwt_issuers=_list(value("jwt_issuers")),
        retention_days=retention_days,
        notify_emails=_each("notify_emails", _list(value("notify_emails")), EMAIL, "an email address"),
        throttle_rate=throttle_rate,
        throttle_burst=throttle_burst,
        architecture=_choice("architecture", value("architecture"), ARCHITECTURES),
        domain_name=domain,
        certificate_arn=certificate,
        removal_policy=_choice("removal_policy", value("removal_policy"), REMOVAL_POLICIES),
        canvas_sqs=_bool("canvas_sqs", value("canvas_sqs")),
        canvas_account_id=canvas_account,
        eventbridge_archive_days=archive_days,
        eventbridge_source_accounts=source_accounts,
        eventbridge_source_org_id=org_id,
        log_retention_days=_log_retention(value("log_retention_days")),
        root_account_uuids=_root_accounts(value("root_account_uuids")),
        allow_unauthenticated=allow_unauthenticated,
        canvas_hostnames=hostnames,
        sqs_max_concurrency=sqs_max,
        **concurrency,
        canvas_instances=instances,
        reconcile_minutes=_int("reconcile_minutes", value("reconcile_minutes"), 1, 60),
        reconcile_lookback_hours=lookback_hours,
        stuck_minutes=stuck,
        # More than one would let two passes overlap (each reads Canvas and writes the same batches).
        reconciler_concurrency=_int("reconciler_concurrency", value("reconciler_concurrency"), 0, 1),
        anomaly_sensitivity=_int("anomaly_sensitivity", value("anomaly_sensitivity"), 0, 100),
        anomaly_min_history=_int("anomaly_min_history", value("anomaly_min_history"), 3, 30),
        missing_imports=_bool("missing_imports", value("missing_imports")),
        expected_import_every=_expected_every(value("expected_import_every")),
        ops_emails=_each("ops_emails", _list(value("ops_emails")), EMAIL, "an email address"),
        # Hourly periods, one per hour: CloudWatch evaluates an alarm over at most 7 days.
        heartbeat_hours=_int("heartbeat_hours", value("heartbeat_hours"), 0, 168),
        auth_failures_per_hour=_int("auth_failures_per_hour", value("auth_failures_per_hour"), 1, 1_000_000),
        deletion_protection=_bool("deletion_protection", value("deletion_protection")),
        chat=_choice("chat", value("chat"), CHAT_MODES),
        slack_webhook_secret=_webhook_secret("slack_webhook_secret", value("slack_webhook_secret")),
        teams_webhook_secret=_webhook_secret("teams_webhook_secret", value("teams_webhook_secret")),
        chat_outcomes=_chat_outcomes(value("chat_outcomes")),
        email_outcomes=_email_outcomes(value("email_outcomes")),
        tracing=_bool("tracing", value("tracing")),
        dashboard=_bool("dashboard", value("dashboard")),
        ops_topic_key=_bool("ops_topic_key", value("ops_topic_key")),
        system_log_level=_choice("system_log_level", value("system_log_level"),
                                 tuple(x.lower() for x in SYSTEM_LOG_LEVELS)).upper(),
        event_log_sample_rate=_sample_rate(value("event_log_sample_rate")),
        api_access_logs=_bool("api_access_logs", value("api_access_logs")),
        # The dashboard draws the detailed metrics: asking for it asks for them.
        detailed_metrics=_bool("detailed_metrics", value("detailed_metrics")) or _bool("dashboard", value("dashboard")),
    )


def _expected_every(value: Any) -> str:
    from sis_imports.core.expected_every import parse_expected

    raw = str(value or "").strip()
    try:
        parse_expected(raw)
    except ValueError as exc:
        raise ConfigError(f"context {exc}") from None
    return raw


def _email_outcomes(value: Any) -> tuple[str, ...] | None:
    """What email subscribers get: `all`, or outcomes (and `unusual`), at least one, each known."""
    given = tuple(o.lower() for o in _list(value))
    if given == ("all",):
        return None
    unknown = [o for o in given if o not in EMAIL_OUTCOMES]
    if unknown or not given:
        raise ConfigError(f"context email_outcomes must be all, or a comma-separated list of "
                          f"{', '.join(EMAIL_OUTCOMES)} (at least one), not {value!r}")
    return tuple(o for o in EMAIL_OUTCOMES if o in given)


def _sample_rate(value: Any) -> float:
    """Powertools' POWERTOOLS_LOGGER_SAMPLE_RATE: the share of invocations logged at DEBUG."""
    try:
        rate = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"context event_log_sample_rate must be a number from 0 to 1, not {value!r}") from None
    if not 0 <= rate <= 1:
        raise ConfigError(f"context event_log_sample_rate must be from 0 to 1, not {rate:g}")
    return rate


def _webhook_secret(key: str, value: Any) -> str | None:
    """The NAME of the Secrets Manager secret that holds a chat webhook URL (the operator makes it).

    The URL itself is refused, and never repeated in the error: whoever has it can post to the channel."""
    name = str(value or "").strip()
    if not name:
        return None
    if "://" in name or name.lower().startswith("hooks."):
        raise ConfigError(f"context {key} is the NAME of a Secrets Manager secret that holds the webhook URL, not "
                          "the URL (a secret: keep it out of the context and the command line): "
                          f"aws secretsmanager create-secret --name canvas-sis-{key.split('_')[0]}-webhook "
                          "--secret-string <URL>, then -c " + key + "=canvas-sis-" + key.split("_")[0] + "-webhook")
    if name.startswith("arn:"):
        raise ConfigError(f"context {key} is the secret's name, not its ARN (the stack builds the ARN)")
    if not SECRET_NAME.fullmatch(name):
        raise ConfigError(f"context {key}: not a Secrets Manager secret name (1 to 512 of A-Z a-z 0-9 / _ + = . @ -)")
    # The function finds the secret by a partial ARN (no random suffix), which Secrets Manager cannot tell
    # from a full one when the name itself ends in a hyphen and six characters.
    if re.search(r"-[A-Za-z0-9]{6}$", name):
        raise ConfigError(f"context {key}: {name!r} ends in a hyphen and six characters, which Secrets Manager "
                          "takes for its random suffix when the function looks the secret up: name it otherwise "
                          "(e.g. canvas-sis-slack-webhook)")
    return name


def _chat_outcomes(value: Any) -> tuple[str, ...]:
    """The outcomes that reach chat (and `unusual`: any end found unusual): an SNS filter policy on the
    `outcome` and `unusual` attributes (and the notifier's test for the Chatbot topic); at least one, each
    known."""
    given = tuple(o.lower() for o in _list(value))
    unknown = [o for o in given if o not in CHAT_OUTCOMES]
    if unknown or not given:
        raise ConfigError(f"context chat_outcomes must be a comma-separated list of {', '.join(CHAT_OUTCOMES)} "
                          f"(at least one), not {value!r}")
    return tuple(o for o in CHAT_OUTCOMES if o in given)


def _canvas_instances(value: Any, hostnames: tuple[str, ...]) -> tuple[str, ...]:
    """Base URLs of the Canvas instances the reconciler reads, as `https://host[:port]` (lowercase,
    no default port, no trailing slash); a path, query, login or other scheme is refused."""
    out: list[str] = []
    for text in _list(value):
        # Shown without a query or a login (where a token might have been pasted): the token goes in its secret.
        shown = text.split("?")[0].split("#")[0] + ("?…" if "?" in text else "")
        shown = shown if "@" not in shown else "a URL with a login in it"
        what = (f"context canvas_instances: {shown!r} is not a Canvas base URL (https://host or https://host:port, "
                "no path, no query, no login: the API token goes in the stack's secret)")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ConfigError(what) from None
        host = parts.hostname or ""
        if (parts.scheme != "https" or parts.username is not None or parts.password is not None or parts.query
                or parts.fragment or parts.path not in ("", "/") or not DOMAIN.fullmatch(host) or port == 0):
            raise ConfigError(what)
        url = f"https://{host}" + (f":{port}" if port not in (None, 443) else "")
        if url in out:
            raise ConfigError(f"context canvas_instances: {url} is listed twice")
        # The reconciler's events name their instance's host, and must pass the same allowlist as live ones.
        if hostnames and host not in hostnames:
            raise ConfigError(
                f"context canvas_instances: the host of {url} is not in canvas_hostnames ({', '.join(hostnames)}): "
                "the states the reconciler reads would be refused like another instance's events"
            )
        out.append(url)
    return tuple(out)


def _root_accounts(value: Any) -> tuple[str, ...]:
    """Canvas signs (and its AWS account sends) the events of every customer: only the root account
    uuid says an event is ours, so the stack refuses to guess it."""
    uuids = _list(value)
    if not uuids:
        raise ConfigError(
            "context root_account_uuids is required: the comma-separated root account uuid(s) of your Canvas "
            "(GET /api/v1/accounts/self answers it as `uuid`; every Live Event carries it as "
            "metadata.root_account_uuid), e.g. -c root_account_uuids=VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs; "
            f"-c root_account_uuids={ANY_ROOT_ACCOUNT} accepts events of any Canvas customer (warned at every synth)"
        )
    if ANY_ROOT_ACCOUNT in uuids:
        if len(uuids) > 1:
            raise ConfigError(f"context root_account_uuids: {ANY_ROOT_ACCOUNT} (any root account) goes alone, "
                              "not in a list")
        return uuids
    return _each("root_account_uuids", uuids, ROOT_ACCOUNT_UUID,
                 "a Canvas root account uuid (1 to 128 of A-Z a-z 0-9 _ . : ~ -)")


def _log_retention(value: Any) -> int:
    days = _int("log_retention_days", value, 1, 3653)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(f"context log_retention_days must be one of {LOG_RETENTION_DAYS}, not {days}")
    return days
