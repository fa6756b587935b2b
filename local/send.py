"""`make send FILE=… [VIA=https|sqs|eventbridge]`: send Canvas events to the running `make run`.

FILE holds one event or a JSON list of events, sent in order. Over HTTPS each event is signed
with the development key when the run uses SIS_AUTH=jwt, as Canvas signs with "Sign Payload" on.
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


def send_https(state: dict[str, Any], event: dict[str, Any]) -> str:
    url = f"http://127.0.0.1:{state['port']}/events"
    if state["auth"] == "jwt":
        from local.dev_keys import DevKey

        body, content_type = DevKey.load(Path(state["signing_key"])).sign(event).encode(), "application/jwt"
    else:
        body, content_type = json.dumps(event).encode(), "application/json"
    if state["auth"] == "token":
        url += f"?token={state['token']}"
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return f"{response.status} {response.read().decode()}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read().decode()}"


def _client(state: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def send_sqs(state: dict[str, Any], event: dict[str, Any]) -> str:
    response = _client(state, "sqs").send_message(QueueUrl=state["canvas_queue_url"], MessageBody=json.dumps(event))
    return f"queued on {state['canvas_queue_url'].rsplit('/', 1)[-1]} ({response['MessageId']})"


def send_eventbridge(state: dict[str, Any], event: dict[str, Any]) -> str:
    entry = {
        "EventBusName": state["bus_name"],
        "Source": "canvas.live-events",
        "DetailType": str((event.get("metadata") or {}).get("event_name", "unknown")),
        "Detail": json.dumps(event),
    }
    response = _client(state, "events").put_events(Entries=[entry])
    if response["FailedEntryCount"]:
        return f"refused: {response['Entries'][0].get('ErrorMessage')}"
    return f"put on {state['bus_name']} ({response['Entries'][0]['EventId']})"


SENDERS = {"https": send_https, "sqs": send_sqs, "eventbridge": send_eventbridge}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a JSON file with one Canvas event or a list of them")
    parser.add_argument("--via", choices=sorted(SENDERS), default="https")
    args = parser.parse_args(argv)
    try:
        loaded = json.loads(args.file.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    events = loaded if isinstance(loaded, list) else [loaded]
    state = settings.read_state()
    for event in events:
        meta, body = event.get("metadata") or {}, event.get("body") or {}
        label = f"{meta.get('event_name')} {body.get('sis_batch_id')} {body.get('workflow_state')}"
        print(f"{args.via:11} {label:50} -> {SENDERS[args.via](state, event)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
