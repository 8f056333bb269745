"""Users' cloud credentials as the runner stores and uses them: one row per (workspace, user, vendor).

Why here and like this:

* The runner is the only service that needs the secrets (to call a cloud for a run), so it owns
  them; the gateway passes a secret through once, on PUT, and can read back metadata only.
* The secret fields are AES-GCM encrypted (``credentials.py``) with the workspace, row id, user id
  and vendor as associated data, so a blob copied onto another row, user or workspace does not
  decrypt. Non-secret settings (region, image, endpoint) are kept in clear so they can be shown.
* What a vendor takes is declared once in ``VENDORS``, from the keys the target constructors read
  (targets/aws.py, azure.py, openstack.py); a PUT with missing or unknown keys is refused with the
  list of keys expected, and no error message ever contains a submitted value.
* The keyring comes from ``REPROLAB_RUNNER_CREDENTIAL_KEYS`` (or ``..._FILE``); without either, a
  key is generated once into ``<data_dir>/runner/credential-keys.json`` (mode 0600), like the audit
  signing key. It is re-read on every use, so a rotation edits the file and needs no restart.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import utcnow
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.nats import new_event
from reprolab_common.outbox import add_event
from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import credentials as crypto
from .config import RunnerSettings
from .credentials import CredentialError, Keyring
from .models import Credential, OutboxEvent
from .targets.base import TargetError

KEYRING_FILE = "credential-keys.json"
MAX_VALUE = 4096
_WORKSPACE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class CredentialMissing(TargetError):
    """A run needs the user's credentials for a vendor in a workspace and there are none usable."""


@dataclass(frozen=True)
class VendorSchema:
    """The keys one vendor's target takes. ``secret_sets``: alternative sets of required secret keys
    (OpenStack: a password or an application credential). ``connection``: non-secret keys the target
    reads from its ``credentials`` argument; every other option goes to its ``options`` argument."""

    secret_sets: tuple[tuple[str, ...], ...]
    required_options: tuple[str, ...]
    optional_options: tuple[str, ...]
    connection: frozenset[str]
    identifier: tuple[str, ...]  # the first one set gives the key hint (never a secret)

    @property
    def secret_keys(self) -> list[str]:
        return sorted({k for group in self.secret_sets for k in group})

    @property
    def option_keys(self) -> list[str]:
        return sorted({*self.required_options, *self.optional_options})

    def expected(self) -> str:
        sets = " or ".join("{" + ", ".join(g) + "}" for g in self.secret_sets)
        return (f"secret: {sets}; options: required {', '.join(self.required_options) or 'none'}, optional "
                f"{', '.join(sorted(self.optional_options))}")


_VM = ("insecure_registry",)
VENDORS: dict[str, VendorSchema] = {
    "aws": VendorSchema(
        secret_sets=(("access_key_id", "secret_access_key"),),
        required_options=("region",),
        optional_options=("endpoint_url", "image_id", "instance_type", "subnet_id", "security_group_ids",
                          "key_name", *_VM),
        connection=frozenset({"region", "endpoint_url"}),
        identifier=("access_key_id",),
    ),
    "azure": VendorSchema(
        secret_sets=(("client_id", "client_secret"),),
        required_options=("tenant_id", "subscription_id", "resource_group", "location"),
        optional_options=("authority_host", "arm_endpoint", "ca_bundle", "subnet_id", "vm_size", "image",
                          "ssh_public_key", *_VM),
        connection=frozenset({"tenant_id", "subscription_id", "resource_group", "location", "authority_host",
                              "arm_endpoint", "ca_bundle"}),
        identifier=("client_id",),
    ),
    "openstack": VendorSchema(
        secret_sets=(("username", "password"), ("application_credential_id", "application_credential_secret")),
        required_options=("auth_url",),
        optional_options=("project", "project_id", "user_domain", "project_domain", "region", "image_id",
                          "flavor_id", "network_id", "key_name", *_VM),
        connection=frozenset({"auth_url", "project", "project_id", "user_domain", "project_domain", "region"}),
        identifier=("application_credential_id", "username"),
    ),
}


def set_command(vendor: str, workspace: str) -> str:
    return f"reprolab credentials set {vendor} --workspace {workspace}"


@dataclass(frozen=True, repr=False)
class CloudCredential:
    """A decrypted credential, as a target needs it. Its repr shows key names, never secret values."""

    vendor: str
    secret: dict[str, str] = field(repr=False)
    options: dict[str, str]

    def __repr__(self) -> str:
        hidden = ", ".join(f"{k!r}: '****'" for k in sorted(self.secret))
        return f"CloudCredential(vendor={self.vendor!r}, secret={{{hidden}}}, options={self.options!r})"

    __str__ = __repr__

    def target_args(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(credentials, options)`` for the vendor's target constructor: secret + connection settings,
        and the target options with their types (``security_group_ids`` "a,b" → list, ``insecure_registry``
        → bool, Azure ``image`` "publisher:offer:sku:version" → dict)."""
        schema = VENDORS[self.vendor]
        creds: dict[str, Any] = dict(self.secret)
        opts: dict[str, Any] = {}
        for key, value in self.options.items():
            if key in schema.connection:
                creds[key] = value
            elif key == "security_group_ids":
                opts[key] = [v.strip() for v in value.split(",") if v.strip()]
            elif key == "insecure_registry":
                opts[key] = value.strip().lower() in ("1", "true", "yes", "on")
            elif key == "image" and self.vendor == "azure":
                opts[key] = dict(zip(("publisher", "offer", "sku", "version"), value.split(":"), strict=False))
            else:
                opts[key] = value
        return creds, opts


# --- the keyring ----------------------------------------------------------------------------------

def keyring_path(settings: RunnerSettings) -> Path:
    return settings.common.data_dir / "runner" / KEYRING_FILE


def keyring_for(settings: RunnerSettings) -> Keyring:
    """``REPROLAB_RUNNER_CREDENTIAL_KEYS`` (or ``..._FILE``) if set; else the generated keyring file."""
    if os.environ.get(crypto.ENV_KEYS) or os.environ.get(crypto.ENV_KEYS_FILE):
        return Keyring.from_env()
    path = keyring_path(settings)
    if path.exists():
        return Keyring.from_json(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    ring = Keyring(current="k1", keys={"k1": base64.b64decode(Keyring.generate_key())})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ring.to_json().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # another process created it meanwhile: use theirs
    except FileExistsError:
        return Keyring.from_json(path.read_text())
    finally:
        os.unlink(tmp)
    return ring


# --- validation -----------------------------------------------------------------------------------

def _named(name: str, known: list[str]) -> tuple[str, str]:
    """(loc suffix, words) for a submitted key name. It is echoed only when it is one of the vendor's keys
    or a near miss of one (a typo); anything else could be a secret pasted in the wrong place."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if name in known or close:
        hint = f" (did you mean {close[0]!r}?)" if close and close[0] != name else ""
        return f".{name}", f"{name!r}{hint}"
    return "", "(a key that is not one of its fields; not shown)"


def check_vendor(vendor: str) -> VendorSchema:
    schema = VENDORS.get(vendor)
    if schema is None:
        raise Invalid(f"unknown vendor {_named(vendor, sorted(VENDORS))[1]}: use one of {', '.join(sorted(VENDORS))}",
                      errors=[("vendor", f"one of {', '.join(sorted(VENDORS))}")])
    return schema


def validate(vendor: str, secret: Mapping[str, str], options: Mapping[str, str], *,
             workspace: str = "") -> VendorSchema:
    """Raise ``Invalid`` naming the keys expected; no message contains a submitted value."""
    schema = check_vendor(vendor)
    problems: list[tuple[str, str]] = []
    if workspace and not _WORKSPACE.match(workspace):
        problems.append(("workspace", "a workspace slug: lowercase letters, digits and '-'"))
    for key, value in secret.items():
        if key not in schema.secret_keys:
            where = "; it is an option, put it under options" if key in schema.option_keys else ""
            loc, words = _named(key, schema.secret_keys + schema.option_keys)
            problems.append((f"secret{loc}", f"unknown secret field {words}{where}; {vendor} takes "
                                             f"{', '.join(schema.secret_keys)}"))
        elif not isinstance(value, str) or not value or len(value) > MAX_VALUE or "\x00" in value:
            problems.append((f"secret.{key}", f"must be a non-empty string of at most {MAX_VALUE} characters"))
    for key, value in options.items():
        if key not in schema.option_keys:
            where = "; it is a secret, put it under secret" if key in schema.secret_keys else ""
            loc, words = _named(key, schema.option_keys + schema.secret_keys)
            problems.append((f"options{loc}", f"unknown option {words}{where}; {vendor} takes "
                                              f"{', '.join(schema.option_keys)}"))
        elif not isinstance(value, str) or len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
            problems.append((f"options.{key}", f"must be a single-line string of at most {MAX_VALUE} characters"))
    given = {k for k, v in secret.items() if v}
    if not any(set(group) <= given for group in schema.secret_sets):
        best = min(schema.secret_sets, key=lambda g: len(set(g) - given))
        problems.append(("secret", f"missing {', '.join(sorted(set(best) - given))}; {vendor} needs "
                                   + " or ".join("{" + ", ".join(g) + "}" for g in schema.secret_sets)))
    for key in schema.required_options:
        if not options.get(key):
            problems.append((f"options.{key}", "required"))
    if vendor == "openstack" and "username" in given and not (options.get("project") or options.get("project_id")):
        problems.append(("options.project", "a username/password login needs options.project or options.project_id"))
    if problems:
        shown = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:5])
        raise Invalid(f"the {vendor} credentials are invalid: {shown}. Expected {schema.expected()}",
                      errors=problems)
    return schema


def key_hint(vendor: str, secret: Mapping[str, str]) -> str:
    """``****WXYZ``: the last 4 characters of the key's identifier (access key id, client id, ...), only
    when it is long enough that 4 characters say little; never anything of a secret field."""
    for name in VENDORS[vendor].identifier:
        ident = secret.get(name, "")
        if ident:
            return "****" + ident[-4:] if len(ident) >= 12 else "****"
    return "****"


# --- rows -----------------------------------------------------------------------------------------

def _aad(row: Credential) -> dict[str, str]:
    return {"workspace_id": row.workspace, "credential_id": row.id, "user_id": row.user_id, "vendor": row.vendor}


def _find(session: Session, *, workspace: str, user_id: str, vendor: str, lock: bool = False) -> Credential | None:
    query = select(Credential).where(Credential.workspace == workspace, Credential.user_id == user_id,
                                     Credential.vendor == vendor)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _emit(session: Session, actor: common_pb2.Actor, row: Credential, verb: str) -> None:
    add_event(session, OutboxEvent, new_event(
        type=f"credential.{verb}", actor=actor, workspace=row.workspace,
        subject=f"credentials/{row.vendor}", credential=runner_pb2.CredentialEvent(vendor=row.vendor,
                                                                                   key_hint=row.key_hint)))


def put(session: Session, keyring: Keyring, *, actor: common_pb2.Actor, workspace: str, vendor: str,
        secret: Mapping[str, str], options: Mapping[str, str]) -> Credential:
    """Create or replace the caller's credentials for ``vendor`` in ``workspace`` (event ``credential.set``)."""
    validate(vendor, secret, options, workspace=workspace)
    if not actor.user_id:
        raise Invalid("the request carries no user", errors=[("actor", "missing")])
    secret = {k: v for k, v in secret.items() if v}
    row = _find(session, workspace=workspace, user_id=actor.user_id, vendor=vendor, lock=True)
    now = utcnow()
    if row is None:
        row = Credential(id=str(uuid.uuid4()), workspace=workspace, user_id=actor.user_id, vendor=vendor,
                         created_at=now)
        session.add(row)
    row.ciphertext = crypto.encrypt(secret, keyring, **_aad(row))
    row.key_id = keyring.current
    row.options_json = json.dumps(dict(options), sort_keys=True)
    row.secret_fields = ",".join(sorted(secret))
    row.key_hint = key_hint(vendor, secret)
    row.updated_at = now
    session.flush()
    _emit(session, actor, row, "set")
    return row


def get(session: Session, *, workspace: str, user_id: str, vendor: str) -> Credential:
    """The row (metadata; its ciphertext is not for replies). ``NotFound`` says how to set it."""
    check_vendor(vendor)
    row = _find(session, workspace=workspace, user_id=user_id, vendor=vendor)
    if row is None:
        raise NotFound(f"you have no {vendor} credentials in workspace {workspace!r}; set them with "
                       f"`{set_command(vendor, workspace)}` or PUT "
                       f"/api/v1/me/credentials/{vendor}?workspace={workspace}")
    return row


def list_for(session: Session, *, workspace: str, user_id: str) -> list[Credential]:
    query = select(Credential).where(Credential.user_id == user_id)
    if workspace:
        query = query.where(Credential.workspace == workspace)
    return list(session.execute(query.order_by(Credential.workspace, Credential.vendor)).scalars())


def delete(session: Session, *, actor: common_pb2.Actor, workspace: str, vendor: str) -> Credential:
    """Remove the caller's credentials (event ``credential.deleted``); ``NotFound`` if there are none."""
    check_vendor(vendor)
    row = _find(session, workspace=workspace, user_id=actor.user_id, vendor=vendor, lock=True)
    if row is None:
        raise NotFound(f"you have no {vendor} credentials in workspace {workspace!r} to delete")
    # A statement whose count is checked, not ``session.delete``: when a concurrent DELETE removed the row
    # first (SQLite takes no row lock on the read above), this one is a 404, not a second event.
    gone = session.execute(sa_delete(Credential).where(Credential.id == row.id)).rowcount
    if gone != 1:
        raise NotFound(f"you have no {vendor} credentials in workspace {workspace!r} to delete")
    _emit(session, actor, row, "deleted")
    session.expunge(row)
    return row


def info(row: Credential) -> runner_pb2.CredentialInfo:
    """What a reply may carry: never the ciphertext or any secret."""
    msg = runner_pb2.CredentialInfo(workspace=row.workspace, vendor=row.vendor, user_id=row.user_id,
                                    options=json.loads(row.options_json or "{}"),
                                    secret_fields=[f for f in row.secret_fields.split(",") if f],
                                    key_hint=row.key_hint, key_id=row.key_id)
    msg.created_at.FromDatetime(row.created_at)
    msg.updated_at.FromDatetime(row.updated_at)
    return msg


def resolve(session: Session, keyring: Keyring, *, workspace: str, user_id: str, vendor: str) -> CloudCredential:
    """The decrypted credentials a run of ``user_id`` in ``workspace`` uses on ``vendor``.

    Raises ``CredentialMissing`` (a ``TargetError``, so the run fails with this message) when there are
    none or they no longer decrypt (their key was dropped from the keyring)."""
    row = _find(session, workspace=workspace, user_id=user_id, vendor=vendor)
    if row is None:
        raise CredentialMissing(f"no {vendor} credentials for you in workspace {workspace!r}; set them with "
                                f"`{set_command(vendor, workspace)} ...` or in the portal")
    try:
        secret = crypto.decrypt(row.ciphertext, keyring, **_aad(row))
    except CredentialError as exc:
        raise CredentialMissing(f"your {vendor} credentials in workspace {workspace!r} cannot be decrypted ({exc}); "
                                f"set them again with `{set_command(vendor, workspace)} ...`") from None
    return CloudCredential(vendor=vendor, secret={str(k): str(v) for k, v in secret.items()},
                           options=json.loads(row.options_json or "{}"))


def rotate_all(session: Session, keyring: Keyring) -> int:
    """Re-encrypt every row under the keyring's current key (fresh nonces); the count of rows.

    Raises ``CredentialError`` (naming the row's workspace and vendor, never a secret) if a row does
    not decrypt with any key of the keyring: nothing is changed then (the caller's transaction rolls back)."""
    count = 0
    for row in session.execute(select(Credential).order_by(Credential.id).with_for_update()).scalars():
        try:
            plain = crypto.decrypt_bytes(row.ciphertext, keyring, **_aad(row))
        except CredentialError as exc:
            raise CredentialError(f"credential {row.id} ({row.vendor} in {row.workspace!r}): {exc}") from None
        row.ciphertext = crypto.encrypt(plain, keyring, **_aad(row))
        row.key_id = keyring.current
        count += 1
    session.flush()
    return count
