"""The development signing key: `make run` serves its JWKS, `make send` signs with it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def write_private(path: Path, data: bytes) -> None:
    """Written 0600 under a temporary name, then renamed: never readable by others, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class DevKey:
    def __init__(self, private_key: rsa.RSAPrivateKey):
        self.private_key = private_key
        numbers = private_key.public_key().public_numbers()
        self.kid = f"local-dev-{numbers.n % 10**10:010d}"

    @classmethod
    def create(cls, path: Path) -> DevKey:
        """A fresh key each start, written 0600 so that `make send` can sign."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(path, pem)
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> DevKey:
        return cls(serialization.load_pem_private_key(path.read_bytes(), password=None))  # type: ignore[arg-type]

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, event: dict[str, Any], issuer: str | None = None, lifetime: int = 300) -> str:
        """The event as JWT claims, with iss, iat and exp so that the ingest checks those too."""
        now = int(time.time())
        claims: dict[str, Any] = {**event, "iat": now, "exp": now + lifetime}
        if issuer:
            claims["iss"] = issuer
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})
