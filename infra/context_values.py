"""Reading one CDK context value (a list, a number, a yes/no, a choice, a pattern), with an error naming the key."""

from __future__ import annotations

import re
from typing import Any


class ConfigError(ValueError):
    pass


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value or "").split(",") if part.strip())


def _int(key: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"context {key} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"context {key} must be between {low} and {high}, not {number}")
    return number


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"context {key} must be true or false, not {value!r}")


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigError(f"context {key} must be one of {', '.join(allowed)}, not {value!r}")
    return text


def _each(key: str, values: tuple[str, ...], pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    for value in values:
        if not pattern.fullmatch(value):
            raise ConfigError(f"context {key}: {value!r} is not {what}")
    return values
