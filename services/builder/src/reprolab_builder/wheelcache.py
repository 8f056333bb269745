"""Content-addressed wheel cache: ``<cache_root>/wheels/<sha256 hex>/<wheel filename>``.

Wheels are fetched on the builder host (which may need a CA bundle for a TLS-intercepting
proxy; that bundle never enters a build context), checked by pip against the lock's hashes,
and re-checked when they are linked into a build context.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from .backends.base import BuildError
from .config import BuilderSettings
from .lock import PIP_PLATFORM, _log_output, _short, requirements_text, run

Log = Callable[[str], None]


def wheels_root(settings: BuilderSettings) -> Path:
    return settings.cache_root() / "wheels"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cached(root: Path, name: str, hashes: list[str]) -> Path | None:
    """The cached wheel of package ``name`` whose sha256 is one of ``hashes`` (first in hash order)."""
    for h in sorted(hashes):
        entry = root / h.removeprefix("sha256:")
        if entry.is_dir():
            for f in sorted(entry.iterdir()):
                if f.suffix == ".whl" and canonicalize_name(parse_wheel_filename(f.name)[0]) == name:
                    return f
    return None


def fetch(packages: list[dict[str, Any]], *, python_version: str, settings: BuilderSettings,
          log: Log = print) -> dict[str, Path]:
    """Make sure a wheel of every package is cached; return ``{name: cached wheel path}``."""
    root = wheels_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing: list[dict[str, Any]] = []
    for p in packages:
        path = cached(root, p["name"], p["hashes"])
        if path:
            found[p["name"]] = path
        else:
            missing.append(p)
    if not missing:
        return found
    log(f"fetching {len(missing)} wheels ({', '.join(p['name'] + '==' + p['version'] for p in missing[:8])}"
        f"{', ...' if len(missing) > 8 else ''})")
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requirements_text(missing))
        dl = Path(tmp) / "dl"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
               "--disable-pip-version-check", "--no-input", "--isolated",
               "--platform", PIP_PLATFORM, "--python-version", python_version, "--implementation", "cp",
               "-d", str(dl), "-r", str(reqs)]
        if settings.pip_cert:
            cmd += ["--cert", str(settings.pip_cert)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        if not settings.pip_cert and os.environ.get("PIP_CERT"):
            cmd += ["--cert", os.environ["PIP_CERT"]]
        proc = run(cmd, env=env)
        if proc.returncode != 0:
            _log_output(log, "pip download", proc.stdout + proc.stderr)
            err = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            raise BuildError("could not fetch the locked wheels: " + _short(" ".join(err) or proc.stderr, 500))
        by_name = {p["name"]: p for p in missing}
        for f in sorted(dl.iterdir()):
            name = canonicalize_name(parse_wheel_filename(f.name)[0])
            digest = sha256_file(f)
            pkg = by_name.get(name)
            if pkg is None or f"sha256:{digest}" not in pkg["hashes"]:
                raise BuildError(f"downloaded {f.name} does not match the lock's hashes")
            entry = root / digest
            if not entry.exists():
                stage = Path(tmp) / digest
                stage.mkdir()
                os.replace(f, stage / f.name)
                try:
                    os.replace(stage, entry)
                except OSError:  # another fetch won the race: same content by construction
                    pass
            found[name] = cached(root, name, pkg["hashes"]) or entry / f.name
    absent = [p["name"] for p in missing if p["name"] not in found]
    if absent:
        raise BuildError(f"no wheel was fetched for {', '.join(absent)}")
    return found


def ensure(lock: dict[str, Any], *, settings: BuilderSettings, log: Log = print) -> None:
    """Fetch every wheel the lock needs (packages and the pip installer) that is not cached."""
    py = lock.get("python")
    if not py:
        return
    inst = py["installer"]
    fetch([*py["packages"], {"name": "pip", "version": inst["version"], "hashes": [inst["sha256"]]}],
          python_version=py["version"], settings=settings, log=log)


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def materialize(lock: dict[str, Any], dest: Path, *, settings: BuilderSettings,
                packages: list[dict[str, Any]] | None = None) -> list[str]:
    """Hard-link (or copy) exactly the lock's wheels and the pip installer wheel into ``dest``
    (flat, as pip's ``--find-links`` wants), re-verifying each sha256. Returns the file names.

    ``packages`` narrows the set (a derived build installs only the delta)."""
    py = lock.get("python")
    if not py:
        return []
    root = wheels_root(settings)
    dest.mkdir(parents=True, exist_ok=True)
    inst = py["installer"]
    wanted = [*(py["packages"] if packages is None else packages),
              {"name": "pip", "version": inst["version"], "hashes": [inst["sha256"]], "installer": True}]
    names = []
    for p in wanted:
        src = cached(root, p["name"], p["hashes"])
        if src is None:
            raise BuildError(f"wheel of {p['name']}=={p['version']} is not in the wheel cache")
        if f"sha256:{sha256_file(src)}" not in p["hashes"]:
            raise BuildError(f"cached wheel {src.name} is corrupt (sha256 differs from the lock); remove {src.parent}")
        target = dest / src.name
        if target.exists():
            target.unlink()
        _link(src, target)
        names.append(src.name)
    return sorted(names)
