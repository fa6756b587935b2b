"""`make run`: the deployed pipeline on this machine, with moto as its AWS and the same handlers.

  POST /events                                     -> handlers.ingest   (as API Gateway calls it)
  GET  /batches/{root_account_uuid}/{sis_batch_id} -> handlers.query
  GET  /batches/{root_account_uuid}                -> handlers.query (recent batches; `make status`)
  GET  /.well-known/jwks.json                      -> the development key's JWKS (SIS_AUTH=jwt)
  table stream -> handlers.notifier -> SNS topic -> subscriber queue -> console + notifications file
  canvas-live-events-local queue -> handlers.sqs_consumer
  local bus, rule on sis_batch_created/updated -> handlers.eventbridge
  a Canvas simulator on 127.0.0.1 (local/canvas_simulator.py): the SIS Import API, and its imports'
      Live Events posted to the webhook as Canvas's HTTPS transport does (local/live_events.py)
  handlers.reconciler at start, every RECONCILE_SECONDS, and on `make reconcile` (POST /_local/reconcile,
      a local-only control route), against the simulator or CANVAS_API_URL
  POST /_local/outage {"seconds": N}: SNS and SQS sends fail for N seconds (local-only; local/outage.py)

Environment: PORT (3000), SIS_AUTH (jwt | token | none), SIS_ROOT_ACCOUNTS (uuid,...; unset: * = any,
said at start; the simulator takes the first uuid listed), SIS_HOSTNAMES (hostname,...; unset: any),
NOTIFICATIONS_FILE (.local/notifications.jsonl), LOCAL_STATE_DIR (.local), RECONCILE_SECONDS (60),
CANVAS_API_URL and CANVAS_API_TOKEN (reconcile against that Canvas instead; no simulator),
RECONCILE_LOOKBACK_HOURS and STUCK_MINUTES (the function's defaults).

AWS state lives in moto's memory: every start begins with an empty table and empty queues. The
notifications file is appended to, never truncated.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))  # the Lambda code root, as in the deployed bundle

from local import settings  # noqa: E402
from local.gateway import (BATCH_ROUTE, EVENTS_ROUTE, JWKS_PATH, LIST_ROUTE, RECONCILE_CONTROL,  # noqa: E402
                           LocalGateway)

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


def canvas_lines(canvas: CanvasConfig, simulator: Any, secret_name: str) -> list[str]:
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
        "whose events are all lost; then one pass)",
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


def main() -> int:
    raw_port = (os.environ.get("PORT") or "3000").strip()
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        return fail(f"PORT must be a port number (1-65535), not {raw_port!r}", 2)
    port = int(raw_port)
    auth = (os.environ.get("SIS_AUTH") or "jwt").strip().lower()
    if auth not in ("jwt", "token", "none"):
        return fail(f"SIS_AUTH must be jwt, token or none, not {auth!r}", 2)
    try:
        root_accounts = allowed("SIS_ROOT_ACCOUNTS", "root account uuid")
        hostnames = allowed("SIS_HOSTNAMES", "hostname")
        canvas = canvas_config()
    except ValueError as exc:
        return fail(str(exc), 2)

    # Claim the port before anything else, so that a second run stops at once with a clear reason.
    try:
        gateway = LocalGateway(port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return fail(f"port {port} is already in use (is `make run` already running?). "
                        f"Stop it, or choose another: make run PORT={port + 1}")
        return fail(f"port {port} could not be opened: {exc.strerror}")
    try:
        return serve(gateway, port, auth, root_accounts, hostnames, canvas)
    finally:
        gateway.server_close()


def serve(gateway: LocalGateway, port: int, auth: str, root_accounts: list[str] | None = None,
          hostnames: list[str] | None = None, canvas: CanvasConfig | None = None) -> int:
    canvas = canvas or CanvasConfig(None, None, DEFAULT_RECONCILE_SECONDS)
    other = settings.live_state()
    if other and other.get("pid") != os.getpid():
        return fail(f"another local run (pid {other.get('pid')}, port {other.get('port')}) uses "
                    f"{settings.state_dir()}; stop it first, or give this one its own LOCAL_STATE_DIR")
    state_dir = settings.state_dir()
    notifications = settings.notifications_file()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        notifications.parent.mkdir(parents=True, exist_ok=True)
        notifications.touch()  # there from the start, so that `tail -f` works before the first alert
    except OSError as exc:
        return fail(f"cannot write {exc.filename}: {exc.strerror} (see LOCAL_STATE_DIR and NOTIFICATIONS_FILE)")

    stop = threading.Event()

    def shutdown(signum: int, frame: Any) -> None:
        stop.set()
        # serve_forever runs on this (the main) thread: shutdown() must come from another one.
        threading.Thread(target=gateway.shutdown, daemon=True).start()

    # Installed before anything starts, so that Ctrl-C at any point stops cleanly.
    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's own request log: noise here
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    workers: list[threading.Thread] = []
    simulator = None
    try:
        moto_url = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
        aws_environment(moto_url)

        from local import resources

        token = secrets.token_urlsafe(24) if auth == "token" else None
        aws = resources.create(token)
        os.environ.update(TABLE_NAME=aws.table_name, TOPIC_ARN=aws.topic_arn, RETENTION_DAYS="90", SIS_AUTH=auth,
                          ALERT_RETRY_QUEUE_URL=aws.alert_retry_queue_url,
                          NOTIFIER_FAILURE_QUEUE_URL=aws.notifier_failures_url, ALERT_RETRY_DELAY_SECONDS="2")
        # The functions refuse to start without SIS_ROOT_ACCOUNTS; unset here means any (the banner says so).
        os.environ["SIS_ROOT_ACCOUNTS"] = ",".join(root_accounts or [ANY])
        if hostnames and hostnames != [ANY]:
            os.environ["SIS_HOSTNAMES"] = ",".join(hostnames)
        else:
            os.environ.pop("SIS_HOSTNAMES", None)  # blank or *: any hostname, so not set at all
        if aws.token_secret_arn:
            os.environ["SIS_TOKEN_SECRET_ARN"] = aws.token_secret_arn

        key_path = state_dir / "dev-signing-key.pem"
        issuer = f"http://127.0.0.1:{port}"
        if auth == "jwt":
            from local.dev_keys import DevKey

            key = DevKey.create(key_path)
            gateway.jwks = key.jwks()
            os.environ["SIS_JWKS_URL"] = f"http://127.0.0.1:{port}{JWKS_PATH}"
            os.environ["SIS_JWT_ISSUERS"] = issuer  # `make send` signs with it: the issuer check runs too

        # The Canvas the reconciler reads: the simulator, or CANVAS_API_URL. Its token goes where the
        # stack keeps it, a Secrets Manager secret, and the function reads it from there.
        control_key = secrets.token_urlsafe(24)  # for the local-only control routes (state file, 0600)
        run_state = {"port": port, "auth": auth, "signing_key": str(key_path) if auth == "jwt" else None,
                     "jwt_issuer": issuer if auth == "jwt" else None, "token": token}
        if canvas.url is None:
            from local.canvas_simulator import CanvasSimulator
            from local.live_events import WebhookDelivery

            delivery = WebhookDelivery(stop, run_state)
            simulator = CanvasSimulator(
                token=secrets.token_urlsafe(32), control_key=control_key, on_event=delivery.enqueue,
                # Its events must get in: the first root account (and host) allowed, when a list is given.
                root_account_uuid=root_accounts[0] if root_accounts and root_accounts != [ANY] else None,
                # The reconciler names an instance by its URL's host: the simulator's events say the same.
                hostname=hostnames[0] if hostnames and hostnames != [ANY] else "127.0.0.1",
                throttle_probability=SIMULATOR_THROTTLE, seed=secrets.randbits(32))
            simulator.pending_events = delivery.pending
            simulator.start()
            workers.append(delivery)
        canvas_url = canvas.url or simulator.base_url
        canvas_secret = resources.canvas_token_secret(canvas.token or simulator.token)
        os.environ["CANVAS_INSTANCES"] = json.dumps([{"url": canvas_url, "token_secret": canvas_secret}])
        os.environ.setdefault("RECONCILE_LOOKBACK_HOURS", DEFAULT_LOOKBACK_HOURS)
        os.environ.setdefault("STUCK_MINUTES", DEFAULT_STUCK_MINUTES)

        # Before any function's client is made: `POST /_local/outage` takes SNS and SQS down (local/outage.py).
        import boto3

        from local.outage import OUTAGE_CONTROL, Outage

        outage = Outage()
        boto3.setup_default_session()
        outage.install(boto3.DEFAULT_SESSION)

        # Imported only now: Powertools and the handlers read the environment at import.
        import handlers.alert_retry
        import handlers.eventbridge
        import handlers.ingest
        import handlers.notifier
        import handlers.query
        import handlers.reconciler
        import handlers.sqs_consumer
        from local.invoke import init
        from local.pollers import AlertSubscriber, CanvasQueuePoller, EventBridgePoller, StreamPoller
        from local.reconcile import LocalReconciler

        from sis_imports.wiring import ConfigError

        try:
            for module in (handlers.ingest, handlers.query, handlers.notifier, handlers.sqs_consumer,
                           handlers.eventbridge, handlers.reconciler, handlers.alert_retry):
                init(module.app)
        except ConfigError as exc:
            return fail(f"configuration: {exc}")

        gateway.routes = {EVENTS_ROUTE: handlers.ingest.handler, BATCH_ROUTE: handlers.query.handler,
                          LIST_ROUTE: handlers.query.handler}
        gateway.function_names = {EVENTS_ROUTE: "ingest", BATCH_ROUTE: "query", LIST_ROUTE: "query"}
        reconciler = LocalReconciler(stop, handlers.reconciler.handler, canvas.reconcile_seconds)
        gateway.controls = {RECONCILE_CONTROL: reconciler.control, OUTAGE_CONTROL: outage.control}
        gateway.control_key = control_key
        workers += [
            StreamPoller(stop, aws.stream_arn, handlers.notifier.handler, failures_url=aws.notifier_failures_url),
            CanvasQueuePoller(stop, aws.canvas_queue_url, aws.canvas_queue_arn, handlers.sqs_consumer.handler,
                              resources.MAX_RECEIVES),
            EventBridgePoller(stop, aws.eventbridge_queue_url, handlers.eventbridge.handler),
            AlertSubscriber(stop, aws.subscriber_queue_url, notifications),
            # Alerts SNS refused: in AWS retried every 5 minutes for a day; here every few seconds.
            CanvasQueuePoller(stop, aws.alert_retry_queue_url, aws.alert_retry_queue_arn, handlers.alert_retry.handler,
                              288, name="alert-retry", function_name="alert-retry"),
        ]
        for worker in workers:
            worker.start()
        settings.write_state({
            "pid": os.getpid(), "moto_endpoint": moto_url, **run_state,
            "canvas_queue_url": aws.canvas_queue_url, "bus_name": aws.bus_name,
            "notifications_file": str(notifications), "control_key": control_key,
            "simulator_url": simulator.base_url if simulator else None, "canvas_url": canvas_url,
            "root_account_uuid": simulator.root_account_uuid if simulator else None,
            "reconcile_seconds": canvas.reconcile_seconds, "stuck_minutes": os.environ["STUCK_MINUTES"],
        })
        print(banner(port, auth, aws, notifications, token, moto_url, root_accounts, hostnames,
                     canvas_lines(canvas, simulator, resources.CANVAS_TOKEN_SECRET),
                     urlsplit(canvas.url).netloc if canvas.url else None), flush=True)
        # The first pass before anything else: it records, without alerting, what had ended before (a
        # new deployment pages nobody for last week's imports); every end after it alerts. Against the
        # simulator (empty, on this machine) it is quick, and done before the webhook serves, so that
        # `make simulate` always comes after it; another Canvas is read from the reconciler's thread.
        if simulator is not None and not stop.is_set():
            try:
                reconciler.run_pass("at start")
            except Exception:
                pass  # said by run_pass; the next pass tries again
        else:
            reconciler.first_pass_now = True
        reconciler.start()
        workers.append(reconciler)
        if not stop.is_set():  # Ctrl-C during start-up: straight to the clean-up
            gateway.serve_forever(poll_interval=0.2)
        return 0
    finally:
        stop.set()
        for worker in workers:
            if worker.ident is not None:  # started
                worker.join(timeout=5)
        if simulator is not None:
            simulator.stop()
        moto.stop()
        settings.remove_state(os.getpid())
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
