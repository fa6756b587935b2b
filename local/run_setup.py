"""`make run`'s set-up: the environment it reads, the moto environment it makes, and the banner it
prints (local/run.py starts the pieces)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local import settings
from local.gateway import JWKS_PATH

ROOT = Path(__file__).resolve().parent.parent

REGION = "us-east-1"
# Variables that could send boto3 anywhere but the embedded moto, or make it look for real credentials.
AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
             "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT",
             "AWS_USE_DUALSTACK_ENDPOINT", "AWS_LAMBDA_FUNCTION_NAME", "SIS_JWT_ISSUERS", "SIS_TOKEN_SECRET_ARN")


ANY = "*"
DEFAULT_RECONCILE_SECONDS = 60.0
# The reconciler's own defaults, set here so that the banner can say them and `make simulate` can
# backdate its stuck import beyond them; RECONCILE_LOOKBACK_HOURS and STUCK_MINUTES override.
DEFAULT_LOOKBACK_HOURS = "48"
DEFAULT_STUCK_MINUTES = "initializing=60,created=60,importing=360,cleanup_batch=60,restoring=120"
SIMULATOR_THROTTLE = 0.05  # the share of Canvas API requests the simulator answers 403 Rate Limit Exceeded


@dataclass(frozen=True)
class CanvasConfig:
    """Which Canvas the local reconciler reads: the simulator (url None) or CANVAS_API_URL."""

    url: str | None
    token: str | None
    reconcile_seconds: float


def canvas_config() -> CanvasConfig:
    """RECONCILE_SECONDS, CANVAS_API_URL and CANVAS_API_TOKEN, checked; ValueError says what is wrong."""
    raw = (os.environ.get("RECONCILE_SECONDS") or "").strip() or f"{DEFAULT_RECONCILE_SECONDS:g}"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 10**7:
        raise ValueError(f"RECONCILE_SECONDS must be a number of seconds above 0, not {raw!r}")
    url = (os.environ.get("CANVAS_API_URL") or "").strip() or None
    token = (os.environ.get("CANVAS_API_TOKEN") or "").strip() or None
    if url is None and token is not None:
        raise ValueError("CANVAS_API_TOKEN is set without CANVAS_API_URL: give both (or neither, for the simulator)")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"CANVAS_API_URL must be a Canvas base URL, https://school.instructure.com, not {url!r}")
        if token is None:
            raise ValueError("CANVAS_API_URL needs CANVAS_API_TOKEN: an API token of that Canvas "
                             "(the import_sis permission on its root account is enough)")
        url = f"{parts.scheme}://{parts.netloc}"
    return CanvasConfig(url, token, seconds)


def listed(name: str) -> list[str] | None:
    """A comma-separated variable as its items; None when it is unset or blank."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def allowed(name: str, what: str) -> list[str] | None:
    """SIS_ROOT_ACCOUNTS or SIS_HOSTNAMES, checked: None when unset; ValueError when it says nothing usable."""
    items = listed(name)
    if items is None:
        return None
    if not items:
        raise ValueError(f"{name} lists no {what}: give them comma-separated, or unset it")
    if ANY in items and items != [ANY]:
        raise ValueError(f"{name}: {ANY} (any) cannot be combined with a list; give one or the other")
    return items


def accounts_line(root_accounts: list[str] | None, hostnames: list[str] | None) -> str:
    """What the banner says about which Canvas accounts the run accepts events from."""
    if root_accounts is None:
        line = ("accepting events from any Canvas root account; "
                "set SIS_ROOT_ACCOUNTS=<uuid,...> to allow only yours")
    elif root_accounts == [ANY]:
        line = "accepting events from any Canvas root account (SIS_ROOT_ACCOUNTS=*)"
    else:
        line = f"only root accounts {', '.join(root_accounts)} (SIS_ROOT_ACCOUNTS); others: HTTPS 403, SQS and " \
               "EventBridge drop them"
    if hostnames and hostnames != [ANY]:
        line += f"\n               only hostnames {', '.join(hostnames)} (SIS_HOSTNAMES), when an event names one"
    return line


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


def example_batch() -> tuple[str, str]:
    """The batch of examples/failed_import.json, for a query URL that works after `make send`."""
    try:
        last = json.loads((ROOT / "examples" / "failed_import.json").read_text())[-1]
        return last["metadata"]["root_account_uuid"], last["body"]["sis_batch_id"]
    except (OSError, ValueError, LookupError, TypeError):
        return "<root_account_uuid>", "<sis_batch_id>"


def aws_environment(moto_url: str) -> None:
    """Every AWS client in this process (handlers included) talks to moto, with fake credentials."""
    settings.loopback_only()
    for name in list(os.environ):
        if name in AWS_UNSET or name.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[name]
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,  # no profile's endpoint_url, region or credential_process
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="canvas-sis-imports",
        POWERTOOLS_METRICS_NAMESPACE="CanvasSisImports",
        POWERTOOLS_METRICS_DISABLED="true",  # EMF lines would drown the console; the logs stay
        POWERTOOLS_TRACE_DISABLED="true",
    )


def canvas_lines(canvas: CanvasConfig, simulator: Any, secret_name: str, school: Any = None,
                 school_line: str | None = None) -> list[str]:
    """What the banner says about the Canvas the reconciler reads and how often."""
    every = f"every {canvas.reconcile_seconds:g} s (RECONCILE_SECONDS) and at start; `make reconcile` runs one pass now"
    stuck = os.environ.get("STUCK_MINUTES", DEFAULT_STUCK_MINUTES)
    if simulator is None:
        return [
            f"  Canvas       {canvas.url} (CANVAS_API_URL), no simulator; its token (CANVAS_API_TOKEN) kept in the "
            f"emulated Secrets Manager as {secret_name}; its root account learnt from GET /api/v1/accounts/self",
            f"  reconcile    {every}",
            f"               lookback {os.environ.get('RECONCILE_LOOKBACK_HOURS', DEFAULT_LOOKBACK_HOURS)} h, "
            f"stuck after (minutes) {stuck}",
        ]
    return [
        f"  Canvas       simulator at {simulator.base_url}: the SIS Import API of root account "
        f"{simulator.root_account_uuid} (host {simulator.hostname}),",
        f"               its API token in the emulated Secrets Manager ({secret_name}), 1 request in "
        f"{round(1 / SIMULATOR_THROTTLE)} answered 403 Rate Limit Exceeded;",
        "               its imports' Live Events are posted to the webhook above, as Canvas's HTTPS transport does",
        f"  reconcile    {every}",
        f"               lookback {os.environ.get('RECONCILE_LOOKBACK_HOURS', DEFAULT_LOOKBACK_HOURS)} h, "
        f"stuck after (minutes) {stuck}",
        "  simulate     make simulate   (a normal import, a failure, a silent abort, one stuck in initializing, one "
        "whose events are all lost; then one pass;",
        "               then the school's hourly imports: one deleting 4,800 enrollments, three silent hours)",
        (f"  school       simulator at {school.base_url} (host {school.hostname}): {school_line}, "
         f"{school.root_account_uuid}; read by the reconciler from `make simulate` on") if school is not None
        else f"  school       {school_line or 'none'}",
    ]


def banner(port: int, auth: str, aws: Any, notifications: Path, token: str | None, moto_url: str,
           root_accounts: list[str] | None = None, hostnames: list[str] | None = None,
           canvas: list[str] | None = None, external: str | None = None) -> str:
    from local import resources

    base = f"http://127.0.0.1:{port}"
    webhook = f"{base}/events" + (f"?token={token}" if token else "")
    uuid_, batch_id = example_batch()
    auth_line = {
        "jwt": f"SIS_AUTH=jwt: RS256-signed payloads only, as Canvas's \"Sign Payload\" (development key, "
               f"JWKS at {base}{JWKS_PATH})",
        "token": "SIS_AUTH=token: unsigned JSON with the shared token in the webhook URL above "
                 "(kept in the emulated Secrets Manager)",
        "none": "SIS_AUTH=none: unsigned JSON from anyone, no check at all",
    }[auth]
    leaves = (f"only the reconciler's requests to {external} leave this machine" if external
              else "nothing leaves this machine")
    lines = [
        "",
        f"Canvas SIS import monitor, running locally (AWS emulated by moto at {moto_url}, in memory: a restart "
        f"starts empty; {leaves})",
        "",
        f"  webhook      POST {webhook}",
        f"  batch view   GET  {base}/batches/<root_account_uuid>/<sis_batch_id>   (IAM-authorized when deployed)",
        f"               e.g. curl {base}/batches/{uuid_}/{batch_id}",
        f"  auth         {auth_line}",
        f"  accounts     {accounts_line(root_accounts, hostnames)}",
        f"  Canvas SQS   {aws.canvas_queue_url}  (dead letters after {resources.MAX_RECEIVES} receives: "
        f"{aws.canvas_dlq_url.rsplit('/', 1)[-1]})",
        f"  EventBridge  bus {aws.bus_name}, rule on detail-type sis_batch_created | sis_batch_updated",
        f"  alerts       printed here and appended to {notifications} (kept across runs, never truncated)",
        *(canvas or []),
        "  send         make send FILE=examples/failed_import.json   [VIA=https|sqs|eventbridge] [KEEP_TIMES=1]",
        "  stop         Ctrl-C",
        "",
    ]
    if auth == "none":
        loud = "  !!! SIS_AUTH=none: AUTHENTICATION IS OFF. ANY UNSIGNED EVENT IS ACCEPTED. LOCAL USE ONLY. !!!"
        lines[3:3] = [loud, ""]
        lines.append(loud)
        lines.append("")
    return "\n".join(lines)
