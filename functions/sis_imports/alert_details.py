"""The why of an end, read from Canvas's SIS Import API when the alert goes out.

Bounded: one request, a few seconds, one quick retry only when throttled; when Canvas does not answer
in time, or the host has no configured instance, the alert goes out without details and says why. canvasapi (the
reconciler's layer) is imported on the first read, never at the notifier's cold start.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit

from .alert_text import details_of
from .batch import Batch


class CanvasDetails:
    def __init__(self, instances: list[tuple[str, Callable[[], str]]], timeout: float = 3.0):
        """`instances`: (base URL, token provider) of each Canvas instance the reconciler reads."""
        self._by_host = {(urlsplit(url).hostname or "").lower(): (url, token) for url, token in instances}
        self._timeout = timeout
        self._apis: dict[str, Any] = {}

    def fetch(self, batch: Batch) -> tuple[dict[str, Any] | None, str | None]:
        """(details, None), or (None, the reason there are none)."""
        host = (batch.hostname or "").lower()
        if host not in self._by_host:
            return None, f"no Canvas instance is configured for {host or 'this batch (no host name known)'}"
        from .canvas_api import CanvasApi, CanvasError  # the reconciler's layer, loaded on first use

        if host not in self._apis:
            url, token = self._by_host[host]
            # One quick retry when Canvas throttles (its bucket refills in a second); a timeout or a 5xx is
            # not retried: the alert goes out without details rather than late.
            self._apis[host] = CanvasApi(url, token, timeout=self._timeout, max_retries=1, backoff=0.5, max_wait=2)
        try:
            return details_of(self._apis[host].sis_import("self", batch.sis_batch_id)), None
        except CanvasError as exc:  # its message names the host and route, never the token
            return None, f"Canvas did not answer in time or refused: {exc}"
        except ValueError as exc:
            return None, f"Canvas's answer could not be read: {exc}"
