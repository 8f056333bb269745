"""Content-addressed cache of R source archives: ``<cache_root>/r-sources/<sha256 hex>/<pkg>_<ver>.tar.gz``.

Like the wheel cache: archives are downloaded on the builder host (verified against the lock's
sha256), re-verified when linked into a build context, and reach the build through a bind mount
only, where ``R CMD INSTALL`` installs them with no network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .backends.base import BuildError
from .config import BuilderSettings

Log = Callable[[str], None]


def root(settings: BuilderSettings) -> Path:
    return settings.cache_root() / "r-sources"


def verify_setting(settings: BuilderSettings) -> ssl.SSLContext | bool:
    cert = settings.pip_cert or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=str(cert)) if cert else True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def put(settings: BuilderSettings, data: bytes, filename: str) -> str:
    """Store ``data`` under its sha256; returns ``sha256:<hex>``."""
    digest = hashlib.sha256(data).hexdigest()
    entry = root(settings) / digest
    if not (entry / filename).exists():
        root(settings).mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=root(settings)))
        (stage / filename).write_bytes(data)
        try:
            os.replace(stage, entry)
        except OSError:  # another writer won: same bytes by construction
            shutil.rmtree(stage, ignore_errors=True)
    return f"sha256:{digest}"


def cached(settings: BuilderSettings, pkg: dict[str, Any]) -> Path | None:
    path = root(settings) / pkg["sha256"].removeprefix("sha256:") / filename(pkg)
    return path if path.exists() else None


def filename(pkg: dict[str, Any]) -> str:
    return f"{pkg['name']}_{pkg['version']}.tar.gz"


def ensure(lock: dict[str, Any], *, settings: BuilderSettings, log: Log = print) -> None:
    """Download every locked R archive that is not cached, refusing bytes whose sha256 differs.

    A version that was current when locked may since have moved to ``Archive/``: both places are tried."""
    missing = [p for p in (lock.get("r_source") or []) if cached(settings, p) is None]
    if not missing:
        return
    log(f"fetching {len(missing)} R source archives")
    with httpx.Client(verify=verify_setting(settings), timeout=120, follow_redirects=True) as http:
        for p in missing:
            paths = [p["path"]]
            if "/Archive/" not in p["path"]:
                paths.append(f"src/contrib/Archive/{p['name']}/{filename(p)}")
            data = None
            for path in paths:
                try:
                    resp = http.get(f"{p['repository']}/{path}")
                except httpx.HTTPError as exc:
                    raise BuildError(f"R repository {p['repository']} cannot be reached: {exc}") from exc
                if resp.status_code == 200:
                    data = resp.content
                    break
            if data is None:
                raise BuildError(f"R package {p['name']} {p['version']} is no longer in {p['repository']}")
            got = "sha256:" + hashlib.sha256(data).hexdigest()
            if got != p["sha256"]:
                raise BuildError(f"R package archive {filename(p)} from {p['repository']} has sha256 {got}, "
                                 f"not the lock's {p['sha256']}; refusing it (the repository changed the file)")
            put(settings, data, filename(p))


def materialize(packages: list[dict[str, Any]], dest: Path, *, settings: BuilderSettings) -> list[str]:
    """Hard-link (or copy) the archives into ``dest``, re-verifying each sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for p in packages:
        src = cached(settings, p)
        if src is None:
            raise BuildError(f"R archive {filename(p)} is not in the R source cache")
        if _sha256(src) != p["sha256"]:
            raise BuildError(f"cached R archive {src.name} is corrupt (sha256 differs from the lock); "
                             f"remove {src.parent}")
        target = dest / src.name
        if target.exists():
            target.unlink()
        try:
            os.link(src, target)
        except OSError:
            shutil.copyfile(src, target)
        os.chmod(target, 0o644)
        names.append(src.name)
    return names
