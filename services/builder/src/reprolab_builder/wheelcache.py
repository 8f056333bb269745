"""Content-addressed wheel cache: ``<cache_root>/wheels/<sha256 hex>/<wheel filename>``.

Wheels are fetched on the builder host (which may need a CA bundle for a TLS-intercepting
proxy; that bundle never enters a build context), checked against the lock's hashes, and
re-checked when they are linked into a build context. The fast path reads the package's page of a
PEP 503 simple index (every link carries ``#sha256=``) and downloads, in parallel, the wheel whose
sha256 the lock names and whose tags fit the target; ``pip download`` is the fallback.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import ssl
import sys
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from .backends.base import BuildError
from .config import BuilderSettings
from .lock import WHEEL_PLATFORMS, _log_output, _short, requirements_text, run

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


def supported_tags(python_version: str) -> dict[Any, int]:
    """Tags a CPython ``python_version`` on manylinux x86_64 installs, best first (tag → rank)."""
    version = tuple(int(x) for x in python_version.split(".")[:2])
    tags = [*cpython_tags(version, platforms=WHEEL_PLATFORMS),
            *compatible_tags(version, interpreter=f"cp{version[0]}{version[1]}", platforms=WHEEL_PLATFORMS)]
    return {tag: rank for rank, tag in reversed(list(enumerate(tags)))}


def _verify_setting(settings: BuilderSettings) -> ssl.SSLContext | bool:
    cert = settings.pip_cert or os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=str(cert)) if cert else True


_LINK = re.compile(r'<a\s[^>]*href="([^"#]+)#sha256=([0-9a-f]{64})"[^>]*>([^<]+)</a>', re.IGNORECASE)


def simple_index_files(page: str, base_url: str) -> list[dict[str, Any]]:
    """The wheels of a PEP 503 project page, as {filename, url, digests, packagetype} records."""
    files = []
    for href, sha, text in _LINK.findall(page):
        name = html.unescape(text).strip()
        if name.endswith(".whl"):
            files.append({"filename": name, "url": urljoin(base_url, html.unescape(href)),
                          "digests": {"sha256": sha}, "packagetype": "bdist_wheel"})
    return files


def _choose(files: list[dict[str, Any]], hashes: list[str], ranks: dict[Any, int]) -> dict[str, Any] | None:
    best, best_rank = None, None
    for f in files:
        if f.get("packagetype") != "bdist_wheel" or f"sha256:{f['digests']['sha256']}" not in hashes:
            continue
        rank = min((ranks[t] for t in parse_wheel_filename(f["filename"])[3] if t in ranks), default=None)
        if rank is not None and (best_rank is None or rank < best_rank):
            best, best_rank = f, rank
    return best


def _fetch_json(missing: list[dict[str, Any]], *, python_version: str, settings: BuilderSettings, root: Path,
                tmp: Path, sources: dict[str, Any] | None = None) -> dict[str, Path]:
    ranks = supported_tags(python_version)
    with httpx.Client(verify=_verify_setting(settings), timeout=120, follow_redirects=True) as http:

        def one(p: dict[str, Any]) -> tuple[str, Path]:
            # A package the lock says came from a workspace index is fetched there, with its
            # credentials in the Authorization header (never in a URL that an error message prints).
            index = (sources or {}).get(p.get("index", ""))
            base, auth = (index.url, index.auth()) if index else (settings.index_url.rstrip("/"), None)
            page_url = f"{base}/{canonicalize_name(p['name'])}/"
            page = http.get(page_url, headers={"Accept": "text/html"}, auth=auth)
            if index is not None and page.status_code in (401, 403):
                raise BuildError(f"package index {index.name!r} ({index.url}) refused "
                                 f"{'the stored credentials' if auth else 'an anonymous request'} "
                                 f"(HTTP {page.status_code}) fetching {p['name']}=={p['version']}")
            page.raise_for_status()
            chosen = _choose(simple_index_files(page.text, str(page.url)), p["hashes"], ranks)
            if chosen is None:
                raise BuildError(f"{p['name']}=={p['version']} has no wheel for CPython {python_version} on "
                                 "manylinux x86_64 among the lock's hashes")
            digest = chosen["digests"]["sha256"]
            part = tmp / f"{digest}.part"
            h = hashlib.sha256()
            same_host = auth and httpx.URL(chosen["url"]).host == httpx.URL(base).host
            with http.stream("GET", chosen["url"], auth=auth if same_host else None) as r, open(part, "wb") as out:
                r.raise_for_status()
                for chunk in r.iter_bytes(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != digest:
                raise BuildError(f"downloaded {chosen['filename']} does not match the lock's hash")
            return p["name"], _into_cache(root, tmp, part, chosen["filename"], digest)

        with ThreadPoolExecutor(max_workers=min(8, len(missing))) as pool:
            return dict(pool.map(one, missing))


def _into_cache(root: Path, tmp: Path, file: Path, filename: str, digest: str) -> Path:
    entry = root / digest
    if not entry.exists():
        stage = tmp / f"stage-{digest}"
        stage.mkdir()
        os.replace(file, stage / filename)
        try:
            os.replace(stage, entry)
        except OSError:  # another fetch won the race: same content by construction
            pass
    return entry / filename


def fetch(packages: list[dict[str, Any]], *, python_version: str, settings: BuilderSettings,
          log: Log = print, sources: dict[str, Any] | None = None) -> dict[str, Path]:
    """Make sure a wheel of every package is cached; return ``{name: cached wheel path}``.

    ``sources`` maps the lock's index names to ``indexes.Index`` (``indexes.sources``)."""
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
        try:
            found.update(_fetch_json(missing, python_version=python_version, settings=settings, root=root,
                                     tmp=Path(tmp), sources=sources))
            return found
        except httpx.HTTPError as exc:
            private = sorted({p["index"] for p in missing if p.get("index") in (sources or {})} - {"pypi"})
            if private:
                # pip download would need the credentials on its command line or in a URL: no fallback.
                index = (sources or {})[private[0]]
                raise BuildError(f"package index {index.name!r} ({index.url}) did not serve the locked wheels: "
                                 f"{type(exc).__name__}") from None
            log(f"the index {settings.index_url} did not serve the wheels ({exc}); falling back to pip download")
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requirements_text(missing))
        dl = Path(tmp) / "dl"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
               "--disable-pip-version-check", "--no-input", "--isolated",
               *(arg for plat in WHEEL_PLATFORMS for arg in ("--platform", plat)),
               "--python-version", python_version, "--implementation", "cp",
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
            found[name] = _into_cache(root, Path(tmp), f, f.name, digest)
    absent = [p["name"] for p in missing if p["name"] not in found]
    if absent:
        raise BuildError(f"no wheel was fetched for {', '.join(absent)}")
    return found


def ensure(lock: dict[str, Any], *, settings: BuilderSettings, log: Log = print,
           indexes: list[Any] | None = None) -> None:
    """Fetch every wheel the lock needs (packages and the installer, uv or pip) that is not cached;
    ``indexes`` are the building workspace's package indexes (their credentials)."""
    py = lock.get("python")
    if not py:
        return
    inst = py["installer"]
    sources = None
    if py.get("indexes"):
        from .indexes import sources as _sources

        sources = _sources(py, indexes or [], pypi_url=settings.index_url)
    fetch([*py["packages"], {"name": inst["name"], "version": inst["version"], "hashes": [inst["sha256"]]}],
          python_version=py["version"], settings=settings, log=log, sources=sources)


def link_wheel(src: Path, dest: Path) -> None:
    """Link (or copy) a cached wheel into a build context, with its modification time at the epoch:
    uv records the time of the file it installed from (``uv_cache.json``, listed in ``RECORD``), so a
    wheel fetched again must not change the image."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    os.utime(dest, (0, 0))


def materialize(lock: dict[str, Any], dest: Path, *, settings: BuilderSettings,
                packages: list[dict[str, Any]] | None = None, installer: bool = True) -> list[str]:
    """Hard-link (or copy) exactly the lock's wheels and the installer's wheel into ``dest``
    (flat, as pip's ``--find-links`` wants), re-verifying each sha256. Returns the file names.

    ``packages`` narrows the set (a derived build installs only the delta); ``installer=False``
    leaves the installer's wheel out (the build mounts uv's binary instead: ``installer_binary``)."""
    py = lock.get("python")
    if not py:
        return []
    root = wheels_root(settings)
    dest.mkdir(parents=True, exist_ok=True)
    inst = py["installer"]
    wanted = [*(py["packages"] if packages is None else packages)]
    if installer:
        wanted.append({"name": inst["name"], "version": inst["version"], "hashes": [inst["sha256"]]})
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
        link_wheel(src, target)
        names.append(src.name)
    return sorted(names)


def installer_binary(lock: dict[str, Any], *, settings: BuilderSettings) -> Path:
    """uv's executable from the lock's installer wheel (its sha256 checked), kept once per wheel in
    ``<cache>/installers/<sha256>/uv`` (mode 0755) and checked against the digest recorded when it
    was taken out, so a build links it into its context instead of unpacking the wheel in the build."""
    inst = lock["python"]["installer"]
    hexd = inst["sha256"].removeprefix("sha256:")
    where = settings.cache_root() / "installers" / hexd
    binary, recorded = where / "uv", where / "uv.sha256"
    if binary.exists() and recorded.exists() and recorded.read_text().strip() == sha256_file(binary):
        return binary
    wheel = cached(wheels_root(settings), inst["name"], [inst["sha256"]])
    if wheel is None:
        raise BuildError(f"wheel of {inst['name']}=={inst['version']} is not in the wheel cache")
    if f"sha256:{sha256_file(wheel)}" != inst["sha256"]:
        raise BuildError(f"cached wheel {wheel.name} is corrupt (sha256 differs from the lock); remove {wheel.parent}")
    member = f"{inst['name']}-{inst['version']}.data/scripts/uv"
    where.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=where, prefix=".uv-")
    try:
        with zipfile.ZipFile(wheel) as zf, os.fdopen(fd, "wb") as out, zf.open(member) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o755)
        Path(f"{tmp}.sha256").write_text(sha256_file(Path(tmp)) + "\n")
        os.replace(tmp, binary)
        os.replace(f"{tmp}.sha256", recorded)
    except KeyError as exc:
        raise BuildError(f"{wheel.name} has no {member}") from exc
    finally:
        for leftover in (tmp, f"{tmp}.sha256"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return binary
