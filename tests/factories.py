"""Canvas events for tests, shaped like the events docs/canvas.md describes (and examples/)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

ROOT_ACCOUNT_UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
ACCESS_TOKEN = "1398~agJdJdaSLJfJULBa2803dfLJAFdsklj349FADJSLdsaLFlJUBOAUO39289342FJj"

# Event times are relative to when the tests run, never a calendar date: the ingest refuses events
# from the future and ignores those older than the retention period, so a fixed date would fail one
# day. Two days ago at 09:00 UTC keeps whole seconds and stays inside every window the tests use.
NOW = datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """A moment in Canvas's event_time format (UTC, milliseconds)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


T0 = iso((NOW - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0))

CREATED_EXAMPLE: dict[str, Any] = {
    "metadata": {
        "root_account_uuid": ROOT_ACCOUNT_UUID,
        "root_account_id": "21070000000000001",
        "root_account_lti_guid": f"{ROOT_ACCOUNT_UUID}:canvas-lms",
        "user_login": "mysisimporterlogin",
        "user_account_id": "21070000000000001",
        "user_sis_id": None,
        "user_id": "21070000000000109",
        "time_zone": "America/Chicago",
        "developer_key_id": "170000000056",
        "context_type": "Account",
        "context_id": "21070000000000001",
        "context_sis_source_id": None,
        "context_account_id": "21070000000000001",
        "context_role": "AccountAdmin",
        "request_id": "a3f928df-a423-423d-123a-8200f9ab09c3",
        "session_id": None,
        "hostname": "oxana.instructure.com",
        "http_method": "POST",
        "user_agent": "python-requests/2.5.1",
        "client_ip": "93.184.216.34",
        "url": "https://oxana.instructure.com/api/v1/accounts/self/sis_imports.json"
        f"?access_token={ACCESS_TOKEN}&import_type=ims_xml&extension=xml",
        "referrer": None,
        "producer": "canvas",
        "event_name": "sis_batch_created",
        "event_time": T0.replace(":00.000Z", ":11.498Z"),  # Canvas's example is from 2020: too old to apply
    },
    "body": {"sis_batch_id": "31048324", "account_id": "1", "workflow_state": "initializing"},
}

UPDATED_EXAMPLE: dict[str, Any] = copy.deepcopy(CREATED_EXAMPLE)
UPDATED_EXAMPLE["metadata"].update(
    {
        "event_name": "sis_batch_updated",
        "event_time": T0.replace(":00.000Z", ":25.548Z"),
        "time_zone": "America/Los_Angeles",
        "request_id": "ab398133-5324-4234-b31b-419b8d9f1209",
        "url": "https://oxana.instructure.com/api/v1/accounts/1/sis_imports.json"
        "?import_type=instructure_csv&override_sis_stickiness=true&extension=csv",
    }
)
UPDATED_EXAMPLE["body"] = {"sis_batch_id": "1440004", "account_id": "1", "workflow_state": "created"}

BACKGROUND_KEYS = ("root_account_uuid", "root_account_id", "root_account_lti_guid", "producer", "event_name", "event_time")


def at(base: str, seconds: float) -> str:
    """`base` plus `seconds`, in Canvas's event_time format."""
    return iso(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc) + timedelta(seconds=seconds))


def canvas_event(
    workflow_state: str,
    event_time: str,
    sis_batch_id: str = "1440004",
    *,
    root_account_uuid: str = ROOT_ACCOUNT_UUID,
    event_name: str | None = None,
    request_context: bool | None = None,
) -> dict[str, Any]:
    """An event as Canvas sends it: request metadata for the creating request, job metadata after."""
    if event_name is None:
        event_name = "sis_batch_created" if workflow_state == "initializing" else "sis_batch_updated"
    if request_context is None:
        request_context = workflow_state in ("initializing", "created")
    metadata = copy.deepcopy(CREATED_EXAMPLE["metadata"])
    if not request_context:
        metadata = {key: metadata[key] for key in BACKGROUND_KEYS}
        metadata["job_id"] = "1020000000123456"
        metadata["job_tag"] = "SisBatch#process"
    metadata.update({"event_name": event_name, "event_time": event_time, "root_account_uuid": root_account_uuid})
    return {
        "metadata": metadata,
        "body": {"sis_batch_id": sis_batch_id, "account_id": "1", "workflow_state": workflow_state},
    }


def failed_import(sis_batch_id: str = "1440004", start: str = T0) -> list[dict[str, Any]]:
    """A whole import that ends in failed_with_messages, in order."""
    return [
        canvas_event("initializing", start, sis_batch_id),
        canvas_event("created", start, sis_batch_id),
        canvas_event("importing", at(start, 4.25), sis_batch_id),
        canvas_event("failed_with_messages", at(start, 61.5), sis_batch_id),
    ]
