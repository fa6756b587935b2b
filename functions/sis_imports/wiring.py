"""Builds the adapters from environment variables, the same way in Lambda, tests and `make run`.

boto3 reads AWS_ENDPOINT_URL, so pointing it at moto's server is all the local run changes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .adapters.aws import CLIENT_LIMITS, ClientLimits, client_config, worst_seconds  # noqa: F401 (re-exported)
from .adapters.aws import client as _client
from .adapters.observability import logger, metrics  # noqa: F401 (the handlers' logger and metrics)
from .core.batch import DEFAULT_HISTORY_LIMIT

if TYPE_CHECKING:
    from .adapters.auth import JwtAuthenticator, NoAuthenticator, TokenAuthenticator
    from .usecases.ingest import SisBatchIngest
    from .usecases.reconcile_pass import Reconciler

AUTH_MODES = ("jwt", "token", "none")


class ConfigError(Exception):
    pass


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"environment variable {name} must be at least 1")
    return value


def batch_store(require_host: bool = False) -> Any:
    from .adapters.store import BatchStore

    return BatchStore(
        _client("dynamodb"),
        _required("TABLE_NAME"),
        retention_days=_int("RETENTION_DAYS", 90),
        history_limit=_int("HISTORY_LIMIT", DEFAULT_HISTORY_LIMIT),
        require_host=require_host,
    )


def sis_batch_ingest() -> "SisBatchIngest":
    """The core every ingress shares, with the allowed root accounts (fail closed: required)."""
    from .core.admission import Admission
    from .core.events import validator
    from .usecases.ingest import SisBatchIngest

    validator()  # every event is validated: built now, in Lambda's init phase, not in the first request
    root_accounts = os.environ.get("SIS_ROOT_ACCOUNTS", "").strip()
    if not root_accounts:
        raise ConfigError(
            "environment variable SIS_ROOT_ACCOUNTS is required: the Canvas root_account_uuids whose events "
            "may get in, comma-separated (GET /api/v1/accounts/self answers `uuid`), or * for any"
        )
    admission = Admission.of(root_accounts, os.environ.get("SIS_HOSTNAMES", ""), _int("RETENTION_DAYS", 90))
    return SisBatchIngest(batch_store(require_host=admission.hostnames is not None), admission)


def reconciler() -> "Reconciler":
    """The reconcile pass over `CANVAS_INSTANCES` (JSON: [{"url": …, "token_secret": …}]).

    Only this function loads canvasapi (its own layer): the ingest path never does.
    """
    from .core.admission import Admission
    from .adapters.canvas_api import CanvasApi
    from .core.reconcile import parse_stuck_minutes
    from .usecases.reconcile_pass import Instance, Reconciler

    _required("CANVAS_INSTANCES")
    pairs = _canvas_instances()
    try:
        instances = [Instance(url, CanvasApi(url, _token(secret), timeout=_int("CANVAS_TIMEOUT_SECONDS", 10)))
                     for url, secret in pairs]
        stuck = parse_stuck_minutes(os.environ.get("STUCK_MINUTES", ""))
    except ValueError as exc:
        raise ConfigError(f"reconciler configuration: {exc}") from None
    allowed = Admission.of(_required("SIS_ROOT_ACCOUNTS")).root_accounts
    store = batch_store()
    return Reconciler(store, instances, allowed_root_accounts=allowed,
                      lookback_hours=_int("RECONCILE_LOOKBACK_HOURS", 48), stuck_minutes=stuck,
                      history=school_history(store))


def school_history(store: Any) -> Any:
    """The school's baselines and rhythm (issue 17): MISSING_IMPORTS, EXPECTED_IMPORT_EVERY, ANOMALY_MIN_HISTORY."""
    from .core.expected_every import parse_expected
    from .usecases.school_history import HistoryOptions, SchoolHistory

    try:
        expected = parse_expected(os.environ.get("EXPECTED_IMPORT_EVERY", ""))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return SchoolHistory(store, HistoryOptions(
        missing_imports=os.environ.get("MISSING_IMPORTS", "true").lower() != "false",
        expected_every=expected, min_history=_int("ANOMALY_MIN_HISTORY", 10)))


def unusual_check() -> Any:
    """What the notifier compares an end with, or None when the check is off (ANOMALY_SENSITIVITY=0) or
    there is no table to read the baselines from."""
    sensitivity = float(os.environ.get("ANOMALY_SENSITIVITY", "5") or 0)
    if sensitivity <= 0 or not os.environ.get("TABLE_NAME"):
        return None
    from .usecases.unusual_ends import UnusualEnds

    return UnusualEnds(batch_store(), sensitivity=sensitivity, min_history=_int("ANOMALY_MIN_HISTORY", 10))


def alert_publisher() -> Any:
    from .adapters.publisher import AlertPublisher

    return AlertPublisher(_client("sns"), _required("TOPIC_ARN"), os.environ.get("CHAT_TOPIC_ARN", "").strip() or None,
                          os.environ.get("CHAT_OUTCOMES", "").strip() or "failure,warning,stuck,missing,unusual")


def notifier_failures() -> Any:
    """The queue for stream records the notifier cannot read (optional: without it they fail)."""
    from .adapters.publisher import FailureQueue

    url = os.environ.get("NOTIFIER_FAILURE_QUEUE_URL", "").strip()
    return FailureQueue(lambda: _client("sqs"), url) if url else None


def alert_retries() -> Any:
    """The queue alerts go to when SNS refuses them (optional: without it the record fails)."""
    from .adapters.publisher import AlertRetryQueue

    url = os.environ.get("ALERT_RETRY_QUEUE_URL", "").strip()
    delay = os.environ.get("ALERT_RETRY_DELAY_SECONDS", "").strip()
    first_delay = int(delay) if delay.isdigit() else 60
    return AlertRetryQueue(lambda: _client("sqs"), url, first_delay) if url else None


def _canvas_instances() -> list[tuple[str, str]]:
    import json

    raw = os.environ.get("CANVAS_INSTANCES", "").strip()
    if not raw:
        return []
    try:
        return [(str(i["url"]), str(i["token_secret"])) for i in json.loads(raw)]
    except (ValueError, TypeError, KeyError):
        raise ConfigError('environment variable CANVAS_INSTANCES must be JSON: [{"url": …, "token_secret": …}]') from None


def _token(secret: str) -> Any:
    provider: list[Any] = []

    def read() -> str:
        # Powertools caches the secret (5 minutes): a rotated token is picked up without a redeploy.
        if not provider:  # made on first use, with the limits of every Secrets Manager client
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            provider.append(SecretsProvider(boto3_client=_client("secretsmanager")))
        return str(provider[0].get(secret, max_age=300)).strip()

    return read


def alert_details() -> Any:
    """Canvas's SIS Import API for the why of an end, when instances are configured (else None)."""
    from .adapters.alert_details import CanvasDetails

    instances = _canvas_instances()
    return CanvasDetails([(url, _token(secret)) for url, secret in instances]) if instances else None


def authenticator() -> "JwtAuthenticator | TokenAuthenticator | NoAuthenticator":
    # Only the ingest handler authenticates: the others never load PyJWT and cryptography.
    from .adapters.auth import CANVAS_JWKS_URL, JwksKeySource, JwtAuthenticator, NoAuthenticator, SecretsManagerToken, TokenAuthenticator

    mode = os.environ.get("SIS_AUTH", "jwt").strip().lower() or "jwt"
    if mode == "jwt":
        issuers = [i.strip() for i in os.environ.get("SIS_JWT_ISSUERS", "").split(",") if i.strip()]
        url = os.environ.get("SIS_JWKS_URL", "").strip() or CANVAS_JWKS_URL
        return JwtAuthenticator(JwksKeySource(url), issuers)
    if mode == "token":
        return TokenAuthenticator(SecretsManagerToken(_client("secretsmanager"), _required("SIS_TOKEN_SECRET_ARN")))
    if mode == "none":
        logger.warning("SIS_AUTH=none: unsigned events are accepted from anyone. Use this only on your own machine.")
        return NoAuthenticator()
    raise ConfigError(f"SIS_AUTH must be one of {', '.join(AUTH_MODES)}, not {mode!r}")


def chat_webhook() -> Any:
    """The chat webhook subscriber: CHAT_KIND (slack, teams) and the secret holding its URL."""
    from .usecases.chat_delivery import ChatConfigError, ChatWebhook, secret_reader

    kind = os.environ.get("CHAT_KIND", "").strip().lower()
    secret_id = os.environ.get("CHAT_WEBHOOK_SECRET_ARN", "").strip()
    if not secret_id:
        raise ChatConfigError("environment variable CHAT_WEBHOOK_SECRET_ARN is required")
    return ChatWebhook(kind, secret_reader(secret_id, require_https=True))
