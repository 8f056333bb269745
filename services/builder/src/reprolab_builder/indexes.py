"""Private and extra Python package indexes, per workspace, with their credentials encrypted at rest.

Why here and like this:

* Locking (``uv pip compile``) and the wheel cache both run on the builder host, so the builder is
  the only service that needs an index's password or token; the gateway passes it through once, on
  PUT, and reads metadata only. A build installs from the wheels fetched on the host, offline, so
  no credential ever enters a build context, an image, a lock or a build log.
* Secrets are AES-256-GCM encrypted with the builder's credential keyring (``publish.keyring``), the
  blob bound to the row's id, workspace, name, URL and user name as associated data, so a blob
  copied to another row (or an index re-pointed to another URL) does not decrypt.
* uv gets credentials through ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` in its environment, never on
  its command line (``ps`` shows argv to every user) and never inside a URL (uv and httpx print URLs).

The dependency-confusion rule (uv's ``index-strategy = first-index``): the workspace's extra indexes
are searched in priority order, then the primary (the workspace's replacement for PyPI, or PyPI).
A package name found on an index is taken from that index only, every version of it, even when a
later index (PyPI) offers a higher version. pip's ``--extra-index-url`` merges all indexes and picks
the highest version anywhere, so anyone who uploads ``yourcorp-utils==99`` to PyPI wins: the classic
attack. Under first-index the private index shadows the public name as soon as it has the package.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from reprolab_common.canonical import canonical_json
from reprolab_common.errors import Invalid, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from .backends.base import BuildError
from .models import PackageIndex
from .publish import VERSION, Keyring

PYPI = "pypi"
PYPI_URL = "https://pypi.org/simple"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
KINDS = ("primary", "extra")
MAX_INDEXES = 10
PROBE_PROJECT = "reprolab-index-probe-0"  # a project page no index has: 404 with good credentials

Log = Callable[[str], None]


@dataclass(frozen=True)
class Index:
    """One index as locking and fetching use it. ``password`` is the decrypted secret: never printed."""

    name: str
    url: str
    kind: str = "extra"
    priority: int = 0
    username: str = ""
    password: str = field(default="", repr=False)

    def auth(self) -> tuple[str, str] | None:
        return (self.username or "__token__", self.password) if self.password else None

    def public(self) -> dict[str, str]:
        """What a lock records: name and URL, no credentials."""
        return {"name": self.name, "url": self.url}


def ordered(indexes: list[Index]) -> list[Index]:
    """The search order: extra indexes by priority (then name), the primary last."""
    return sorted(indexes, key=lambda i: (i.kind == "primary", i.priority, i.name))


def default_of(indexes: list[Index], pypi_url: str = PYPI_URL) -> Index:
    """The primary index: the workspace's own, or PyPI."""
    return next((i for i in indexes if i.kind == "primary"), Index(PYPI, pypi_url.rstrip("/"), "primary", 1 << 30))


def secrets_of(indexes: list[Index]) -> list[str]:
    return [i.password for i in indexes if i.password]


def scrub(text: str, indexes: list[Index]) -> str:
    """``text`` with every index secret replaced (tool output may echo what it was given)."""
    for secret in sorted(secrets_of(indexes), key=len, reverse=True):
        text = text.replace(secret, "***")
        quoted = re.sub(r"[^A-Za-z0-9_.~-]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), secret)
        text = text.replace(quoted, "***")
    return text


# --- validation ---------------------------------------------------------------------------------


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_RE.match(name) or name == PYPI:
        raise Invalid(f"{name!r} is not an index name: 1-40 lower-case letters, digits and '-', starting with a "
                      f"letter; {PYPI!r} is reserved", errors=[("name", "not an index name")])
    return name


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 1000:
        raise Invalid(f"{url!r} is not a package index URL (http(s)://host/.../simple)",
                      errors=[("url", "not an http(s) URL")])
    if parts.username or parts.password or "@" in parts.netloc:
        raise Invalid("the index URL must not carry credentials: give them as username and password (or token), "
                      "which are stored encrypted", errors=[("url", "contains credentials")])
    if parts.query or parts.fragment:
        raise Invalid(f"{url!r}: an index URL has no query or fragment", errors=[("url", "query or fragment")])
    return url.rstrip("/")


# --- encryption ---------------------------------------------------------------------------------


def _aad(row: PackageIndex) -> bytes:
    return canonical_json({"id": row.id, "kind": "package-index", "name": row.name, "url": row.url,
                           "username": row.username, "workspace": row.workspace})


def encrypt(ring: Keyring, row: PackageIndex, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    kid = ring.current.encode()
    blob = AESGCM(ring.keys[ring.current]).encrypt(nonce, secret.encode(), _aad(row))
    return base64.b64encode(bytes([VERSION, len(kid)]) + kid + nonce + blob).decode()


def decrypt(ring: Keyring, row: PackageIndex) -> str:
    if not row.secret:
        return ""
    raw = base64.b64decode(row.secret)
    kid_len = raw[1]
    kid = raw[2:2 + kid_len].decode()
    nonce, blob = raw[2 + kid_len:14 + kid_len], raw[14 + kid_len:]
    if raw[0] != VERSION or kid not in ring.keys:
        raise RuntimeError(f"package index {row.name!r}: key {kid!r} is not in the keyring")
    try:
        return AESGCM(ring.keys[kid]).decrypt(nonce, blob, _aad(row)).decode()
    except InvalidTag:
        raise RuntimeError(f"package index {row.name!r}: its secret does not decrypt (tampered or moved)") from None


# --- the rows -------------------------------------------------------------------------------------


def put_index(session: Session, ring: Keyring, *, workspace: str, name: str, url: str, kind: str = "extra",
              priority: int = 0, username: str = "", password: str = "", token: str = "",
              actor: str) -> PackageIndex:
    """Create or replace index ``name`` of ``workspace``. A token is stored as the password of user
    ``__token__`` unless a user name is given (the convention of PyPI, Artifactory, Nexus, GitLab)."""
    name, url = check_name(name), check_url(url)
    errors = []
    if kind not in KINDS:
        errors.append(("kind", f"is one of {', '.join(KINDS)}"))
    if not 0 <= priority <= 1000:
        errors.append(("priority", "is 0-1000 (lower is searched first)"))
    if password and token:
        errors.append(("token", "give a password or a token, not both"))
    secret = password or token
    if len(secret) > 4096 or any(ord(c) < 32 for c in secret):
        errors.append(("password", "at most 4096 printable characters"))
    if len(username) > 255 or any(ord(c) < 32 for c in username) or (username and not username.strip()):
        errors.append(("username", "1-255 printable characters"))
    if username and not secret:
        errors.append(("password", "is required with a user name"))
    if errors:
        raise Invalid("invalid package index: " + "; ".join(f"{loc} {msg}" for loc, msg in errors), errors=errors)
    rows = list_indexes(session, workspace=workspace)
    row = next((r for r in rows if r.name == name), None)
    if kind == "primary":
        other = next((r for r in rows if r.kind == "primary" and r.name != name), None)
        if other is not None:
            raise Invalid(f"workspace {workspace!r} already has a primary index ({other.name!r}); make it an extra "
                          "index or delete it first", errors=[("kind", "one primary per workspace")])
    if row is None:
        if len(rows) >= MAX_INDEXES:
            raise Invalid(f"workspace {workspace!r} has {MAX_INDEXES} package indexes, the most allowed",
                          errors=[("name", "too many indexes")])
        row = PackageIndex(id=str(uuid.uuid4()), workspace=workspace, name=name)
        session.add(row)
    row.url, row.kind, row.priority = url, kind, priority
    row.username = username.strip() or ("__token__" if token else "")
    row.created_by = actor
    row.secret = encrypt(ring, row, secret) if secret else ""
    session.flush()
    return row


def list_indexes(session: Session, *, workspace: str) -> list[PackageIndex]:
    rows = session.scalars(select(PackageIndex).where(PackageIndex.workspace == workspace))
    return sorted(rows, key=lambda r: (r.kind == "primary", r.priority, r.name))


def delete_index(session: Session, *, workspace: str, name: str) -> None:
    row = session.scalar(select(PackageIndex).where(PackageIndex.workspace == workspace,
                                                    PackageIndex.name == check_name(name)))
    if row is None:
        raise NotFound(f"workspace {workspace!r} has no package index {name!r}")
    session.delete(row)


def load(session: Session, ring: Keyring, *, workspace: str) -> list[Index]:
    """The workspace's indexes with their secrets decrypted, in search order."""
    return ordered([Index(name=r.name, url=r.url, kind=r.kind, priority=r.priority, username=r.username,
                          password=decrypt(ring, r)) for r in list_indexes(session, workspace=workspace)])


# --- talking to an index --------------------------------------------------------------------------


def describe(index: Index) -> str:
    return f"package index {index.name!r} ({index.url})"


def probe(index: Index, *, verify: Any = True, timeout: float = 20) -> None:
    """Refuse early, naming the index, when it is unreachable or refuses the stored credentials
    (uv's own message would be about a package, and might be mistaken for a missing one)."""
    try:
        r = httpx.get(f"{index.url}/{PROBE_PROJECT}/", auth=index.auth(), verify=verify, timeout=timeout,
                      follow_redirects=True, headers={"Accept": "text/html"})
    except httpx.HTTPError as exc:
        raise BuildError(f"{describe(index)} is unreachable: {type(exc).__name__}: {scrub(str(exc), [index])}"
                         ) from None
    if r.status_code in (401, 403):
        what = "refused the stored credentials" if index.password else "needs credentials"
        raise BuildError(f"{describe(index)} {what} (HTTP {r.status_code}): store working ones with "
                         f"`reprolab index set WS {index.name} {index.url} --username ...`")
    if r.status_code >= 500:
        raise BuildError(f"{describe(index)} failed (HTTP {r.status_code})")


def uv_args(indexes: list[Index], pypi_url: str = PYPI_URL) -> tuple[list[str], dict[str, str]]:
    """Command-line flags (names and URLs only) and environment (the credentials) for ``uv pip compile``."""
    args = ["--index-strategy", "first-index", "--emit-index-annotation"]
    env: dict[str, str] = {}
    primary = default_of(indexes, pypi_url)
    for index in [*ordered([i for i in indexes if i.kind != "primary"]), primary]:
        flag = "--default-index" if index is primary else "--index"
        args += [flag, f"{index.name}={index.url}"] if index.name != PYPI else [flag, index.url]
        if index.password:
            key = index.name.upper().replace("-", "_")
            env[f"UV_INDEX_{key}_USERNAME"] = index.username or "__token__"
            env[f"UV_INDEX_{key}_PASSWORD"] = index.password
    return args, env


_FROM = re.compile(r"^\s*#\s*from\s+(\S+)\s*$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def origins(compiled: str) -> dict[str, str]:
    """``{package name: index URL}`` from ``uv pip compile --emit-index-annotation`` output."""
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    current = None
    for line in compiled.splitlines():
        m = _PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            continue
        m = _FROM.match(line)
        if m and current:
            found[current] = m.group(1).rstrip("/")
    return found


def by_url(indexes: list[Index], url: str, pypi_url: str = PYPI_URL) -> Index | None:
    url = url.rstrip("/")
    for index in [*indexes, default_of(indexes, pypi_url)]:
        if index.url == url:
            return index
    return None


# --- hooks of the lock step ---------------------------------------------------------------------------


def check_reachable(indexes: list[Index], *, settings: Any, log: Log = print) -> None:
    """Probe every configured index before resolving (see ``probe``)."""
    from .wheelcache import _verify_setting  # late: wheelcache imports lock, lock imports this lazily

    verify = _verify_setting(settings)
    for index in ordered(indexes):
        log(f"checking {describe(index)}{' with stored credentials' if index.password else ''}")
        probe(index, verify=verify)


def record_origins(packages: list[dict[str, Any]], compiled: str, indexes: list[Index]) -> None:
    """Set each package's ``index`` (a name the lock's ``python.indexes`` lists) from uv's annotations."""
    found = origins(compiled)
    for p in packages:
        url = found.get(p["name"])
        index = by_url(indexes, url) if url else None
        if index is None:
            raise BuildError(f"could not tell which package index python package {p['name']!r} was resolved from")
        p["index"] = index.name


def lock_entry(indexes: list[Index]) -> dict[str, Any]:
    """The lock's record of the search: the strategy and the indexes in order, by name and URL only."""
    searched = [*ordered([i for i in indexes if i.kind != "primary"]), default_of(indexes)]
    return {"strategy": "first-index", "search": [i.public() for i in searched]}


# --- hooks of the wheel cache -----------------------------------------------------------------------


def sources(lock_python: dict[str, Any], indexes: list[Index], *, pypi_url: str) -> dict[str, Index]:
    """``{index name in the lock: Index to fetch from}``. A lock names its indexes by name and URL; the
    credentials are the workspace's for that URL now (none: fetched anonymously). PyPI is fetched from
    the builder's ``index_url`` (the operator's mirror, if any)."""
    found: dict[str, Index] = {}
    for entry in (lock_python.get("indexes") or {}).get("search", []):
        if entry["name"] == PYPI:
            found[PYPI] = Index(PYPI, pypi_url.rstrip("/"), "primary")
            continue
        index = next((i for i in indexes if i.url == entry["url"].rstrip("/")), None)
        found[entry["name"]] = index or Index(entry["name"], entry["url"].rstrip("/"))
    return found
