"""`make send FILE=… [VIA=https|sqs|eventbridge] [KEEP_TIMES=1]`: send Canvas events to the running `make run`.

FILE holds one Canvas Live Event or a JSON list of them, sent in order, one line printed per event.
  https        POST to the webhook, signed with the development key (RS256, kid header) when the
               run uses SIS_AUTH=jwt, as Canvas does with "Sign Payload" on; unsigned JSON otherwise,
               with ?token=… in token mode
  sqs          SendMessage to the canvas-live-events-local queue, as Canvas's SQS transport does
  eventbridge  PutEvents to the local bus: DetailType = metadata.event_name, Detail = the event

Event times are shifted by default: every metadata.event_time of the file moves by one offset, so that
the newest becomes now and the spacing between them stays (the ingest ignores events older than the
retention period and refuses those from the future, and the examples carry fixed times). Events that
are not objects, or whose event_time is not Canvas's format, are sent as they are. --keep-times
(KEEP_TIMES=1) sends every time as written.

Exits 1 when an event is refused (HTTP status other than 2xx, or a failed PutEvents entry).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from local import settings

SOURCE = "canvas.live-events"


class Refused(Exception):
    """The path answered, and said no."""


def send_https(state: dict[str, Any], event: Any) -> str:
    url = f"http://127.0.0.1:{state['port']}/events"
    if state.get("auth") == "jwt":
        from local.dev_keys import DevKey

        if not isinstance(event, dict):
            raise Refused("not sent: only a JSON object can be signed as JWT claims")

        token = DevKey.load(Path(state["signing_key"])).sign(event, issuer=state.get("jwt_issuer"))
        body, content_type = token.encode(), "application/jwt"
    else:
        body, content_type = json.dumps(event).encode(), "application/json"
    if state.get("auth") == "token":
        url += f"?token={state['token']}"
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # Canvas's timeout
            return f"{response.status} {response.read().decode()}"
    except urllib.error.HTTPError as exc:
        raise Refused(f"{exc.code} {exc.read().decode()}") from None


def _client(state: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def send_sqs(state: dict[str, Any], event: Any) -> str:
    response = _client(state, "sqs").send_message(QueueUrl=state["canvas_queue_url"], MessageBody=json.dumps(event))
    return f"queued on {state['canvas_queue_url'].rsplit('/', 1)[-1]} (message {response['MessageId']})"


def send_eventbridge(state: dict[str, Any], event: Any) -> str:
    metadata = event.get("metadata") if isinstance(event, dict) else None
    entry = {
        "EventBusName": state["bus_name"],
        "Source": SOURCE,
        "DetailType": str((metadata or {}).get("event_name") or "unknown"),
        "Detail": json.dumps(event),
    }
    response = _client(state, "events").put_events(Entries=[entry])
    if response["FailedEntryCount"]:
        raise Refused(f"PutEvents refused it: {response['Entries'][0].get('ErrorMessage')}")
    return f"put on bus {state['bus_name']} (event {response['Entries'][0]['EventId']})"


SENDERS = {"https": send_https, "sqs": send_sqs, "eventbridge": send_eventbridge}

EVENT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")  # Canvas's: UTC, milliseconds


def event_time(event: Any) -> datetime | None:
    """An event's metadata.event_time, or None when it has none in Canvas's format."""
    metadata = event.get("metadata") if isinstance(event, dict) else None
    value = metadata.get("event_time") if isinstance(metadata, dict) else None
    if not isinstance(value, str) or not EVENT_TIME.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:  # the right shape, not a date (2020-02-30)
        return None


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rebase(events: list[Any], now: datetime | None = None) -> tuple[list[Any], timedelta | None]:
    """The events with every event_time moved by one offset, so that the newest is `now` (to the
    millisecond), and that offset; None when no event has a time to move."""
    times = [t for t in map(event_time, events) if t is not None]
    if not times:
        return events, None
    now = now or datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    offset = now - max(times)
    shifted = []
    for event in events:
        moment = event_time(event)
        if moment is not None:
            try:
                event = {**event, "metadata": {**event["metadata"], "event_time": iso(moment + offset)}}
            except OverflowError:  # beyond year 1 or 9999 once moved: sent as written
                pass
        shifted.append(event)
    return shifted, offset


def describe_offset(offset: timedelta) -> str:
    """+2339 days 03:55:12.345, -00:00:05.000: days when there are any, then h:m:s.ms."""
    sign = "-" if offset < timedelta(0) else "+"
    ms = abs(offset) // timedelta(milliseconds=1)
    days, ms = divmod(ms, 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"
    return f"{sign}{days} day{'s' if days != 1 else ''} {clock}" if days else f"{sign}{clock}"


def label(event: Any) -> str:
    if not isinstance(event, dict):
        return "(not a JSON object)"
    meta, body = event.get("metadata") or {}, event.get("body") or {}
    if not isinstance(meta, dict) or not isinstance(body, dict):
        return "(no metadata or body)"
    return f"{meta.get('event_name')} {body.get('sis_batch_id')} {body.get('workflow_state')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make send", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a JSON file with one Canvas event or a list of them")
    parser.add_argument("--via", choices=sorted(SENDERS), default="https", help="the ingress path (https)")
    parser.add_argument("--port", type=int, help="the run's HTTP port (default: the one in its state file)")
    parser.add_argument("--keep-times", action="store_true",
                        help="send event times as written (default: shift them so that the newest is now)")
    args = parser.parse_args(argv)
    try:
        loaded = json.loads(args.file.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    events = loaded if isinstance(loaded, list) else [loaded]
    state = settings.read_state()
    settings.loopback_only()
    if args.port:
        state["port"] = args.port
    if not args.keep_times:
        now = datetime.now(timezone.utc)
        events, offset = rebase(events, now)
        if offset is not None:
            print(f"event times shifted by {describe_offset(offset)}, so that the newest is now ({iso(now)}); "
                  "KEEP_TIMES=1 (--keep-times) sends them as written", flush=True)
    refused = 0
    for event in events:
        prefix = f"{args.via:11} {label(event):50} ->"
        try:
            print(f"{prefix} {SENDERS[args.via](state, event)}", flush=True)
        except Refused as exc:
            refused += 1
            print(f"{prefix} {exc}", flush=True)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            print(f"{prefix} cannot reach the local run ({reason}); is `make run` still going?", file=sys.stderr)
            return 1
        except Exception as exc:  # botocore's endpoint and client errors: one line, not a traceback
            print(f"{prefix} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
