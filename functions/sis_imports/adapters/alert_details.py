"""The why of an end, read from Canvas's SIS Import API when the alert goes out.

Bounded (`worst_seconds`): a few seconds a request, a throttled read asked twice more after short waits;
when Canvas does not answer in time, or the host has no configured instance, the alert goes out without
details and says why. canvasapi (the reconciler's layer) is imported on the first read, never at the
notifier's cold start.
"""

from __future__ import annotations

import time
from typing import Any, Callable
from urllib.parse import urlsplit

from ..core.alert_text import details_of
from ..core.batch import Batch

READ_TIMEOUT_S = 3.0
# Canvas's bucket leaks 10 units a second and a read costs under one: a throttled read is asked again after
# 0.5 s, then 1 s. A timeout or a 5xx is not retried: the alert goes out without details rather than late.
THROTTLE_RETRIES = 2
MAX_WAIT_S = 2.0  # any one wait: for the quota before a read, a backoff, or Canvas's Retry-After
# Learning root accounts starts no read once two reads' time is spent: it takes at most three per alert.
LEARN_TIMEOUTS = 3


def worst_seconds(timeout: float = READ_TIMEOUT_S) -> float:
    """The longest `fetch` takes: learning root accounts, then the read, each try at its deadline and
    after its longest wait."""
    return LEARN_TIMEOUTS * timeout + (THROTTLE_RETRIES + 1) * (timeout + MAX_WAIT_S)


class CanvasDetails:
    """Each batch's instance: the one whose host the batch names, else the one whose root account
    (`GET accounts/self`'s `uuid`, learnt once per container) is the batch's. A host is only an alias:
    a vanity domain, or a batch whose creation events were lost (no host at all), still finds its
    instance, and the alert names the instance's own host.

    Learning is bounded per alert (a consortium has many instances, and a down one answers nothing):
    one try each, no retry, the instances never asked first, then those asked longest ago; what is not
    learnt in time is learnt for a later alert."""

    def __init__(self, instances: list[tuple[str, Callable[[], str]]], timeout: float = READ_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic):
        """`instances`: (base URL, token provider) of each Canvas instance the reconciler reads."""
        self._instances = [(url, token, (urlsplit(url).hostname or "").lower()) for url, token in instances]
        self._timeout = timeout
        self._clock = clock
        self._apis: dict[str, Any] = {}
        self._learners: dict[str, Any] = {}
        self._uuids: dict[str, str] = {}  # base URL -> its root account's uuid
        self._asked: dict[str, float] = {}  # base URL -> when its uuid was last asked for, in vain
        self._last: tuple[Batch, tuple[Any, str | None]] | None = None  # the last batch looked up, and the answer

    def _api(self, url: str, token: Callable[[], str], learning: bool = False) -> Any:
        from .canvas_api import CanvasApi  # the reconciler's layer, loaded on first use

        apis = self._learners if learning else self._apis
        if url not in apis:
            apis[url] = (CanvasApi(url, token, timeout=self._timeout, max_retries=0, max_wait=0) if learning else
                         CanvasApi(url, token, timeout=self._timeout, max_retries=THROTTLE_RETRIES, backoff=0.5,
                                   max_wait=MAX_WAIT_S))
        return apis[url]

    def _instance(self, batch: Batch) -> tuple[tuple[str, Callable[[], str], str] | None, str | None]:
        """(the batch's instance, None), or (None, why none). The same batch (the very object: one record's
        `host_for`, then its `fetch`) is looked up once; a later record of it is looked up again."""
        if self._last is None or self._last[0] is not batch:
            self._last = batch, self._look_up(batch)
        return self._last[1]

    def _look_up(self, batch: Batch) -> tuple[tuple[str, Callable[[], str], str] | None, str | None]:
        host = (batch.hostname or "").lower()
        for instance in self._instances:
            if instance[2] == host:
                return instance, None
        from .canvas_api import CanvasError

        started = self._clock()
        unknown = sorted((i for i in self._instances if i[0] not in self._uuids),
                         key=lambda i: self._asked.get(i[0], float("-inf")))
        for url, token, _ in unknown:
            if self._clock() - started >= (LEARN_TIMEOUTS - 1) * self._timeout:
                break  # out of this alert's time: learnt for a later one
            try:
                self._uuids[url] = str(self._api(url, token, learning=True).account_self().get("uuid"))
            except CanvasError:
                self._asked[url] = self._clock()  # asked again for a later alert, after the others
        found = [i for i in self._instances if self._uuids.get(i[0]) == batch.root_account_uuid]
        if len(found) == 1:
            return found[0], None
        where = f"{batch.hostname or 'this batch (no host name known)'} nor for root account {batch.root_account_uuid}"
        if found:  # two instances of one uuid: only a host tells them apart
            return None, f"no Canvas instance is configured for {where} (two instances have that root account)"
        unlearnt = sum(1 for i in self._instances if i[0] not in self._uuids)
        if unlearnt:
            return None, (f"no Canvas instance is configured for {where} among those whose root account is known "
                          f"({unlearnt} of {len(self._instances)} not yet learnt: asked again for a later alert)")
        return None, f"no Canvas instance is configured for {where}"

    def host_for(self, batch: Batch) -> str | None:
        """The canonical host of the batch's instance (None when no instance is the batch's)."""
        instance, _ = self._instance(batch)
        return instance[2] if instance else None

    def fetch(self, batch: Batch) -> tuple[dict[str, Any] | None, str | None]:
        """(details, None), or (None, the reason there are none)."""
        instance, unavailable = self._instance(batch)
        if instance is None:
            return None, unavailable
        from .canvas_api import CanvasError

        try:
            return details_of(self._api(instance[0], instance[1]).sis_import("self", batch.sis_batch_id)), None
        except CanvasError as exc:  # its message names the host and route, never the token
            return None, f"Canvas did not answer in time or refused: {exc}"
        except ValueError as exc:
            return None, f"Canvas's answer could not be read: {exc}"
