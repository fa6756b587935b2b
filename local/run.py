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
  a second simulator, the school (local/school.py): hourly imports; POST /_local/school (local-only)
      places its past and starts reading it, for `make simulate`

Environment: PORT (3000), SIS_AUTH (jwt | token | none), SIS_ROOT_ACCOUNTS (uuid,...; unset: * = any,
said at start; the simulator takes the first uuid listed, the school (local/school.py) the second), SIS_HOSTNAMES (hostname,...; unset: any),
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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))  # the Lambda code root, as in the deployed bundle

from local import school, settings  # noqa: E402
from local.gateway import (BATCH_ROUTE, EVENTS_ROUTE, JWKS_PATH, LIST_ROUTE, RECONCILE_CONTROL,  # noqa: E402
                           LocalGateway)

from local.run_setup import (ANY, DEFAULT_LOOKBACK_HOURS, DEFAULT_RECONCILE_SECONDS,  # noqa: E402
                             DEFAULT_STUCK_MINUTES, SIMULATOR_THROTTLE, CanvasConfig, allowed, aws_environment,
                             banner, canvas_config, canvas_lines, fail)


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
    simulator = school_simulator = None
    school_line = None
    try:
        moto_url = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
        aws_environment(moto_url)

        from local import resources

        token = secrets.token_urlsafe(24) if auth == "token" else None
        aws = resources.create(token)
        os.environ.update(TABLE_NAME=aws.table_name, TOPIC_ARN=aws.topic_arn, RETENTION_DAYS="30", SIS_AUTH=auth,
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
            has_school, school_uuid, school_line = school.account(root_accounts, hostnames)
            if has_school:  # issue 17's story in `make simulate` (local/school.py)
                school_simulator = CanvasSimulator(
                    token=secrets.token_urlsafe(32), control_key=control_key, on_event=delivery.enqueue,
                    root_account_uuid=school_uuid, account_name="Hourly School", hostname=school.SCHOOL_HOST,
                    # Never throttled: its story is the figures of each end, which a details read Canvas
                    # throttles twice would leave unread (the alert then says so); throttling is the other
                    # simulator's story.
                    throttle_probability=0.0)
                school_simulator.pending_events = delivery.pending
                school_simulator.start()
        canvas_url = canvas.url or simulator.base_url
        canvas_secret = resources.canvas_token_secret(canvas.token or simulator.token)
        instances = [{"url": canvas_url, "token_secret": canvas_secret}]
        if school_simulator is not None:
            instances.append({"url": school.instance_url(school_simulator), "token_secret": resources.canvas_token_secret(
                school_simulator.token, f"{resources.CANVAS_TOKEN_SECRET}-school")})
        os.environ["CANVAS_INSTANCES"] = json.dumps(instances)
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
        if school_simulator is not None:
            gateway.controls[school.SCHOOL_CONTROL] = school.School(school_simulator, reconciler,
                                                                    handlers.reconciler.app(), stop).control
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
            "school_url": school_simulator.base_url if school_simulator else None,
            "school_root_account_uuid": school_simulator.root_account_uuid if school_simulator else None,
            "reconcile_seconds": canvas.reconcile_seconds, "stuck_minutes": os.environ["STUCK_MINUTES"],
        })
        print(banner(port, auth, aws, notifications, token, moto_url, root_accounts, hostnames,
                     canvas_lines(canvas, simulator, resources.CANVAS_TOKEN_SECRET, school_simulator, school_line),
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
        for one in (simulator, school_simulator):
            if one is not None:
                one.stop()
        moto.stop()
        settings.remove_state(os.getpid())
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
