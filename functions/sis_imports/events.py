"""The Canvas Live Event envelope for SIS batches, validated with pydantic v2.

`parse_event` turns a decoded JSON object into a `SisBatchEvent`, an `IgnoredEvent` (another
Canvas event type) or raises `InvalidEvent`, whose errors name the offending field and never
echo its value (values can hold tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError, field_validator

from .states import WorkflowState

SIS_EVENT_NAMES = frozenset({"sis_batch_created", "sis_batch_updated"})
EVENT_TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?")


def _id_to_str(value: Any) -> Any:
    # Canvas sends ids as strings; tolerate numbers (never booleans) and keep strings.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# Ids become DynamoDB keys and URL path segments: keep them to a safe alphabet.
Id = Annotated[str, BeforeValidator(_id_to_str), StringConstraints(pattern=r"^[A-Za-z0-9_.:~-]{1,128}$")]
OptionalId = Id | None
OptionalText = Annotated[str, BeforeValidator(_id_to_str), StringConstraints(max_length=128)] | None
Text = Annotated[str, StringConstraints(max_length=8192)] | None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_name: Literal["sis_batch_created", "sis_batch_updated"]
    event_time: str
    root_account_uuid: Id
    root_account_id: OptionalId = None
    hostname: Text = None
    user_id: OptionalText = None
    user_login: Text = None
    # Stored only redacted and cut to 2,048 characters (redact.py): a long one is no reason to refuse.
    url: str | None = None
    referrer: str | None = None
    # Only what the core uses is declared (each field costs cold start). client_ip, user_agent,
    # session_id and the rest are ignored on purpose: never stored.

    @field_validator("event_time")
    @classmethod
    def _event_time(cls, value: str) -> str:
        if not EVENT_TIME_FORMAT.fullmatch(value):
            raise ValueError("must be ISO-8601 UTC with milliseconds, like 2020-01-14T14:14:11.498Z")
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            raise ValueError("is not a real date and time") from None
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not HOSTNAME.fullmatch(value):
            raise ValueError("must be a host name like canvas.example.edu")
        return value


class SisBatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sis_batch_id: Id
    account_id: Id
    workflow_state: WorkflowState


class SisBatchEvent(BaseModel):
    """A `sis_batch_created` or `sis_batch_updated` Live Event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: Metadata
    body: SisBatchBody

    @property
    def event_name(self) -> str:
        return self.metadata.event_name

    @property
    def event_time(self) -> str:
        return self.metadata.event_time

    @property
    def root_account_uuid(self) -> str:
        return self.metadata.root_account_uuid

    @property
    def sis_batch_id(self) -> str:
        return self.body.sis_batch_id

    @property
    def workflow_state(self) -> WorkflowState:
        return self.body.workflow_state


# Plain dataclasses: only what Canvas sends needs pydantic (each model costs cold start).
@dataclass(frozen=True)
class IgnoredEvent:
    """Another Canvas event type: acknowledged, not stored."""

    event_name: str


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class InvalidEvent(Exception):
    """The input is not a valid SIS batch event; `errors` name each bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def parse_event(raw: Any) -> SisBatchEvent | IgnoredEvent:
    if not isinstance(raw, dict):
        raise InvalidEvent([FieldError(field="(event)", message="must be a JSON object with metadata and body")])
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        raise InvalidEvent([FieldError(field="metadata", message="is required and must be an object")])
    event_name = metadata.get("event_name")
    if not isinstance(event_name, str) or not event_name:
        raise InvalidEvent([FieldError(field="metadata.event_name", message="is required and must be a string")])
    if event_name not in SIS_EVENT_NAMES:
        return IgnoredEvent(event_name=event_name[:64])
    try:
        return SisBatchEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(
            [
                FieldError(field=".".join(str(part) for part in err["loc"]), message=err["msg"])
                for err in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None
