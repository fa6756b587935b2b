"""The why of an end, read from Canvas's SIS Import API when the alert goes out.

Bounded: one request, a few seconds, one quick retry only when throttled; when Canvas does not answer
in time, or the host has no configured instance, the alert goes out without details and says why. canvasapi (the
reconciler's layer) is imported on the first read, never at the notifier's cold start.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit

from ..core.alert_text import details_of
from ..core.batch import Batch


class CanvasDetails:
    """Each batch's instance: the one whose host the batch names, else the one whose root account
    (`GET accounts/self`'s `uuid`, learnt once per container) is the batch's. A host is only an alias:
    a vanity domain, or a batch whose creation events were lost (no host at all), still finds its
    instance, and the alert names the instance's own host."""

    def __init__(self, instances: list[tuple[str, Callable[[], str]]], timeout: float = 3.0):
        """`instances`: (base URL, token provider) of each Canvas instance the reconciler reads."""
        self._instances = [(url, token, (urlsplit(url).hostname or "").lower()) for url, token in instances]
        self._timeout = timeout
        self._apis: dict[str, Any] = {}
        self._uuids: dict[str, str] = {}  # base URL -> its root account's uuid

    def _api(self, url: str, token: Callable[[], str]) -> Any:
        from .canvas_api import CanvasApi  # the reconciler's layer, loaded on first use

        if url not in self._apis:
            # One quick retry when Canvas throttles (its bucket refills in a second); a timeout or a 5xx is
            # not retried: the alert goes out without details rather than late.
            self._apis[url] = CanvasApi(url, token, timeout=self._timeout, max_retries=1, backoff=0.5, max_wait=2)
        return self._apis[url]

    def _instance(self, batch: Batch) -> tuple[str, Callable[[], str], str] | None:
        host = (batch.hostname or "").lower()
        for instance in self._instances:
            if instance[2] == host:
                return instance
        from .canvas_api import CanvasError

        found = []
        for url, token, name in self._instances:
            if url not in self._uuids:
                try:
                    self._uuids[url] = str(self._api(url, token).account_self().get("uuid"))
                except CanvasError:
                    continue  # not learnt this time; asked again for the next alert
            if self._uuids[url] == batch.root_account_uuid:
                found.append((url, token, name))
        return found[0] if len(found) == 1 else None  # two instances of one uuid: only a host tells them apart

    def host_for(self, batch: Batch) -> str | None:
        """The canonical host of the batch's instance (None when no instance is the batch's)."""
        instance = self._instance(batch)
        return instance[2] if instance else None

    def fetch(self, batch: Batch) -> tuple[dict[str, Any] | None, str | None]:
        """(details, None), or (None, the reason there are none)."""
        instance = self._instance(batch)
        if instance is None:
            return None, ("no Canvas instance is configured for "
                          f"{batch.hostname or 'this batch (no host name known)'} nor for root account "
                          f"{batch.root_account_uuid}")
        from .canvas_api import CanvasError

        try:
            return details_of(self._api(instance[0], instance[1]).sis_import("self", batch.sis_batch_id)), None
        except CanvasError as exc:  # its message names the host and route, never the token
            return None, f"Canvas did not answer in time or refused: {exc}"
        except ValueError as exc:
            return None, f"Canvas's answer could not be read: {exc}"
