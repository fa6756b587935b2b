"""Signing keys and a JWKS server on 127.0.0.1 for the JWT tests (no network)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class SigningKey:
    def __init__(self, kid: str):
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})


class JwksServer:
    """Serves `keys` as a JWKS and counts the fetches."""

    def __init__(self, keys: list[SigningKey]):
        self.keys = list(keys)
        self.fetches = 0
        self.fail = False
        self.delay = 0.0  # seconds before answering: a slow JWKS
        self.body: bytes | None = None  # served as is instead of the keys: an unusable answer
        self.drip = 0.0  # seconds between the bytes of the answer: a JWKS that drips
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.fetches += 1
                if server.delay:
                    time.sleep(server.delay)
                if server.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = server.body if server.body is not None else json.dumps(
                    {"keys": [key.jwk() for key in server.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if not server.drip:
                    self.wfile.write(body)
                    return
                for byte in body:  # one byte at a time: no single read ever waits long
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(server.drip)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up on a slow answer: expected here

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
