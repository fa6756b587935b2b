"""`make send FILE=… [VIA=https|sqs|eventbridge]`: send Canvas events to the running `make run`.

FILE holds one Canvas Live Event or a JSON list of them, sent in order, one line printed per event.
  https        POST to the webhook, signed with the development key (RS256, kid header) when the
               run uses SIS_AUTH=jwt, as Canvas does with "Sign Payload" on; unsigned JSON otherwise,
               with ?token=… in token mode
  sqs          SendMessage to the canvas-live-events-local queue, as Canvas's SQS transport does
  eventbridge  PutEvents to the local bus: DetailType = metadata.event_name, Detail = the event
Exits 1 when an event is refused (HTTP status other than 2xx, or a failed PutEvents entry).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
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
