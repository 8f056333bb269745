"""Encryption at rest for users' cloud credentials (AWS keys, Azure service principals, OpenStack
passwords/application credentials).

AES-256-GCM with a random 96-bit nonce. The associated data binds a blob to its workspace,
credential id, user id and vendor (canonical JSON), so a blob copied onto another row, user or
vendor does not decrypt. Blob layout::

    version (1 byte = 1) || key id length (1 byte) || key id (ASCII) || nonce (12 bytes) || ciphertext+tag

Keys come from a keyring: the current key id plus older keys kept for decryption only, each 32
bytes in base64, read from ``REPROLAB_RUNNER_CREDENTIAL_KEYS`` or a file (JSON
``{"current": "k2", "keys": {"k1": "<b64>", "k2": "<b64>"}}``). ``rotate`` re-encrypts blobs under
the current key so old keys can then be dropped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from reprolab_common.canonical import canonical_json

VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
ENV_KEYS = "REPROLAB_RUNNER_CREDENTIAL_KEYS"
ENV_KEYS_FILE = "REPROLAB_RUNNER_CREDENTIAL_KEYS_FILE"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CredentialError(Exception):
    """A credential blob could not be decrypted or a keyring is unusable; never carries the secret."""


@dataclass(frozen=True)
class Keyring:
    """The current key id and every key that may still be needed to decrypt."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise CredentialError(f"the keyring has no key {self.current!r} (its current key)")
        for kid, key in self.keys.items():
            if not _KEY_ID.match(kid):
                raise CredentialError(f"invalid key id {kid!r}: use 1-64 of A-Z a-z 0-9 . _ -")
            if len(key) != KEY_BYTES:
                raise CredentialError(f"key {kid!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, key_ids={sorted(self.keys)!r})"

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            doc = json.loads(text)
            keys = {kid: base64.b64decode(value, validate=True) for kid, value in doc["keys"].items()}
            return cls(current=doc["current"], keys=keys)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CredentialError(f"unreadable credential keyring ({type(exc).__name__}); expected "
                                  '{"current": "<id>", "keys": {"<id>": "<base64 of 32 bytes>"}}') from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        """From ``REPROLAB_RUNNER_CREDENTIAL_KEYS`` (JSON) or the file named by ``..._KEYS_FILE``."""
        env = os.environ if environ is None else environ
        if env.get(ENV_KEYS):
            return cls.from_json(env[ENV_KEYS])
        if env.get(ENV_KEYS_FILE):
            return cls.from_json(Path(env[ENV_KEYS_FILE]).read_text())
        raise CredentialError(f"no credential keyring: set {ENV_KEYS} or {ENV_KEYS_FILE}")

    @staticmethod
    def generate_key() -> str:
        """A new random key, base64, for the keyring file."""
        return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()

    def to_json(self) -> str:
        return json.dumps({"current": self.current,
                           "keys": {k: base64.b64encode(v).decode() for k, v in sorted(self.keys.items())}})


def associated_data(*, workspace_id: str, credential_id: str, user_id: str, vendor: str) -> bytes:
    """Canonical JSON of what a blob belongs to: sorted keys, no whitespace, UTF-8."""
    return canonical_json({"credential_id": str(credential_id), "user_id": str(user_id), "vendor": str(vendor),
                           "workspace_id": str(workspace_id)})


def _encode(secret: Mapping[str, Any] | str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    if isinstance(secret, str):
        return secret.encode()
    return canonical_json(dict(secret))


def encrypt(secret: Mapping[str, Any] | str | bytes, keyring: Keyring, *, workspace_id: str,
            credential_id: str, user_id: str, vendor: str) -> bytes:
    """Encrypt under the keyring's current key; a dict is stored as canonical JSON."""
    kid = keyring.current.encode()
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = associated_data(workspace_id=workspace_id, credential_id=credential_id, user_id=user_id, vendor=vendor)
    ct = AESGCM(keyring.keys[keyring.current]).encrypt(nonce, _encode(secret), aad)
    return bytes([VERSION, len(kid)]) + kid + nonce + ct


def key_id(blob: bytes) -> str:
    """The id of the key a blob was encrypted under (no decryption)."""
    if len(blob) < 2 or blob[0] != VERSION:
        raise CredentialError("not a Reprolab credential blob (unknown version byte)")
    n = blob[1]
    if len(blob) < 2 + n + NONCE_BYTES + 16:
        raise CredentialError("credential blob is truncated")
    return blob[2:2 + n].decode("ascii", errors="replace")


def decrypt_bytes(blob: bytes, keyring: Keyring, *, workspace_id: str, credential_id: str, user_id: str,
                  vendor: str) -> bytes:
    kid = key_id(blob)
    key = keyring.keys.get(kid)
    if key is None:
        raise CredentialError(f"credential was encrypted under key {kid!r}, which the keyring no longer has")
    body = blob[2 + blob[1]:]
    aad = associated_data(workspace_id=workspace_id, credential_id=credential_id, user_id=user_id, vendor=vendor)
    try:
        return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
    except InvalidTag:
        raise CredentialError("credential does not decrypt: wrong key, or it belongs to another workspace, "
                              "credential, user or vendor, or it was tampered with") from None


def decrypt(blob: bytes, keyring: Keyring, *, workspace_id: str, credential_id: str, user_id: str,
            vendor: str) -> dict[str, Any]:
    """The credential dict back; raises CredentialError (without any plaintext) on any mismatch."""
    raw = decrypt_bytes(blob, keyring, workspace_id=workspace_id, credential_id=credential_id,
                        user_id=user_id, vendor=vendor)
    try:
        return json.loads(raw)
    except ValueError:
        raise CredentialError("decrypted credential is not a JSON object") from None


@dataclass(frozen=True)
class StoredCredential:
    """A blob as stored, with what binds it."""

    blob: bytes = field(repr=False)
    workspace_id: str
    credential_id: str
    user_id: str
    vendor: str

    def binding(self) -> dict[str, str]:
        return {"workspace_id": self.workspace_id, "credential_id": self.credential_id,
                "user_id": self.user_id, "vendor": self.vendor}


def rotate(blobs: Iterable[StoredCredential], keyring: Keyring) -> list[StoredCredential]:
    """Re-encrypt every blob under the keyring's current key (blobs already on it get a fresh nonce too)."""
    out = []
    for item in blobs:
        plain = decrypt_bytes(item.blob, keyring, **item.binding())
        out.append(StoredCredential(encrypt(plain, keyring, **item.binding()), **item.binding()))
    return out


_SECRET_NAME = re.compile(r"(secret|password|passwd|token|private|credential|access_key|api_key|apikey|"
                          r"client_secret|signature|sas)", re.IGNORECASE)
_SIGNED_QUERY = re.compile(r"([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|Signature|"
                           r"AWSAccessKeyId)=)[^&\s\"']+", re.IGNORECASE)


def mask(secret: str | bytes | None, keep: int = 4) -> str:
    """``'AKIA…'`` style: a short prefix of long secrets (to tell keys apart), nothing of short ones."""
    if not secret:
        return ""
    text = secret.decode(errors="replace") if isinstance(secret, bytes) else str(secret)
    if len(text) < 16:
        return "****"
    return text[:keep] + "****"


def redact(obj: Any) -> Any:
    """A copy safe to log: values under secret-looking keys masked, presigned URL signatures cut."""
    if isinstance(obj, Mapping):
        return {k: (mask(v) if isinstance(v, (str, bytes)) and _SECRET_NAME.search(str(k))
                    else "****" if _SECRET_NAME.search(str(k)) and v is not None and not isinstance(v, (Mapping, list))
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, bytes):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, str):
        return _SIGNED_QUERY.sub(r"\1****", obj)
    return obj
