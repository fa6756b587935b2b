"""Canvas's SIS Import API, read through canvasapi (ucfopen), for the reconciler and alert details.

Pure of AWS: the API token comes from a callable (in Lambda, a cached Powertools Parameters
`get_secret`). canvasapi does the Canvas conventions (the `Bearer` header, the `Link: rel="next"`
paging, the wrapped `{"sis_imports": [...]}` list); this module adds what canvasapi lacks (its
issue #629): a deadline on every request, a bounded backoff when Canvas throttles (403 "Rate Limit
Exceeded", or 429), a pause when `X-Rate-Limit-Remaining` runs low, a listing that stops on a `Link`
back to a page it already read or past a page cap, and exceptions of its own whose messages name
the host and the route, never the token. Answers are the raw JSON dicts.

`timeout` is a deadline for each whole request (connect, headers and body), not for each socket
read: a server that drips one byte a second is cut at the deadline. Only throttling is retried; a
timeout, a 5xx or a refused connection raises at once, so a caller with a deadline (the notifier)
can bound its wait with `timeout` and `max_retries=0`.

401 and 403 are told apart by status and headers, never by their text (Canvas translates it): a 401
with `WWW-Authenticate` is the token (invalid, expired or revoked); a 401 without it is a token
Canvas accepted for a user who lacks the permission (older releases; also a scoped token missing a
scope); a 403 with `X-Rate-Limit-Remaining` at 0, or Canvas's fixed "Rate Limit Exceeded" body, is
throttling; any other 403 is a permission.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from canvasapi.paginated_list import PaginatedList
from canvasapi.requester import Requester
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .http import Deadline

# canvasapi logs every URL at INFO, and at DEBUG the last 4 characters of the token and every
# answer's body (an errors_attachment URL carries its `verifier` capability): keep it quiet.
logging.getLogger("canvasapi").setLevel(logging.WARNING)

# Canvas's leaky bucket (app/middleware/request_throttle.rb): a request is refused once the bucket
# passes its high-water mark (600) after a 50 up-front charge; it drains at 10 units a second.
LEAK_PER_SECOND = 10.0
PERMISSION_HINT = "the token needs the import_sis or manage_sis permission on the root account"
MAX_PAGES = 200  # 20,000 imports at 100 a page: far beyond any reconcile window, short of a timeout


class CanvasError(Exception):
    """Canvas did not give the answer asked for. `host`, `route` (path, no query) and `status`."""

    def __init__(self, message: str, *, host: str, route: str, status: int | None = None):
        super().__init__(message)
        self.host, self.route, self.status = host, route, status


class CanvasUnauthorized(CanvasError):
    """401: the token is missing, invalid, expired or revoked."""


class CanvasForbidden(CanvasError):
    """The token is valid but lacks the permission (403, or Canvas's older 401 without WWW-Authenticate)."""


class CanvasThrottled(CanvasError):
    """Still rate limited after every retry."""


class CanvasUnavailable(CanvasError):
    """A timeout, a refused connection, or a 5xx."""


class CanvasNotFound(CanvasError):
    """404: no such account or import."""


class _Watching:
    """A urllib3 connection whose socket the calling thread's Deadline watches, request by request
    (a kept-alive connection serves several requests, each with its own deadline)."""

    sock: Any

    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]  # connects when needed, then sends
        deadline = getattr(_current, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)


class _WatchedHTTP(_Watching, HTTPConnection):
    pass


class _WatchedHTTPS(_Watching, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


_current = threading.local()


def _attributes(_requester: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    """canvasapi's content class for raw JSON: PaginatedList calls it with (requester, attributes)."""
    return attributes


def _path_id(value: int | str, *, allow_self: bool = False) -> str:
    """An id for a URL path: digits (or `self` for an account), so that no id read from an event can
    steer the token to another route."""
    text = str(value).strip()
    if text.isascii() and (text.isdigit() or (allow_self and text == "self")):
        return text
    raise ValueError(f"not a Canvas id: {value!r}")


def canvas_time(moment: datetime) -> str:
    """A moment as Canvas query parameters take it, floored to the second (a `created_since` window
    only widens)."""
    if moment.tzinfo is None:
        raise ValueError("a Canvas time needs a timezone")
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Requester(Requester):
    """canvasapi's Requester with the token fetched per request and every GET through CanvasApi._send."""

    def __init__(self, api: CanvasApi, base_url: str):
        super().__init__(base_url, "")
        self._api = api

    def request(self, method: str, endpoint: str | None = None, *args: Any, **kwargs: Any) -> requests.Response:
        self.access_token = self._api._token()
        try:
            return super().request(method, endpoint, *args, **kwargs)
        finally:
            self.access_token = ""  # the token is not kept on the object between calls,
            self._cache.clear()  # nor are the responses (their requests hold the header)

    def _get_request(self, url: str, headers: dict[str, str], params: Any = None, **kwargs: Any) -> requests.Response:
        return self._api._send(url, headers, params)


class CanvasApi:
    """GETs of one Canvas instance's SIS Import API. Counts `requests`, `throttled` answers and the
    seconds `waited`, for a pass to report as metrics (`reset_counters()` between passes)."""

    def __init__(
        self,
        base_url: str,
        token_provider: Callable[[], str],
        *,
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 30.0,
        low_remaining: float = 100.0,
        per_page: int = 100,
        max_pages: int = MAX_PAGES,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: Any = None,
    ):
        url = urlsplit(base_url.strip().rstrip("/"))
        if url.scheme not in ("https", "http") or not url.netloc or url.path not in ("", "/"):
            raise ValueError(f"a Canvas base URL is scheme://host (https://school.instructure.com), not {base_url!r}")
        self.base_url = f"{url.scheme}://{url.netloc}"
        self.host = url.netloc
        self._token_provider = token_provider
        if not timeout > 0:
            raise ValueError(f"a Canvas timeout must be a number of seconds above 0, not {timeout!r}")
        self.timeout = (connect_timeout if connect_timeout is not None else timeout, timeout)
        self.max_retries, self.backoff, self.max_wait = max_retries, backoff, max_wait
        self.low_remaining, self.per_page, self.max_pages = low_remaining, per_page, max_pages
        self._sleep, self._clock = sleep, clock
        self._log = logger or logging.getLogger(__name__)
        self._requester = _Requester(self, self.base_url)
        adapter = _DeadlineAdapter()
        self._requester._session.mount("https://", adapter)
        self._requester._session.mount("http://", adapter)
        self._listing: dict[str, Any] | None = None  # the pages of the listing being read
        self._last_token = ""
        self._quota: tuple[float, float] | None = None  # (X-Rate-Limit-Remaining, clock at answer)
        self.reset_counters()

    def reset_counters(self) -> None:
        self.requests = 0
        self.throttled = 0
        self.waited = 0.0

    def counters(self) -> dict[str, float]:
        return {"requests": self.requests, "throttled": self.throttled, "waited_seconds": round(self.waited, 3)}

    # -- the API ------------------------------------------------------------------------------

    def account_self(self) -> dict[str, Any]:
        """GET /api/v1/accounts/self: the token's root account; its `uuid` is the events' root_account_uuid."""
        account = self._json("accounts/self")
        if not isinstance(account, dict) or "id" not in account:
            raise self._error(CanvasError, "answered accounts/self without an account id", "/api/v1/accounts/self")
        return account

    def sis_import(self, account_id: int | str, sis_import_id: int | str) -> dict[str, Any]:
        """GET /api/v1/accounts/:account_id/sis_imports/:id (CanvasNotFound when Canvas has no such import)."""
        route = f"accounts/{_path_id(account_id, allow_self=True)}/sis_imports/{_path_id(sis_import_id)}"
        found = self._json(route)
        if not isinstance(found, dict) or "id" not in found:
            raise self._error(CanvasError, "answered without an SIS import", f"/api/v1/{route}")
        return found

    def sis_imports_created_since(
        self, account_id: int | str, since: datetime, *, created_before: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """The imports whose `created_at` is after `since` (strictly; floored to the second), newest
        first, every page followed by its `Link: rel="next"`. Lazy: a CanvasError can come mid-way."""
        route = f"accounts/{_path_id(account_id, allow_self=True)}/sis_imports"
        params: dict[str, Any] = {"created_since": canvas_time(since), "per_page": self.per_page}
        if created_before is not None:
            params["created_before"] = canvas_time(created_before)
        return self._pages(route, params)  # the arguments are checked now, the pages read as iterated

    def _pages(self, route: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        pages = iter(PaginatedList(_attributes, self._requester, "GET", route, _root="sis_imports", **params))
        listing: dict[str, Any] = {"route": f"/api/v1/{route}", "seen": set()}
        while True:
            self._listing = listing  # pages are read lazily, between other requests: set for each step
            try:
                item = next(pages)
            except StopIteration:
                return
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # not JSON, no "sis_imports" key, or a next link outside base_url (canvasapi's regex)
                raise self._error(CanvasError, f"gave a page that is not the expected list ({type(exc).__name__})",
                                  f"/api/v1/{route}") from None
            finally:
                self._listing = None
            if isinstance(item, dict):
                yield item

    def _check_page(self, url: str, params: Any) -> None:
        """A listing stops on a `Link: rel="next"` back to a page it read, or past `max_pages`: else a
        Canvas (or a proxy) that links a page to itself keeps a pass reading until its function times out."""
        listing = self._listing
        if listing is None:
            return
        page = requests.Request("GET", url, params=params).prepare().url
        if page in listing["seen"]:
            raise self._error(CanvasError, f"linked back to a page it had already given (after {len(listing['seen'])} "
                              "page(s)); the listing was stopped", listing["route"])
        if len(listing["seen"]) >= self.max_pages:
            raise self._error(CanvasError, f"gave more than {self.max_pages} pages; the listing was stopped",
                              listing["route"])
        listing["seen"].add(page)

    # -- the machinery ------------------------------------------------------------------------

    def _json(self, endpoint: str) -> Any:
        response = self._requester.request("GET", endpoint)
        try:
            return response.json()
        except ValueError:
            raise self._error(CanvasError, "answered something that is not JSON", urlsplit(response.url).path) from None

    def _token(self) -> str:
        token = (self._token_provider() or "").strip()
        if not token:
            raise self._error(CanvasUnauthorized, "has no API token set (the token's secret is empty)", "")
        self._last_token = token
        return token

    def _error(self, kind: type[CanvasError], what: str, route: str, status: int | None = None) -> CanvasError:
        message = f"Canvas at {self.host} {what}" + (f" [GET {route}]" if route else "")
        if self._last_token:
            message = message.replace(self._last_token, "***")  # by construction absent; a second lock
        return kind(message, host=self.host, route=route, status=status)

    def _wait_for_quota(self) -> None:
        """When the last answer left little quota, let the bucket drain before asking again."""
        if self._quota is None:
            return
        remaining, at = self._quota
        if remaining >= self.low_remaining:
            return
        wait = min(self.max_wait, (self.low_remaining - remaining) / LEAK_PER_SECOND - (self._clock() - at))
        if wait > 0:
            self._log.info(f"Canvas at {self.host}: {remaining:g} of its rate limit left; waiting {wait:.1f} s")
            self._pause(wait)

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)
        self.waited += seconds

    def _get(self, url: str, headers: dict[str, str], params: Any, route: str) -> requests.Response:
        """One GET, its whole answer read within the deadline (`timeout`)."""
        late = self._error(CanvasUnavailable, f"did not answer within {self.timeout[1]:g} s", route)
        _current.deadline = deadline = Deadline(self.timeout[1])
        try:
            with deadline:
                response = self._requester._session.get(url, headers=headers, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise late from None
        except requests.RequestException as exc:
            if deadline.expired:
                raise late from None
            raise self._error(CanvasUnavailable, f"could not be reached ({type(exc).__name__})", route) from None
        finally:
            _current.deadline = None
        if deadline.expired:  # the cut can look like the end of a body sent without a length
            self._requester._session.close()  # no cut connection goes back to the pool
            raise late
        return response

    def _send(self, url: str, headers: dict[str, str], params: Any) -> requests.Response:
        route = urlsplit(url).path
        self._check_page(url, params)
        for attempt in range(self.max_retries + 1):
            self._wait_for_quota()
            self.requests += 1
            response = self._get(url, headers, params, route)
            status = response.status_code
            if status == 429 or (status == 403 and _rate_limited(response)):
                self.throttled += 1
                self._quota = None  # the backoff below is the wait; no second one for the 0.0 it reports
                if attempt >= self.max_retries:
                    raise self._error(CanvasThrottled, f"still rate limited ({status}) after {attempt + 1} tries",
                                      route, status)
                wait = self._retry_after(response) or min(self.max_wait, self.backoff * 2**attempt)
                self._log.warning(f"Canvas at {self.host} rate limited GET {route} ({status}); "
                                  f"retry {attempt + 1} of {self.max_retries} in {wait:g} s")
                self._pause(wait)
                continue
            self._note_quota(response)
            if 200 <= status < 400:
                return response
            raise self._status_error(response, route)
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_error(self, response: requests.Response, route: str) -> CanvasError:
        status = response.status_code
        if status == 401:
            # Canvas adds WWW-Authenticate when it did not accept the token (lib/authentication_methods.rb);
            # a 401 without it comes for a user it did accept (older releases' "not authorized", a scope).
            if "WWW-Authenticate" not in response.headers:
                return self._error(CanvasForbidden, f"refused the request (401 for an accepted token): "
                                   f"{PERMISSION_HINT}, and a scoped token this route's scope", route, status)
            return self._error(CanvasUnauthorized, "refused the API token (401): it is invalid, expired or revoked",
                               route, status)
        if status == 403:
            return self._error(CanvasForbidden, f"refused the request (403): {PERMISSION_HINT}", route, status)
        if status == 404:
            return self._error(CanvasNotFound, "has no such resource (404)", route, status)
        if status >= 500:
            return self._error(CanvasUnavailable, f"failed with {status}", route, status)
        return self._error(CanvasError, f"answered {status}", route, status)

    def _note_quota(self, response: requests.Response) -> None:
        try:
            self._quota = (float(response.headers["X-Rate-Limit-Remaining"]), self._clock())
        except (KeyError, ValueError):
            self._quota = None

    def _retry_after(self, response: requests.Response) -> float | None:
        try:
            return max(0.0, min(self.max_wait, float(response.headers["Retry-After"])))
        except (KeyError, ValueError):
            return None


def _rate_limited(response: requests.Response) -> bool:
    """A 403 is throttling when the bucket is empty, or when the body is Canvas's fixed (untranslated)
    "403 Forbidden (Rate Limit Exceeded)"."""
    try:
        if float(response.headers["X-Rate-Limit-Remaining"]) <= 0:
            return True
    except (KeyError, ValueError):
        pass
    return b"rate limit exceeded" in response.content[:200].lower()
