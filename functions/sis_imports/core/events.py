"""The Canvas Live Event envelope for SIS batches, validated with pydantic v2's engine.

`parse_event` turns a decoded JSON object into a `SisBatchEvent`, an `IgnoredEvent` (another
Canvas event type) or raises `InvalidEvent`, whose errors name the offending field and never
echo its value (values can hold tokens).

The schema is written with pydantic-core's schema API rather than as `BaseModel` classes: it is
the same validator (same rules, same error messages), without the model machinery whose import
costs ingest about 0.1 s of cold start (see README, "Cold start").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic_core import SchemaValidator
    from pydantic_core import core_schema as cs

from .states import WorkflowState
from .table import ID_PATTERN

SIS_EVENT_NAMES = frozenset({"sis_batch_created", "sis_batch_updated"})
# Canvas events are three levels deep; anything much deeper is not an event, and unbounded nesting
# would exhaust the parser's recursion.
MAX_DEPTH = 32


def _has_surrogate(text: str) -> bool:
    # Only non-ASCII text can hold one; re caches the pattern after its first use (not at import).
    return not text.isascii() and re.search(r"[\ud800-\udfff]", text) is not None


# [0-9], never \d: in Python's str patterns \d also matches other scripts' digits ("٢٠٢٦"), which
# strptime reads as numbers but which sort after every ASCII time, freezing a batch.
EVENT_TIME_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")


def _id_to_str(value: Any) -> Any:
    # Canvas sends ids as strings; tolerate numbers (never booleans) and keep strings.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _event_time(value: str) -> str:
    if not value.isascii():
        raise ValueError("must be written in ASCII digits, like 2020-01-14T14:14:11.498Z")
    if not EVENT_TIME_FORMAT.fullmatch(value):
        raise ValueError("must be ISO-8601 UTC with milliseconds, like 2020-01-14T14:14:11.498Z")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise ValueError("is not a real date and time") from None
    return value


def _hostname(value: str) -> str:
    if not HOSTNAME.fullmatch(value):
        raise ValueError("must be a host name like canvas.example.edu")
    return value


@cache
def validator() -> SchemaValidator:
    """The event validator, built on first call: the reconciler loads this module for its dataclasses and
    never validates an event (pydantic-core's import and this build cost it about 0.1 of the cold-start
    baseline); the functions that do call it at init (wiring.sis_batch_ingest)."""
    from pydantic_core import SchemaValidator
    from pydantic_core import core_schema as cs

    def _id() -> cs.CoreSchema:
        return cs.no_info_before_validator_function(_id_to_str, cs.str_schema(pattern=ID_PATTERN))

    def _optional(schema: cs.CoreSchema) -> cs.TypedDictField:
        return cs.typed_dict_field(cs.nullable_schema(schema), required=False)

    def _required(schema: cs.CoreSchema) -> cs.TypedDictField:
        return cs.typed_dict_field(schema, required=True)

    _METADATA = cs.typed_dict_schema(
        {
            "event_name": _required(cs.literal_schema(sorted(SIS_EVENT_NAMES))),
            "event_time": _required(cs.no_info_after_validator_function(_event_time, cs.str_schema())),
            "root_account_uuid": _required(_id()),
            "root_account_id": _optional(_id()),
            "hostname": _optional(cs.no_info_after_validator_function(_hostname, cs.str_schema(max_length=8192))),
            "user_id": _optional(cs.no_info_before_validator_function(_id_to_str, cs.str_schema(max_length=128))),
            "user_login": _optional(cs.str_schema(max_length=8192)),
            # Stored only redacted and cut to 2,048 characters (redact.py): a long one is no reason to refuse.
            "url": _optional(cs.str_schema()),
            "referrer": _optional(cs.str_schema()),
            # Only what the core uses is declared. client_ip, user_agent, session_id and the rest are
            # ignored on purpose: never stored.
        },
        extra_behavior="ignore",
    )
    _BODY = cs.typed_dict_schema(
        {
            "sis_batch_id": _required(_id()),
            "account_id": _required(_id()),
            "workflow_state": _required(cs.enum_schema(WorkflowState, list(WorkflowState), sub_type="str")),
        },
        extra_behavior="ignore",
    )
    return SchemaValidator(
        cs.typed_dict_schema({"metadata": _required(_METADATA), "body": _required(_BODY)}, extra_behavior="ignore")
    )


@dataclass(frozen=True)
class Metadata:
    event_name: str
    event_time: str
    root_account_uuid: str
    root_account_id: str | None = None
    hostname: str | None = None
    user_id: str | None = None
    user_login: str | None = None
    url: str | None = None
    referrer: str | None = None


@dataclass(frozen=True)
class SisBatchBody:
    sis_batch_id: str
    account_id: str
    workflow_state: WorkflowState


@dataclass(frozen=True)
class SisBatchEvent:
    """A `sis_batch_created` or `sis_batch_updated` Live Event."""

    metadata: Metadata
    body: SisBatchBody

    @classmethod
    def validate(cls, raw: Any) -> SisBatchEvent:
        """Raises pydantic-core's ValidationError, with each error's `loc` naming the field."""
        valid = validator().validate_python(raw)
        return cls(Metadata(**valid["metadata"]), SisBatchBody(**valid["body"]))

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


class NotJson(ValueError):
    """A body that is not a JSON document we can read; `str(exc)` says why."""


def decode_json(body: bytes | str) -> Any:
    """The JSON document in `body`; raises NotJson for anything else, however odd (never RecursionError)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise NotJson("the body is not valid JSON: nested too deeply") from None
    except ValueError:  # UnicodeDecodeError included: bytes that are not UTF-8
        raise NotJson("the body is not valid JSON (UTF-8)") from None


def _path(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{_printable(part)}" if out else _printable(part)
    return out or "(event)"


def _printable(name: str) -> str:
    """A key as it may appear in an error or a log: valid Unicode, short."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")[:64]


def shape_error(raw: Any) -> FieldError | None:
    """The first place where `raw` is not a sane JSON document: too deep, or text that is not
    valid Unicode (a lone surrogate, which JSON's \\u escapes can produce). Iterative: no recursion."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    while stack:
        value, parts = stack.pop()
        if len(parts) > MAX_DEPTH:
            return FieldError(field=_path(parts[:MAX_DEPTH]), message=f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            if _has_surrogate(value):
                return FieldError(field=_path(parts), message="is not valid Unicode (a lone surrogate)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _has_surrogate(key):
                    return FieldError(field=_path((*parts, key)), message="is a name that is not valid Unicode")
                stack.append((item, (*parts, key)))
        elif isinstance(value, list):
            stack.extend((item, (*parts, index)) for index, item in enumerate(value))
    return None


def parse_event(raw: Any) -> SisBatchEvent | IgnoredEvent:
    """Validate one decoded event (from any ingress); raises InvalidEvent naming each bad field."""
    problem = shape_error(raw)
    if problem is not None:
        raise InvalidEvent([problem])
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
    from pydantic_core import ValidationError

    try:
        return SisBatchEvent.validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(
            [
                FieldError(field=".".join(str(part) for part in err["loc"]), message=err["msg"])
                for err in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None
