"""Canvas's signed payload: attacks refused, key rotation handled with one JWKS refresh."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from local.lambda_context import LambdaContext
from sis_imports.adapters.auth import REFRESH_INTERVAL_SECONDS, AuthUnavailable, JwksKeySource, JwtAuthenticator, Unauthorized
from sis_imports.adapters.http import HttpRequest
from tests.conftest import http_event
from tests.factories import CREATED_EXAMPLE
from tests.jwks import SigningKey


def call(handlers, body):
    response = handlers["ingest"].handler(http_event(body, content_type="application/jwt"), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(aws, jwt_mode, signing_key, handlers_fresh):
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': signing_key.kid})}.{b64(CREATED_EXAMPLE)}."
    status, body = call(handlers_fresh, token)
    assert status == 401 and "RS256" in body["reason"]
    assert aws.scan() == []


def test_hs256_signed_with_the_public_key_is_refused(aws, jwt_mode, signing_key, handlers_fresh):
    header = {"alg": "HS256", "typ": "JWT", "kid": signing_key.kid}
    signing_input = f"{b64(header)}.{b64(CREATED_EXAMPLE)}"
    import hashlib
    import hmac

    signature = hmac.new(signing_key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert call(handlers_fresh, token)[0] == 401
    assert aws.scan() == []


def test_a_wrong_key_with_a_known_kid_is_refused(aws, jwt_mode, signing_key, handlers_fresh):
    impostor = SigningKey(signing_key.kid)
    status, body = call(handlers_fresh, impostor.sign(CREATED_EXAMPLE))
    assert status == 401 and "signature" in body["reason"]
    assert aws.scan() == []


def test_an_expired_token_is_refused_and_a_future_nbf_too(aws, jwt_mode, signing_key, handlers_fresh):
    now = int(time.time())
    status, body = call(handlers_fresh, signing_key.sign({**CREATED_EXAMPLE, "exp": now - 3600}))
    assert status == 401 and "expired" in body["reason"]
    status, body = call(handlers_fresh, signing_key.sign({**CREATED_EXAMPLE, "nbf": now + 3600}))
    assert status == 401 and "nbf" in body["reason"]
    assert call(handlers_fresh, signing_key.sign({**CREATED_EXAMPLE, "exp": now + 60}))[0] == 200


def test_a_tampered_claim_is_refused(aws, jwt_mode, signing_key, handlers_fresh):
    header, _, signature = signing_key.sign(CREATED_EXAMPLE).split(".")
    tampered = json.loads(json.dumps(CREATED_EXAMPLE))
    tampered["body"]["workflow_state"] = "imported"
    assert call(handlers_fresh, f"{header}.{b64(tampered)}.{signature}")[0] == 401
    assert aws.scan() == []


def test_issuer_is_checked_when_configured(aws, jwt_mode, signing_key, handlers_fresh, monkeypatch):
    monkeypatch.setenv("SIS_JWT_ISSUERS", "https://live-events.canvas.instructure.com, https://other.example")
    bad = signing_key.sign({**CREATED_EXAMPLE, "iss": "https://attacker.example"})
    status, body = call(handlers_fresh, bad)
    assert status == 401 and "issuer" in body["reason"]
    good = signing_key.sign({**CREATED_EXAMPLE, "iss": "https://live-events.canvas.instructure.com"})
    assert call(handlers_fresh, good)[0] == 200


def test_garbage_and_missing_kid_are_401_not_500(aws, jwt_mode, signing_key, handlers_fresh):
    assert call(handlers_fresh, "a.b.c")[0] == 401
    no_kid = jwt.encode(CREATED_EXAMPLE, signing_key.private_key, algorithm="RS256")
    status, body = call(handlers_fresh, no_kid)
    assert status == 401 and "kid" in body["reason"]


def test_keys_are_fetched_once_and_cached(aws, jwt_mode, signing_key, handlers_fresh):
    assert call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))[0] == 200
    assert call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))[0] == 200
    assert jwt_mode.fetches == 1


def test_key_rotation_is_accepted_after_exactly_one_jwks_refresh(jwks_server, signing_key):
    now = [1000.0]
    auth = JwtAuthenticator(JwksKeySource(jwks_server.url, clock=lambda: now[0]))

    def accepted(key):
        return auth.authenticate(HttpRequest("POST", "/events", key.sign(CREATED_EXAMPLE).encode())) is not None

    assert accepted(signing_key) and jwks_server.fetches == 1
    now[0] += 3000  # Canvas rotates monthly: the new key appears long after the instance started
    rotated = SigningKey("canvas-next-month")
    jwks_server.keys.append(rotated)
    assert accepted(rotated) and jwks_server.fetches == 2
    assert accepted(rotated) and accepted(signing_key) and jwks_server.fetches == 2


def test_a_cold_instance_fetches_once_however_many_unknown_kids_follow(jwks_server, signing_key):
    now = [1000.0]
    auth = JwtAuthenticator(JwksKeySource(jwks_server.url, clock=lambda: now[0]))

    def attempt(kid):
        with pytest.raises(Unauthorized, match="unknown key"):
            auth.authenticate(HttpRequest("POST", "/events", SigningKey(kid).sign(CREATED_EXAMPLE).encode()))

    for n in range(5):
        attempt(f"not-canvas-{n}")
        now[0] += 10
    assert jwks_server.fetches == 1  # the first load counts as the refresh: a flood cannot hammer the JWKS
    now[0] += 11
    attempt("not-canvas-again")
    assert jwks_server.fetches == 2  # a minute after the last fetch, an unknown kid may refresh once


def test_a_failed_refresh_keeps_the_keys_already_known(jwks_server, signing_key):
    now = [1000.0]
    auth = JwtAuthenticator(JwksKeySource(jwks_server.url, cache_seconds=600, clock=lambda: now[0]))
    request = HttpRequest("POST", "/events", signing_key.sign(CREATED_EXAMPLE).encode())
    assert auth.authenticate(request)
    jwks_server.fail = True
    now[0] += 601  # the cache expired and the JWKS is down: the known key still verifies
    assert auth.authenticate(request) and jwks_server.fetches == 2


def test_a_slow_jwks_answers_503_well_within_the_function_timeout_after_one_fetch(
    aws, jwt_mode, signing_key, handlers_fresh
):
    jwt_mode.delay = 4.5  # slower than the fetch's deadline (3 s); the function's timeout is 14 s
    started = time.monotonic()
    status, body = call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))
    took = time.monotonic() - started
    print(f"slow JWKS: answered {status} after {took:.2f} s, {jwt_mode.fetches} fetch(es)")
    assert status == 503 and "retry" in body["error"]
    assert jwt_mode.fetches == 1
    assert took < 8  # one timed-out fetch (3 s), not two in a row (the old 9.1 s)
    assert aws.scan() == []


def test_jwks_down_answers_503_so_canvas_retries(aws, jwt_mode, signing_key, handlers_fresh):
    jwt_mode.fail = True
    status, _ = call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))
    assert status == 503
    assert aws.scan() == []


def test_a_jwks_that_drips_one_byte_a_second_is_cut_at_the_deadline_and_answers_503(
    aws, jwt_mode, signing_key, handlers_fresh
):
    # The reproduction: each byte comes within the 3 s socket timeout, so only a deadline on the
    # whole request ends it (the answer is about 1.5 KB: 25 minutes at this pace).
    jwt_mode.drip = 1.0
    started = time.monotonic()
    status, body = call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))
    took = time.monotonic() - started
    print(f"dripping JWKS: answered {status} after {took:.2f} s")
    assert status == 503 and "retry" in body["error"]
    assert 2.9 < took < 5  # the 3 s deadline, not the 20 s seen before
    assert jwt_mode.fetches == 1
    assert aws.scan() == []


@pytest.mark.parametrize("answer", [
    b'{"keys": []}',  # empty
    b"<html>maintenance</html>",  # not JSON
    b"[]",  # JSON, not a key set
    b'{"keys": [{"kty": "RSA", "kid": "x", "n": "not base64!", "e": "AQAB"}]}',  # no usable key
    b'{"keys": [{"kty": "RSA", "kid": "enc-only", "use": "enc", "n": "AQAB", "e": "AQAB"}]}',  # no signing key
    b"",
])
def test_an_unusable_jwks_answer_is_503_not_500(aws, jwt_mode, signing_key, handlers_fresh, answer):
    jwt_mode.body = answer
    status, body = call(handlers_fresh, signing_key.sign(CREATED_EXAMPLE))
    assert status == 503 and "retry" in body["error"]
    assert aws.scan() == []


def test_a_jwks_answer_beyond_any_real_key_set_is_refused_as_unusable(jwks_server, signing_key):
    jwks_server.body = b'{"keys": [' + b" " * (70 * 1024) + b"]}"
    auth = JwtAuthenticator(JwksKeySource(jwks_server.url))
    with pytest.raises(AuthUnavailable, match="unusable"):
        auth.authenticate(HttpRequest("POST", "/events", signing_key.sign(CREATED_EXAMPLE).encode()))


def test_the_jwks_becoming_usable_again_is_picked_up_on_the_next_refresh(jwks_server, signing_key):
    now = [1000.0]
    auth = JwtAuthenticator(JwksKeySource(jwks_server.url, clock=lambda: now[0]))
    request = HttpRequest("POST", "/events", signing_key.sign(CREATED_EXAMPLE).encode())
    jwks_server.body = b'{"keys": []}'
    with pytest.raises(AuthUnavailable):
        auth.authenticate(request)
    jwks_server.body = None
    now[0] += REFRESH_INTERVAL_SECONDS
    assert auth.authenticate(request)["body"]["workflow_state"] == "initializing"


def _tls_files(tmp_path):
    """A CA and a certificate for 127.0.0.1 signed by it (files), for a JWKS over HTTPS."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path / "ca.pem", tmp_path / "cert.pem"


def test_over_https_the_keys_are_fetched_and_a_drip_is_cut_at_the_deadline(jwks_server, signing_key, tmp_path,
                                                                           monkeypatch):
    import ssl

    ca, cert = _tls_files(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # ssl.create_default_context() trusts it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert)
    jwks_server._httpd.socket = context.wrap_socket(jwks_server._httpd.socket, server_side=True)
    url = jwks_server.url.replace("http://", "https://")
    request = HttpRequest("POST", "/events", signing_key.sign(CREATED_EXAMPLE).encode())
    assert JwtAuthenticator(JwksKeySource(url)).authenticate(request)["body"]["workflow_state"] == "initializing"
    jwks_server.drip = 1.0
    started = time.monotonic()
    with pytest.raises(AuthUnavailable, match="could not be fetched"):
        JwtAuthenticator(JwksKeySource(url, timeout=2)).authenticate(request)
    assert 1.9 < time.monotonic() - started < 4
