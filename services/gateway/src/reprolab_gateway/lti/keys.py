"""The tool's own RSA key: made once, kept private in the gateway's database, published as a JWKS.

The LMS checks with it the client assertions we send to its token endpoint and the deep-linking
responses we post back. Every gateway replica uses the same key: the first to start inserts it, the
others read it (a clash on the primary key means another replica won; its key is read instead).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import LtiToolKey

ALG = "RS256"


@dataclass(frozen=True)
class ToolKey:
    kid: str
    private: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": ALG, "use": "sig"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=ALG, headers={"kid": self.kid, "typ": "JWT"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())[:32], pem


def tool_key(db: Session) -> ToolKey:
    """The tool's key, made on first use."""
    row = db.scalar(select(LtiToolKey).order_by(LtiToolKey.created_at).limit(1))
    if row is None:
        kid, pem = _new_key()
        db.add(LtiToolKey(kid=kid, private_pem=pem))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
        row = db.scalar(select(LtiToolKey).order_by(LtiToolKey.created_at).limit(1))
        assert row is not None
    private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return ToolKey(kid=row.kid, private=private)


def tool_jwks(db: Session) -> dict[str, Any]:
    return {"keys": [tool_key(db).public_jwk()]}


def client_assertion(key: ToolKey, *, client_id: str, token_url: str, ttl: int = 300) -> str:
    """RFC 7523 client authentication: a JWT about ourselves (iss = sub = client id) for the token URL."""
    now = int(time.time())
    return key.sign({"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + ttl,
                     "jti": str(uuid.uuid4())})
