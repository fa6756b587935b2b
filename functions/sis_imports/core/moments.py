"""Canvas's times as epoch seconds: one parser for the SIS Import API's answers (the reconciler's readings) and
the figures of an end (core/unusual.py). Its own small module: both the reconciler and the notifier load it at
their cold start."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def epoch_seconds(value: Any) -> float | None:
    """An ISO 8601 time (`Z` or an offset; without one, UTC) as epoch seconds; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
