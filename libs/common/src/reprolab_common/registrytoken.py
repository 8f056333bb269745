"""Reprolab as the OCI registry's token issuer (the Docker registry token specification).

The registry (CNCF distribution 2.8, ``auth: token:``) answers an unauthenticated request with
``401 WWW-Authenticate: Bearer realm=<gateway>/api/v1/registry/token,service=...,scope=...``; clients
(podman, skopeo, buildah, kubelet) then fetch a short-lived JWT from that realm with HTTP Basic
credentials and retry with it. The registry trusts a token when its issuer and audience match its
config and its signature verifies with a key from ``rootcertbundle``: distribution looks the signing
key up by the JWT header's ``kid``, read as the *libtrust* fingerprint of the public key (SHA-256 of
the DER SubjectPublicKeyInfo, first 240 bits, base32 in 12 groups of 4); see
``registry/auth/token/token.go`` (``VerifySigningKey``) in distribution.

This module holds the pure pieces: the signing key and its self-signed certificate (kept in the data
directory like the bus credentials), the key ID, scope parsing and token signing (ES256 with
``cryptography``; a JWS is small enough not to need a JWT library). Who may get which access is the
gateway's decision (``reprolab_gateway.api.routes.registry_token``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from .privatefiles import kept_passwords, write_private

SERVICE = "reprolab-registry"
"""The registry's ``service`` name: the audience of every token, checked by the registry."""
ISSUER = "reprolab"
"""The ``iss`` of every token; the registry trusts only this issuer."""
TOKEN_SECONDS = 300
"""Lifetime of an issued token: long enough for one pull or push (clients fetch a new one per
operation), short enough that a leaked token is soon worthless."""

# Service identities that authenticate to the token realm with a password from ``service_credentials``.
BUILDER = "reprolab-builder"
RUNNER = "reprolab-runner"
SERVICE_IDENTITIES = (BUILDER, RUNNER)

# A pull grant: a credential the runner mints for one repository and hands to a machine it does not
# trust with its own password (a cloud VM, a Kubernetes pull secret). Basic username, then the grant.
GRANT_USER = "reprolab-grant"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key ID distribution's registry computes for a trusted key (``libtrust.KeyID``)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True)
class SigningKey:
    """The issuer's private key and the certificate (of its public key) the registry trusts."""

    key: ec.EllipticCurvePrivateKey
    cert_pem: bytes

    @property
    def key_id(self) -> str:
        return libtrust_key_id(self.key.public_key())

    @classmethod
    def load(cls, key_file: Path, cert_file: Path) -> SigningKey:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file} is not an EC private key (the registry tokens are signed with ES256)")
        return cls(key, cert_file.read_bytes())


def ensure_signing_key(directory: Path) -> tuple[Path, Path]:
    """``(key.pem, cert.pem)`` in ``directory`` (both mode 0600): read when present so a restarted
    platform keeps them (tokens issued before a restart stay valid), made otherwise."""
    key_file, cert_file = directory / "token-key.pem", directory / "token-cert.pem"
    if not (key_file.exists() and cert_file.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Reprolab registry token issuer")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        write_private(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode())
        write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM).decode())
    for path in (key_file, cert_file):
        os.chmod(path, 0o600)
    return key_file, cert_file


def service_credentials(path: Path) -> dict[str, str]:
    """Passwords of the registry's service identities (builder: push, runner: pull), kept in ``path``
    (mode 0600), a new random one for any missing identity."""
    return kept_passwords(path, SERVICE_IDENTITIES)


def auth_json(host: str, username: str, password: str) -> str:
    """A containers-auth.json (also a Docker ``config.json``) with one registry's credentials."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": token}}}, indent=2)


def credentials_for(auth_file: Path | None, image: str) -> tuple[str, str] | None:
    """(username, password) for the registry host of ``image`` from a containers-auth.json, or None.
    Looked up by the image's own host, so a credential is never sent to another registry."""
    host = image.split("/", 1)[0] if "/" in image else ""
    if not auth_file or not host or not ("." in host or ":" in host or host == "localhost"):
        return None
    try:
        entry = json.loads(auth_file.read_text()).get("auths", {}).get(host) or {}
        username, sep, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return (username, password) if sep and username else None


@dataclass(frozen=True)
class Access:
    """One resource and the actions on it, as in a scope and in the token's ``access`` claim."""

    type: str
    name: str
    actions: tuple[str, ...] = field(default=())

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(scope: str) -> Access | None:
    """``repository:ws/env:pull,push`` → Access; None for a malformed scope (it grants nothing).

    The name sits between the first and the last colon (a resource type may carry a class, as in
    ``repository(plugin)``; the class is dropped: Reprolab stores no plugins)."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    kind = kind.split("(", 1)[0]
    return Access(kind, name, tuple(sorted({a for a in actions.split(",") if a})))


def sign_token(signing: SigningKey, *, subject: str, access: list[Access], service: str = SERVICE,
               issuer: str = ISSUER, seconds: int = TOKEN_SECONDS, now: float | None = None) -> str:
    """A registry bearer token (compact JWS, ES256) for ``subject`` with exactly ``access``."""
    issued = int(now if now is not None else time.time())
    header = {"typ": "JWT", "alg": "ES256", "kid": signing.key_id}
    claims = {"iss": issuer, "sub": subject, "aud": service, "iat": issued, "nbf": issued - 1,
              "exp": issued + seconds, "jti": uuid.uuid4().hex, "access": [a.claim() for a in access]}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(signing.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def token_claims(token: str) -> dict:
    """The (unverified) claims of a token: for tests and logs of the issuer's own tokens."""
    return json.loads(_b64url_decode(token.split(".")[1]))


# --- pull grants ----------------------------------------------------------------------------------


def mint_grant(runner_password: str, repository: str, seconds: int, now: float | None = None) -> str:
    """A password (for the Basic username ``GRANT_USER``) good for pulling one repository until it
    expires. It is an HMAC under the runner's registry password, which the token realm also knows, so
    the runner mints it without a round trip and the holder can pull nothing else."""
    expires = int((now if now is not None else time.time()) + seconds)
    body = _b64url(json.dumps({"repo": repository, "exp": expires}, separators=(",", ":")).encode())
    mac = hmac.new(runner_password.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64url(mac)}"


def image_repository(image: str) -> str:
    """``host:port/ws/env:v3`` or ``host/ws/env@sha256:...`` → ``ws/env``."""
    path = image.split("/", 1)[1] if "/" in image else image
    path = path.split("@", 1)[0]
    head, _, last = path.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def grant_for(auth_file: Path | None, image: str, seconds: int) -> dict[str, str] | None:
    """Credentials good for pulling only ``image``'s repository for ``seconds``, for a machine that must
    not hold the runner's own password; None when the runner has no credentials for that registry."""
    creds = credentials_for(auth_file, image)
    if creds is None or creds[0] != RUNNER:
        return None
    return {"registry": image.split("/", 1)[0], "username": GRANT_USER,
            "password": mint_grant(creds[1], image_repository(image), seconds)}


def check_grant(runner_password: str, grant: str, now: float | None = None) -> str | None:
    """The repository a grant is good for, or None if it is forged, malformed or expired."""
    body, _, mac = grant.partition(".")
    try:
        expected = hmac.new(runner_password.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url_decode(mac)):
            return None
        fields = json.loads(_b64url_decode(body))
    except (ValueError, TypeError):
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("repo"), str) or \
            not isinstance(fields.get("exp"), int):
        return None
    return fields["repo"] if fields["exp"] > (now if now is not None else time.time()) else None
