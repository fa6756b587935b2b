"""Who may send events: Canvas's signed payload (RS256 JWT), a shared token, or nobody checks.

Every failure to authenticate raises `Unauthorized` with a reason safe to return and log
(never the token itself). A failure on our side (the JWKS or the secret cannot be fetched)
raises `AuthUnavailable`, so that the sender retries.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import sys
import threading
import time
from typing import Any, Callable, Protocol


def _load_x509_on_first_use() -> None:
    """PyJWT imports cryptography.x509 as it loads (about 0.12 of the cold-start baseline), for keys given
    as certificates; keys from a JWKS never are. The module is put in place unloaded (importlib's
    LazyLoader) and loads on its first attribute, should anything use it: PyJWT itself is unchanged."""
    if "cryptography.x509" in sys.modules:
        return
    import cryptography

    spec = importlib.util.find_spec("cryptography.x509")
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    # `from cryptography import x509` then takes this attribute without asking the import system,
    # which would load the module (it reads the module's __spec__).
    cryptography.x509 = module  # type: ignore[attr-defined]
    spec.loader.exec_module(module)


_load_x509_on_first_use()

import jwt  # noqa: E402
from jwt import PyJWK, PyJWKClient  # noqa: E402
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWTError  # noqa: E402

from . import http  # noqa: E402
from ..core.events import NotJson, decode_json  # noqa: E402

__all__ = ["AuthUnavailable", "JwksKeySource", "JwtAuthenticator", "NoAuthenticator", "NotJson", "TokenAuthenticator",
           "Unauthorized"]

# Canvas signs with RS256 and publishes its keys here (docs/canvas.md, "Delivery").
CANVAS_JWKS_URL = "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
REFRESH_INTERVAL_SECONDS = 60.0
MAX_JWKS_BYTES = 64 * 1024  # Canvas serves three RSA keys (about 1.5 KB each)


class Unauthorized(Exception):
    """The request is not authentic; `str(exc)` says why without echoing credentials."""


class AuthUnavailable(Exception):
    """Authentication could not be checked because something on our side failed."""


class Request(Protocol):
    body: bytes
    query: dict[str, str]


class _DeadlineJwkClient(PyJWKClient):
    """PyJWKClient whose fetch has a deadline for the whole request (PyJWT's `timeout` bounds each
    socket read, so a JWKS that drips a byte a second would hold the webhook past its timeout)."""

    def fetch_data(self) -> Any:
        try:
            status, body = http.get(self.uri, deadline=self.timeout, max_bytes=MAX_JWKS_BYTES, headers=self.headers)
        except http.DeadlineExceeded as exc:
            raise PyJWKClientConnectionError(f"the JWKS did not answer within {self.timeout:g} s") from exc
        except OSError as exc:
            raise PyJWKClientConnectionError(f"the JWKS could not be reached ({type(exc).__name__})") from exc
        except ValueError as exc:  # larger than any real key set
            raise PyJWKClientError(f"the JWKS answer is unusable: {exc}") from exc
        if status != 200:
            raise PyJWKClientConnectionError(f"the JWKS answered {status}")
        try:
            return self._as_jwk_set_payload(json.loads(body))
        except ValueError:
            raise PyJWKClientError("the JWKS answer is not JSON") from None


class JwksKeySource:
    """Signing keys from a JWKS URL, fetched at most once per `REFRESH_INTERVAL_SECONDS`.

    The first fetch counts as a refresh: a cold instance fetches once, however many unknown
    `kid`s follow (a flood of forged tokens cannot make it hammer the JWKS, nor wait twice for a
    slow one). Keys are kept `cache_seconds`; a failed refresh keeps the keys already known. The
    whole fetch must end within `timeout` seconds, well under the function's 14 s, so that a slow
    JWKS answers 503 (Canvas retries) rather than letting the function time out. So does an
    unusable answer (not JSON, no keys, no usable signing key): our side failed, not the sender's.
    """

    def __init__(
        self,
        url: str,
        cache_seconds: float = 3600,
        timeout: float = 3,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = _DeadlineJwkClient(url, cache_keys=False, cache_jwk_set=False, timeout=timeout)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at: float | None = None  # the last attempt, successful or not
        self._lock = threading.Lock()

    def _fetch(self, now: float) -> None:
        self._fetched_at = now
        try:
            keys = self._client.get_signing_keys(refresh=True)
        except PyJWKClientConnectionError as exc:
            if self._keys is None:
                raise AuthUnavailable("the signing keys (JWKS) could not be fetched") from exc
            return  # keep the keys we have; the next refresh may do better
        except PyJWTError as exc:  # PyJWKClientError, and PyJWKSetError for a set without usable keys
            if self._keys is None:
                raise AuthUnavailable(f"the signing keys (JWKS) are unusable: {exc}") from exc
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}

    def get(self, kid: str) -> PyJWK:
        with self._lock:
            now = self._clock()
            due = self._fetched_at is None or now - self._fetched_at >= REFRESH_INTERVAL_SECONDS
            expired = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
            if self._keys is None or expired or (kid not in self._keys and due):
                if self._keys is None and not due:
                    raise AuthUnavailable("the signing keys (JWKS) could not be fetched recently; retry later")
                self._fetch(now)
            key = (self._keys or {}).get(kid)
            if key is None:
                raise Unauthorized("the JWT is signed with an unknown key (kid)")
            return key


class JwtAuthenticator:
    """Canvas's "Sign Payload": the body is a compact RS256 JWT whose claims are the event."""

    mode = "jwt"

    def __init__(self, keys: JwksKeySource, issuers: list[str] | None = None):
        self._keys = keys
        self._issuers = issuers or None

    def authenticate(self, request: Request) -> Any:
        token = request.body.decode("ascii", errors="replace").strip()
        if token.count(".") != 2 or token.startswith("{"):
            raise Unauthorized("expected a signed payload (compact JWT); is Sign Payload on in Canvas?")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a header nested too deeply
            raise Unauthorized("the JWT header is malformed") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("the JWT must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the JWT header has no key id (kid)")
        key = self._keys.get(kid)
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],  # pinned: never trust the header's alg
                issuer=self._issuers,
                # Canvas documents no audience; exp and nbf are checked when present.
                options={"verify_aud": False, "require": []},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the JWT is not valid yet (nbf)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the JWT issuer is not allowed") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the JWT signature does not verify") from None
        except (jwt.InvalidTokenError, RecursionError):
            raise Unauthorized("the JWT is invalid") from None


class TokenAuthenticator:
    """Unsigned JSON with a shared secret in the subscription URL's `token` query parameter."""

    mode = "token"

    def __init__(self, expected_token: Callable[[], str]):
        self._expected_token = expected_token

    def authenticate(self, request: Request) -> Any:
        given = request.query.get("token")
        if not given:
            raise Unauthorized("the token query parameter is missing")
        try:
            expected = self._expected_token()
        except Exception as exc:
            raise AuthUnavailable("the shared token could not be read") from exc
        # surrogatepass: a query string can hold anything, and it must not crash the comparison.
        if not expected or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode()):
            raise Unauthorized("the token is wrong")
        return decode_json(request.body)


class NoAuthenticator:
    """Unsigned JSON accepted from anyone: for local use only."""

    mode = "none"

    def authenticate(self, request: Request) -> Any:
        return decode_json(request.body)


class SecretsManagerToken:
    """The shared token, read from Secrets Manager and cached for a few minutes."""

    def __init__(self, client: Any, secret_id: str, cache_seconds: float = 300, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0

    def __call__(self) -> str:
        now = self._clock()
        if self._value is None or now - self._read_at >= self._cache_seconds:
            self._value = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"].strip()
            self._read_at = now
        return self._value
