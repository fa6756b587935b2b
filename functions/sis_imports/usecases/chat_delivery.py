"""The alert topic -> a Slack or Microsoft Teams incoming webhook (an SNS-subscribed function).

SNS invokes this function asynchronously with the alert JSON (the `lambda`, else `default`, value of a
per-protocol publish); only the alerts the subscription's filter policy (`chat_outcomes`) lets through come.
It posts `chat.slack(...)` or `chat.teams(...)` (`CHAT_KIND`) to the webhook URL held in the Secrets
Manager secret `CHAT_WEBHOOK_SECRET_ARN` (read through Powertools Parameters, cached 5 minutes).

A post that fails (an answer other than 2xx, a timeout, a refused connection) raises: Lambda retries
the invocation twice, minutes apart, then puts the event (the alert) in the on-failure queue. A 429
whose Retry-After is a few seconds is waited out once, in the same invocation.

The webhook URL is a secret (whoever has it can post to the channel): it is never logged, never put
in an exception's message, and urllib's own exceptions (which may quote it) are not chained.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from ..adapters.observability import count, logger
from ..core import chat

KINDS = {"slack": chat.slack, "teams": chat.teams}
TIMEOUT_SECONDS = 5.0
# A 429 is waited out in the invocation when Retry-After asks for at most this; else Lambda retries later.
MAX_RETRY_AFTER_SECONDS = 5.0
SECRET_MAX_AGE = 300


class ChatConfigError(Exception):
    """The function's configuration or its secret is not usable (says which, never the URL)."""


class DeliveryFailed(Exception):
    """The webhook did not take the message: raised so that Lambda retries, then keeps it (on-failure queue)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A webhook answers, it does not redirect: a redirect is a failure (and a POST must not become a GET).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def _webhook_url(value: Any, *, require_https: bool) -> str:
    """The URL a secret holds: the plain URL, or JSON `{"url": …}` (also `webhook_url`)."""
    text = str(value or "").strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
            text = str(parsed.get("url") or parsed.get("webhook_url") or "").strip()
        except (ValueError, AttributeError):
            text = ""
    scheme_ok = text.startswith("https://") or (not require_https and text.startswith("http://"))
    if not scheme_ok or any(c.isspace() or ord(c) < 32 for c in text) or len(text) > 2048:
        raise ChatConfigError("the chat webhook secret does not hold an https:// URL (or JSON with \"url\")")
    return text


class ChatWebhook:
    """Posts one alert's chat message. `url` returns the webhook URL (`fresh=True`: not from a cache)."""

    def __init__(
        self,
        kind: str,
        url: Callable[[bool], str],
        *,
        timeout: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        opener: Any = None,
    ):
        if kind not in KINDS:
            raise ChatConfigError(f"CHAT_KIND must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self._url = url
        self._timeout = timeout
        self._sleep = sleep
        self._opener = opener or _OPENER
        self._fresh = False  # after an answer saying the URL is wrong, read the secret again

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered = 0
        for record in event.get("Records") or []:
            message = _alert(record)
            self.post(message, context)
            delivered += 1
        return {"delivered": delivered}

    def post(self, message: dict[str, Any], context: Any = None) -> int:
        body = json.dumps(KINDS[self.kind](message), separators=(",", ":"), ensure_ascii=False).encode()
        ids = {"alert_id": message.get("alert_id"), "sis_batch_id": message.get("sis_batch_id"),
               "outcome": message.get("outcome"), "chat": self.kind}
        waited = False
        while True:
            status, retry_after = self._send(body)
            if 200 <= status < 300:  # Slack answers 200 "ok"; a Teams Workflows webhook 202 Accepted
                count("ChatMessagesDelivered")
                logger.info("chat message delivered", extra={**ids, "status": status})
                return status
            if status == 429 and not waited and retry_after is not None and retry_after <= MAX_RETRY_AFTER_SECONDS \
                    and _time_left(context) > retry_after + self._timeout + 1:
                logger.info("chat webhook throttled; waiting", extra={**ids, "retry_after": retry_after})
                self._sleep(retry_after)
                waited = True
                continue
            if status in (401, 403, 404, 410):
                self._fresh = True  # a revoked or replaced webhook: the next try reads the secret again
            count("ChatMessagesFailed")
            logger.warning("chat message not delivered; Lambda will retry, then keep it in the on-failure queue",
                           extra={**ids, "status": status})
            raise DeliveryFailed(f"the {self.kind} webhook answered {status or 'nothing'}"
                                 + (" (throttled)" if status == 429 else ""))

    def _send(self, body: bytes) -> tuple[int, float | None]:
        """(status, Retry-After seconds); status 0 when no answer came (timeout, refused, DNS)."""
        fresh, self._fresh = self._fresh, False
        url = self._url(fresh)
        try:
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json; charset=utf-8"})
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read(1024)
                return response.status, None
        except urllib.error.HTTPError as exc:  # an answer other than 2xx (3xx included: no redirects)
            status, retry_after = exc.code, _seconds(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            return status, retry_after
        except Exception as exc:  # noqa: BLE001 - timeout, refused, DNS, a URL urllib cannot use: no answer
            # Only the kind of failure: the exception's text may quote the URL.
            logger.warning("chat webhook unreachable", extra={"chat": self.kind, "error": type(exc).__name__})
            return 0, None


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None  # an HTTP date, or nothing: too far or unknown, left to Lambda's retry
    return seconds if 0 <= seconds < 3600 else None


def _time_left(context: Any) -> float:
    try:
        return context.get_remaining_time_in_millis() / 1000
    except AttributeError:
        return float("inf")


def _alert(record: dict[str, Any]) -> dict[str, Any]:
    """The alert JSON an SNS record carries; anything else is refused (and, after the retries, kept)."""
    raw = (record.get("Sns") or {}).get("Message")
    try:
        message = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("type") not in chat.TYPES:
        raise ValueError("the SNS message is not an alert's JSON (is the topic's `lambda`/`default` value the JSON?)")
    return message


def secret_reader(secret_id: str, require_https: bool) -> Callable[[bool], str]:
    from aws_lambda_powertools.utilities import parameters

    def read(fresh: bool) -> str:
        value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE, force_fetch=fresh)
        return _webhook_url(value, require_https=require_https)

    return read
