"""Publishing built images to external registries (Docker Hub, GHCR, Quay, Harbor: any OCI
distribution registry) with per-workspace credentials.

Why here and like this:

* The builder already talks to registries with skopeo and is the only service that needs the
  passwords, so it owns them; the gateway passes one through once, on PUT, and reads metadata only.
* Passwords are AES-256-GCM encrypted as the runner's cloud credentials are (``reprolab_runner/
  credentials.py``): blob = version || key id || nonce || ciphertext+tag, with the workspace,
  registry, username and row id as associated data, so a blob copied to another row does not
  decrypt. The keyring is ``REPROLAB_BUILDER_CREDENTIAL_KEYS`` (JSON ``{"current", "keys"}``) or a
  file generated once in ``<cache>/registry-credential-keys.json`` (0600).
* skopeo gets the credentials through a temporary auth file (0600, removed after the copy), never
  on its command line, which every user of the host can read in ``ps``.
* ``skopeo copy --preserve-digests`` fails rather than rewrite a manifest, so the published image
  has the platform's digest; the result is checked against the destination's manifest anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from reprolab_common.canonical import canonical_json
from reprolab_common.errors import Invalid, NotFound, ProblemError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import lock as _lock
from .config import BuilderSettings
from .models import RegistryCredential

ENV_KEYS = "REPROLAB_BUILDER_CREDENTIAL_KEYS"
KEYRING_FILE = "registry-credential-keys.json"
VERSION = 1
REGISTRY_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]{1,5})?$")
# host[:port]/path[:tag], lower-case path as the distribution spec wants; no digest (we push one)
_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
DEST_RE = re.compile(rf"^([a-zA-Z0-9.-]+(?::[0-9]{{1,5}})?)/({_COMPONENT}(?:/{_COMPONENT})*)"
                     r"(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")


class PublishError(ProblemError):
    """The destination registry refused or failed: a 4xx problem naming what to fix (never a secret)."""

    status = 422
    title = "Publish failed"


class ExportError(ProblemError):
    """The platform's own copy of an image could not be read into an image file: nothing the user can fix
    but waiting (503), the tool's reason included (never a secret)."""

    status = 503
    title = "Image file not made"


@dataclass(frozen=True)
class Keyring:
    current: str
    keys: dict[str, bytes]

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, key_ids={sorted(self.keys)!r})"


def keyring(settings: BuilderSettings) -> Keyring:
    text = os.environ.get(ENV_KEYS)
    path = settings.cache_root() / KEYRING_FILE
    if not text:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            doc = {"current": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}}
            # one name per call, not per process: two threads of one builder (concurrent first requests) each
            # write their own file, and only one of them is linked into place
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, json.dumps(doc).encode())
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # another process made it meanwhile: theirs wins
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        text = path.read_text()
    try:
        doc = json.loads(text)
        keys = {kid: base64.b64decode(v, validate=True) for kid, v in doc["keys"].items()}
        if doc["current"] not in keys or any(len(k) != 32 for k in keys.values()):
            raise ValueError("bad keys")
        return Keyring(doc["current"], keys)
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"unreadable registry credential keyring ({type(exc).__name__}); expected "
                           '{"current": "<id>", "keys": {"<id>": "<base64 of 32 bytes>"}}') from None


def _aad(row: RegistryCredential) -> bytes:
    return canonical_json({"id": row.id, "registry": row.host, "username": row.username,
                           "workspace": row.workspace})


def encrypt(ring: Keyring, row: RegistryCredential, password: str) -> str:
    nonce = secrets.token_bytes(12)
    kid = ring.current.encode()
    blob = AESGCM(ring.keys[ring.current]).encrypt(nonce, password.encode(), _aad(row))
    return base64.b64encode(bytes([VERSION, len(kid)]) + kid + nonce + blob).decode()


def decrypt(ring: Keyring, row: RegistryCredential) -> str:
    raw = base64.b64decode(row.secret)
    kid_len = raw[1]
    kid = raw[2:2 + kid_len].decode()
    nonce, blob = raw[2 + kid_len:14 + kid_len], raw[14 + kid_len:]
    if raw[0] != VERSION or kid not in ring.keys:
        raise RuntimeError(f"registry credential {row.id}: key {kid!r} is not in the keyring")
    try:
        return AESGCM(ring.keys[kid]).decrypt(nonce, blob, _aad(row)).decode()
    except InvalidTag:
        raise RuntimeError(f"registry credential {row.id} does not decrypt (tampered or moved)") from None


# --- the credential rows ----------------------------------------------------------------------


def check_registry(registry: str) -> str:
    registry = registry.strip().lower()
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    if not REGISTRY_RE.match(registry) or len(registry) > 255:
        raise Invalid(f"{registry!r} is not a registry host[:port] (e.g. 'ghcr.io', 'quay.io', '127.0.0.1:5001')",
                      errors=[("registry", "not a host[:port]")])
    return registry


def put_credential(session: Session, ring: Keyring, *, workspace: str, registry: str, username: str, password: str,
                   actor: str) -> RegistryCredential:
    registry = check_registry(registry)
    errors = []
    if not username.strip() or len(username) > 255 or any(ord(c) < 32 for c in username):
        errors.append(("username", "is required (1-255 printable characters)"))
    if not password or len(password) > 4096:
        errors.append(("password", "is required (at most 4096 characters; a token works too)"))
    if errors:
        raise Invalid("invalid registry credential: " + "; ".join(f"{loc} {msg}" for loc, msg in errors),
                      errors=errors)
    row = session.scalar(select(RegistryCredential).where(RegistryCredential.workspace == workspace,
                                                          RegistryCredential.host == registry))
    if row is None:
        row = RegistryCredential(id=str(uuid.uuid4()), workspace=workspace, host=registry)
        session.add(row)
    row.username, row.created_by = username.strip(), actor
    row.secret = encrypt(ring, row, password)
    session.flush()
    return row


def list_credentials(session: Session, *, workspace: str) -> list[RegistryCredential]:
    return list(session.scalars(select(RegistryCredential).where(RegistryCredential.workspace == workspace)
                                .order_by(RegistryCredential.host)))


def delete_credential(session: Session, *, workspace: str, registry: str) -> None:
    row = session.scalar(select(RegistryCredential).where(RegistryCredential.workspace == workspace,
                                                          RegistryCredential.host == check_registry(registry)))
    if row is None:
        raise NotFound(f"workspace {workspace!r} has no credentials for registry {registry!r}")
    session.delete(row)


# --- publishing ---------------------------------------------------------------------------------


def check_destination(destination: str) -> tuple[str, str]:
    """(registry host, full reference with a tag) for ``host[:port]/path[:tag]``."""
    m = DEST_RE.match(destination.strip())
    if not m:
        raise Invalid(f"{destination!r} is not a destination like 'ghcr.io/org/image:tag' (a registry host, a "
                      "lower-case path, an optional tag; no digest)", errors=[("destination", "not host/path[:tag]")])
    host, path, tag = m.groups()
    host = check_registry(host)
    return host, f"{host}/{path}:{tag or 'latest'}"


def _auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def _tls(host: str, settings: BuilderSettings) -> str:
    insecure = (host == settings.registry and not settings.registry_tls_verify) or _lock.is_loopback(host)
    return "false" if insecure else "true"


def publish(settings: BuilderSettings, *, source_ref: str, source_digest: str, destination: str,
            credential: tuple[str, str] | None, log=print) -> str:  # noqa: ANN001 - a line sink
    """Copy ``source_ref@source_digest`` to ``destination`` (digest preserved); returns the digest."""
    host, dest = check_destination(destination)
    name, _tag, _ = _lock.split_ref(source_ref)
    src_host = _lock.registry_host(source_ref) or "docker.io"
    auths: dict[str, dict[str, str]] = {}
    if settings.registry_auth_file and Path(settings.registry_auth_file).exists():
        auths.update(json.loads(Path(settings.registry_auth_file).read_text()).get("auths", {}))
    if credential:
        auths[host if host != "docker.io" else "https://index.docker.io/v1/"] = _auth_entry(*credential)
    with tempfile.TemporaryDirectory(prefix="reprolab-publish-") as tmp:
        authfile = Path(tmp) / "auth.json"
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"auths": auths}).encode())
        finally:
            os.close(fd)
        cmd = ["skopeo", "copy", "--retry-times", "1", "--preserve-digests", "--authfile", str(authfile),
               f"--src-tls-verify={_tls(src_host, settings)}", f"--dest-tls-verify={_tls(host, settings)}",
               f"docker://{name}@{source_digest}", f"docker://{dest}"]
        log(f"$ {' '.join(cmd)}")
        proc = _lock.run(cmd, timeout=1800)
        if proc.returncode != 0:
            raise _explain(proc.stderr, host, bool(credential))
        inspect = _lock.run(["skopeo", "inspect", "--raw", "--retry-times", "1", "--authfile", str(authfile),
                             f"--tls-verify={_tls(host, settings)}", f"docker://{dest}"], timeout=120)
    if inspect.returncode != 0:
        raise _explain(inspect.stderr, host, bool(credential))
    digest = "sha256:" + hashlib.sha256(inspect.stdout.encode()).hexdigest()
    if digest != source_digest:
        raise PublishError(f"{dest} now has digest {digest}, not the platform's {source_digest}: the registry "
                           "rewrote the manifest")
    return digest


def _explain(stderr: str, host: str, had_credential: bool) -> PublishError:
    err = _lock._tool_error(stderr)
    if re.search(r"unauthorized|authentication required|401|denied|403|invalid username/password", stderr, re.I):
        if had_credential:
            return PublishError(f"registry {host} refused the credentials stored for it ({err}): store working ones "
                                f"with `reprolab registry login WS {host}`")
        return PublishError(f"registry {host} needs credentials ({err}): store them with "
                            f"`reprolab registry login WS {host}`")
    if re.search(r"connection refused|no such host|dial tcp|i/o timeout|server misbehaving", stderr, re.I):
        return PublishError(f"registry {host} is unreachable: {err}")
    return PublishError(f"publishing to {host} failed: {err}")


def export_archive(settings: BuilderSettings, store, *, workspace: str, source_ref: str,  # noqa: ANN001
                   source_digest: str) -> tuple[str, int]:
    """The image as an ``oci-archive`` (``podman load -i`` / ``docker load`` ready) in the object store,
    made once per digest and workspace; returns (object key, size)."""
    key = f"workspaces/{workspace}/exports/oci/{source_digest.removeprefix('sha256:')}.tar"
    if store.exists(key):
        return key, store.size(key)
    name, tag, _ = _lock.split_ref(source_ref)
    host = _lock.registry_host(source_ref) or "docker.io"
    with tempfile.TemporaryDirectory(prefix="reprolab-export-", dir=settings.cache_root()) as tmp:
        archive = Path(tmp) / "image.tar"
        cmd = ["skopeo", "copy", "--retry-times", "1", "--preserve-digests", *_lock.auth_flag(settings),
               f"--src-tls-verify={_tls(host, settings)}", f"docker://{name}@{source_digest}",
               f"oci-archive:{archive}:{name.rsplit('/', 1)[-1]}:{tag or 'latest'}"]
        proc = _lock.run(cmd, timeout=1800)
        if proc.returncode != 0:
            raise ExportError(f"the image file of {source_ref} could not be made from the platform's registry "
                              f"({_lock._tool_error(proc.stderr)}); try again in a minute, or tell the platform's "
                              "operators if it keeps failing")
        store.put_file(key, archive)
        return key, archive.stat().st_size
