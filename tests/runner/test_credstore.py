"""Stored cloud credentials on real SQLite and PostgreSQL: encryption at rest bound to workspace, user
and vendor, validation that never echoes a value, key rotation (function and command), and the
message a run gets when credentials are missing."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.settings import CommonSettings
from reprolab_runner import credentials as crypto
from reprolab_runner import credstore
from reprolab_runner.config import RunnerSettings
from reprolab_runner.credentials import CredentialError, Keyring
from reprolab_runner.credstore import CloudCredential, CredentialMissing
from reprolab_runner.models import MIGRATIONS, Credential, OutboxEvent
from reprolab_runner.targets.base import TargetError
from sqlalchemy import select, text

ALICE = common_pb2.Actor(user_id="u-alice", username="alice")
BOB = common_pb2.Actor(user_id="u-bob", username="bob")


def ring(*ids: str, current: str | None = None) -> Keyring:
    return Keyring(current=current or ids[-1], keys={i: os.urandom(32) for i in ids})


@pytest.fixture
def sessions(database_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for key, value in database_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(crypto.ENV_KEYS, raising=False)
    monkeypatch.delenv(crypto.ENV_KEYS_FILE, raising=False)
    engine = make_engine(CommonSettings(), "runner")
    migrate(engine, MIGRATIONS)
    yield session_factory(engine)
    engine.dispose()


def aws_secret(canary: str = "") -> dict[str, str]:
    return {"access_key_id": "AKIAEXAMPLEKEYWXYZ", "secret_access_key": canary or f"sk-{uuid.uuid4().hex}"}


def put(sessions, keyring, actor=ALICE, workspace="cs505", vendor="aws", secret=None, options=None):
    return in_transaction(sessions, lambda s: credstore.info(credstore.put(
        s, keyring, actor=actor, workspace=workspace, vendor=vendor, secret=secret or aws_secret(),
        options=options if options is not None else {"region": "us-east-1", "image_id": "ami-123"})))


def resolve(sessions, keyring, workspace="cs505", user_id="u-alice", vendor="aws") -> CloudCredential:
    return in_transaction(sessions, lambda s: credstore.resolve(s, keyring, workspace=workspace, user_id=user_id,
                                                                vendor=vendor))


def test_roundtrip_stores_only_ciphertext_and_replies_with_metadata(sessions) -> None:
    keyring = ring("k1")
    canary = f"CANARY-{uuid.uuid4().hex}"
    info = put(sessions, keyring, secret=aws_secret(canary))
    assert info.vendor == "aws" and info.workspace == "cs505" and info.user_id == "u-alice"
    assert dict(info.options) == {"region": "us-east-1", "image_id": "ami-123"}
    assert list(info.secret_fields) == ["access_key_id", "secret_access_key"]
    assert info.key_hint == "****WXYZ" and info.key_id == "k1"
    assert canary not in str(info) and canary.encode() not in info.SerializeToString()

    cred = resolve(sessions, keyring)
    assert cred.secret == aws_secret(canary) and cred.options == {"region": "us-east-1", "image_id": "ami-123"}
    assert canary not in repr(cred) and canary not in str(cred) and "secret_access_key" in repr(cred)

    with sessions() as s:
        row = s.execute(select(Credential)).scalar_one()
        assert canary.encode() not in row.ciphertext and b"AKIAEXAMPLE" not in row.ciphertext
        stored = " ".join(str(v) for v in s.execute(text("select * from credentials")).one())
        assert canary not in stored
        # the check can fail: the ciphertext holds the canary under the row's binding
        assert crypto.decrypt(row.ciphertext, keyring, workspace_id="cs505", credential_id=row.id,
                              user_id="u-alice", vendor="aws")["secret_access_key"] == canary


def test_put_again_replaces_in_place_and_events_carry_no_secret(sessions) -> None:
    keyring = ring("k1")
    first = put(sessions, keyring)
    second_secret = aws_secret()
    second = put(sessions, keyring, secret=second_secret, options={"region": "eu-west-1"})
    assert second.created_at == first.created_at and second.updated_at.ToDatetime() >= first.updated_at.ToDatetime()
    assert resolve(sessions, keyring).secret == second_secret
    assert resolve(sessions, keyring).options == {"region": "eu-west-1"}
    in_transaction(sessions, lambda s: credstore.delete(s, actor=ALICE, workspace="cs505", vendor="aws"))
    with sessions() as s:
        assert s.execute(select(Credential)).scalars().all() == []
        payloads = [row.payload for row in s.execute(select(OutboxEvent).order_by(OutboxEvent.seq)).scalars()]
    events = [events_pb2.Event.FromString(p) for p in payloads]
    assert [e.type for e in events] == ["credential.set", "credential.set", "credential.deleted"]
    assert {(e.workspace, e.subject, e.credential.vendor, e.credential.key_hint, e.actor.user_id) for e in events} == {
        ("cs505", "credentials/aws", "aws", "****WXYZ", "u-alice")}
    assert not any(second_secret["secret_access_key"].encode() in p for p in payloads)


def test_a_row_copied_to_another_workspace_or_user_does_not_decrypt(sessions) -> None:
    keyring = ring("k1")
    put(sessions, keyring)
    with sessions.begin() as s:
        row = s.execute(select(Credential)).scalar_one()
        for workspace, user in (("other", "u-alice"), ("cs505", "u-bob")):
            s.add(Credential(id=str(uuid.uuid4()), workspace=workspace, user_id=user, vendor="aws",
                             ciphertext=row.ciphertext, key_id=row.key_id, options_json=row.options_json,
                             secret_fields=row.secret_fields, key_hint=row.key_hint))
        # the same row id under another vendor does not decrypt either
        with pytest.raises(CredentialError, match="does not decrypt"):
            crypto.decrypt(row.ciphertext, keyring, workspace_id="cs505", credential_id=row.id, user_id="u-alice",
                           vendor="azure")
    assert resolve(sessions, keyring).secret["access_key_id"] == "AKIAEXAMPLEKEYWXYZ"
    for workspace, user in (("other", "u-alice"), ("cs505", "u-bob")):
        with pytest.raises(CredentialMissing, match="cannot be decrypted") as err:
            resolve(sessions, keyring, workspace=workspace, user_id=user)
        assert f"reprolab credentials set aws --workspace {workspace}" in str(err.value)
    # a copied blob must not make rotation silently launder it: rotation refuses and changes nothing
    with pytest.raises(CredentialError, match="does not decrypt"):
        in_transaction(sessions, lambda s: credstore.rotate_all(s, ring("k1", "k2")))


def test_missing_credentials_say_how_to_set_them(sessions) -> None:
    with pytest.raises(CredentialMissing) as err:
        resolve(sessions, ring("k1"), workspace="x")
    assert isinstance(err.value, TargetError)
    assert str(err.value) == ("no aws credentials for you in workspace 'x'; set them with "
                              "`reprolab credentials set aws --workspace x ...` or in the portal")
    put(sessions, ring("k1"), actor=BOB)  # someone else's do not count
    with pytest.raises(CredentialMissing):
        resolve(sessions, ring("k1"))
    with pytest.raises(NotFound, match="reprolab credentials set aws --workspace cs505"):
        in_transaction(sessions, lambda s: credstore.get(s, workspace="cs505", user_id="u-alice", vendor="aws"))
    with pytest.raises(NotFound):
        in_transaction(sessions, lambda s: credstore.delete(s, actor=ALICE, workspace="cs505", vendor="aws"))


def test_rotation_re_encrypts_every_row_under_the_newest_key(sessions) -> None:
    old = ring("k1")
    for actor in (ALICE, BOB):
        for workspace in ("cs505", "ml101"):
            put(sessions, old, actor=actor, workspace=workspace)
    put(sessions, old, vendor="openstack", secret={"application_credential_id": "app-cred-0123456789",
                                                     "application_credential_secret": "s3cr3t"},
        options={"auth_url": "https://keystone.example:5000/v3"})
    before = resolve(sessions, old, workspace="ml101", user_id="u-bob").secret
    both = Keyring(current="k2", keys={"k1": old.keys["k1"], "k2": os.urandom(32)})
    assert in_transaction(sessions, lambda s: credstore.rotate_all(s, both)) == 5
    with sessions() as s:
        rows = s.execute(select(Credential)).scalars().all()
        assert {r.key_id for r in rows} == {"k2"} and {crypto.key_id(r.ciphertext) for r in rows} == {"k2"}
    new_only = Keyring(current="k2", keys={"k2": both.keys["k2"]})
    assert resolve(sessions, new_only, workspace="ml101", user_id="u-bob").secret == before
    assert resolve(sessions, new_only, vendor="openstack").secret["application_credential_secret"] == "s3cr3t"
    with pytest.raises(CredentialMissing, match="no longer has"):
        resolve(sessions, old)


def test_rotate_command_rewrites_rows_with_the_env_keyring(sessions, database_env) -> None:
    old = ring("k1")
    put(sessions, old)
    both = Keyring(current="k2", keys={"k1": old.keys["k1"], "k2": os.urandom(32)})
    env = {**os.environ, **database_env, crypto.ENV_KEYS: both.to_json()}
    done = subprocess.run([sys.executable, "-m", "reprolab_runner", "rotate-credentials"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 credential(s) under key 'k2'" in done.stdout
    assert resolve(sessions, Keyring(current="k2", keys={"k2": both.keys["k2"]})).secret["access_key_id"]
    # without the key the rows are under, the command fails and says so, changing nothing
    env[crypto.ENV_KEYS] = ring("k3").to_json()
    done = subprocess.run([sys.executable, "-m", "reprolab_runner", "rotate-credentials"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "no longer has" in done.stderr and "nothing was changed" in done.stderr
    with sessions() as s:
        assert s.execute(select(Credential.key_id)).scalar_one() == "k2"


@pytest.mark.parametrize("vendor, secret, options, locs", [
    ("aws", {"access_key_id": "AKIA1234567890", "secret_acess_key": "CANARY"}, {"region": "x"},
     {"secret.secret_acess_key", "secret"}),
    ("aws", {"access_key_id": "AKIA1234567890", "secret_access_key": "x"}, {"region": "x", "passwrd": "CANARY"},
     {"options"}),
    ("aws", {"access_key_id": "AKIA1234567890", "secret_access_key": "x"}, {"regoin": "CANARY"},
     {"options.regoin", "options.region"}),
    ("aws", {"access_key_id": "AKIA1234567890", "secret_access_key": "CANARY", "region": "x"}, {},
     {"secret.region", "options.region"}),
    ("aws", {"access_key_id": "AKIA1234567890", "CANARY": "v"}, {"region": "x"}, {"secret"}),
    ("azure", {"client_id": "c", "client_secret": "CANARY"}, {"tenant_id": "t"},
     {"options.subscription_id", "options.resource_group", "options.location"}),
    ("openstack", {"username": "u", "password": "CANARY"}, {"auth_url": "https://k"}, {"options.project"}),
    ("openstack", {"application_credential_id": "a"}, {"auth_url": "https://k"}, {"secret"}),
    ("gcp", {"key": "CANARY"}, {}, {"vendor"}),
])
def test_invalid_credentials_are_refused_without_echoing_values(vendor, secret, options, locs) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    secret = {(canary if k == "CANARY" else k): (canary if v == "CANARY" else v) for k, v in secret.items()}
    options = {k: (canary if v == "CANARY" else v) for k, v in options.items()}
    with pytest.raises(Invalid) as err:
        credstore.validate(vendor, secret, options, workspace="cs505")
    problem = err.value.to_dict()
    assert {e["loc"] for e in problem["errors"]} >= locs
    assert canary not in json.dumps(problem)
    if vendor != "gcp":
        assert "Expected secret:" in problem["detail"]  # says what to send instead


def test_valid_vendor_documents_pass_and_map_to_the_target_constructors() -> None:
    credstore.validate("openstack", {"username": "u", "password": "p"}, {"auth_url": "https://k", "project": "p"})
    credstore.validate("openstack", {"application_credential_id": "a", "application_credential_secret": "s"},
                       {"auth_url": "https://k", "image_id": "i", "flavor_id": "f"})
    cred = CloudCredential("aws", aws_secret("s"), {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1",
                                                    "image_id": "ami-1", "security_group_ids": "sg-1, sg-2",
                                                    "insecure_registry": "true"})
    creds, opts = cred.target_args()
    assert creds == {**aws_secret("s"), "region": "us-east-1", "endpoint_url": "http://127.0.0.1:1"}
    assert opts == {"image_id": "ami-1", "security_group_ids": ["sg-1", "sg-2"], "insecure_registry": True}
    creds, opts = CloudCredential("azure", {"client_id": "c", "client_secret": "s"}, {
        "tenant_id": "t", "subscription_id": "sub", "resource_group": "rg", "location": "eastus",
        "subnet_id": "/sub/net", "image": "Debian:debian-12:12:latest"}).target_args()
    assert creds == {"client_id": "c", "client_secret": "s", "tenant_id": "t", "subscription_id": "sub",
                     "resource_group": "rg", "location": "eastus"}
    assert opts == {"subnet_id": "/sub/net",
                    "image": {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"}}


def test_keyring_is_generated_once_private_and_env_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(crypto.ENV_KEYS, raising=False)
    monkeypatch.delenv(crypto.ENV_KEYS_FILE, raising=False)
    monkeypatch.setenv("REPROLAB_DATA_DIR", str(tmp_path))
    settings = RunnerSettings(common=CommonSettings())
    first = credstore.keyring_for(settings)
    path = tmp_path / "runner" / "credential-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credstore.keyring_for(settings).keys == first.keys
    assert base64.b64encode(first.keys[first.current]).decode() not in repr(first)
    env_ring = ring("e1")
    monkeypatch.setenv(crypto.ENV_KEYS, env_ring.to_json())
    assert credstore.keyring_for(settings).keys == env_ring.keys
