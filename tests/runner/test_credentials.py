"""Encryption at rest of users' cloud credentials (AES-256-GCM bound to workspace/credential/user/vendor)."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from reprolab_runner.credentials import (
    CredentialError,
    Keyring,
    StoredCredential,
    decrypt,
    encrypt,
    key_id,
    mask,
    redact,
    rotate,
)

CANARY = "canary-wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
SECRET = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": CANARY, "region": "eu-west-1"}
BIND = {"workspace_id": "ws-1", "credential_id": "cred-1", "user_id": "user-1", "vendor": "aws"}


def ring(current: str = "k1", **keys: bytes) -> Keyring:
    return Keyring(current=current, keys=keys or {"k1": bytes(range(32))})


def test_round_trip_and_layout() -> None:
    kr = ring()
    blob = encrypt(SECRET, kr, **BIND)
    assert blob[0] == 1 and key_id(blob) == "k1"
    assert CANARY.encode() not in blob
    assert decrypt(blob, kr, **BIND) == SECRET
    assert encrypt(SECRET, kr, **BIND) != blob  # a fresh nonce every time


@pytest.mark.parametrize("field", sorted(BIND))
def test_blob_bound_to_its_owner(field: str) -> None:
    kr = ring()
    blob = encrypt(SECRET, kr, **BIND)
    with pytest.raises(CredentialError, match="does not decrypt") as err:
        decrypt(blob, kr, **(BIND | {field: "other"}))
    assert CANARY not in str(err.value) and CANARY not in repr(err.value)


def test_wrong_key_and_tampering_fail() -> None:
    blob = encrypt(SECRET, ring(), **BIND)
    with pytest.raises(CredentialError, match="does not decrypt"):
        decrypt(blob, ring(k1=b"\x01" * 32), **BIND)
    with pytest.raises(CredentialError, match="no longer has"):
        decrypt(blob, ring("k9", k9=b"\x02" * 32), **BIND)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(CredentialError):
        decrypt(bytes(tampered), ring(), **BIND)
    with pytest.raises(CredentialError, match="version"):
        decrypt(b"\x07" + blob[1:], ring(), **BIND)


def test_rotation_re_encrypts_so_the_old_key_can_go() -> None:
    old, new = b"\x11" * 32, b"\x22" * 32
    stored = [StoredCredential(encrypt(SECRET | {"n": i}, ring(k1=old), **(BIND | {"credential_id": f"c{i}"})),
                               **(BIND | {"credential_id": f"c{i}"})) for i in range(3)]
    rotated = rotate(stored, ring("k2", k1=old, k2=new))
    assert [key_id(s.blob) for s in rotated] == ["k2"] * 3
    only_new = ring("k2", k2=new)
    assert [decrypt(s.blob, only_new, **s.binding())["n"] for s in rotated] == [0, 1, 2]
    with pytest.raises(CredentialError):
        decrypt(stored[0].blob, only_new, **stored[0].binding())


def test_keyring_from_env_and_file(tmp_path) -> None:
    text = json.dumps({"current": "a", "keys": {"a": Keyring.generate_key()}})
    assert Keyring.from_env({"REPROLAB_RUNNER_CREDENTIAL_KEYS": text}).current == "a"
    (tmp_path / "keys.json").write_text(text)
    kr = Keyring.from_env({"REPROLAB_RUNNER_CREDENTIAL_KEYS_FILE": str(tmp_path / "keys.json")})
    assert decrypt(encrypt(SECRET, kr, **BIND), Keyring.from_json(kr.to_json()), **BIND) == SECRET
    with pytest.raises(CredentialError, match="32"):
        Keyring.from_json(json.dumps({"current": "a", "keys": {"a": base64.b64encode(b"short").decode()}}))
    with pytest.raises(CredentialError, match="no credential keyring"):
        Keyring.from_env({})


def test_canary_never_in_helpers_output(caplog) -> None:
    kr = ring(k1=CANARY.encode()[:32])
    blob = encrypt(SECRET, kr, **BIND)
    stored = StoredCredential(blob, **BIND)
    url = "https://s3.example/b/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=" + CANARY
    shown = redact({"credentials": SECRET | {"password": CANARY, "nested": [{"client_secret": CANARY}]},
                    "url": url, "blob": blob})
    logging.getLogger("t").warning("creds %s keyring %r stored %r mask %s", shown, kr, stored, mask(CANARY))
    text = caplog.text + repr(shown) + str(kr) + repr(stored) + mask(CANARY)
    assert CANARY not in text and CANARY[:20] not in text
    assert base64.b64encode(CANARY.encode()[:32]).decode() not in text
    assert shown["credentials"]["region"] == "eu-west-1"  # non-secrets stay readable
    assert shown["url"].startswith("https://s3.example/b/k?X-Amz-Credential=****")
    assert mask("short") == "****" and mask(CANARY) == "cana****"
