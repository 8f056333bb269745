"""Spec → lock: pin the base by digest, resolve Python wheels with hashes, apt and R with exact versions.

The lock is the input of every later step (render, wheel cache, build): two builds of one lock
produce one image digest. Every failure a person can fix raises ``BuildError`` with a short
message naming the problem; long tool output goes to ``log`` only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from reprolab_common import canonical

from .backends.base import BuildError
from .config import BuilderSettings

LOCK_FORMAT = "reprolab-lock/1"
# How the image is laid out, part of the lock so that a lock always rebuilds to the same digest. Locks
# made since issue 14 item 5 say "one": what the build adds over its FROM image is one layer, which the
# buildah backend commits straight to the registry. Older locks have no "build" and keep a layer per step.
BUILD = {"layers": "one"}


def one_layer(lock: dict[str, Any]) -> bool:
    """Whether ``lock`` builds into one layer over its FROM image (``BUILD``)."""
    return (lock.get("build") or {}).get("layers") == "one"
PLATFORM = "linux/amd64"
UV_PLATFORM = "x86_64-manylinux_2_28"
PIP_PLATFORM = "manylinux_2_28_x86_64"
# uv's x86_64-manylinux_2_28 target accepts every older manylinux wheel; pip's --platform does not
# infer them, so the fetchers name them all (kiwisolver and matplotlib ship only manylinux_2_17).
WHEEL_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
APT_LISTS_TTL = 6 * 3600
TOOL_TIMEOUT = 900

Log = Callable[[str], None]

_python_by_digest: dict[str, str | None] = {}


def lock_digest(lock: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the lock's canonical JSON."""
    return canonical.digest(lock)


# ---------------------------------------------------------------------------------------------
# small helpers


def uv_binary() -> str:
    """The ``uv`` installed next to this interpreter (pinned by the builder's own dependencies)."""
    candidate = Path(sys.executable).parent / "uv"
    if candidate.exists():
        return str(candidate)
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return find_uv_bin()
    except ImportError:  # pragma: no cover - uv is a dependency
        return "uv"


def run(cmd: list[str], *, timeout: float = TOOL_TIMEOUT, env: dict[str, str] | None = None,
        cwd: str | Path | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input)
    except FileNotFoundError as exc:
        raise BuildError(f"{cmd[0]} is not installed on the builder host") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{Path(cmd[0]).name} timed out after {int(timeout)} s") from exc


def _short(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _log_output(log: Log, title: str, text: str) -> None:
    lines = text.strip().splitlines()
    if lines:
        log(f"{title}:")
        for line in lines:
            log("  " + line)


def is_loopback(ref_or_host: str) -> bool:
    host = ref_or_host.split("/", 1)[0]
    return host.startswith(("127.", "localhost:", "[::1]")) or host in {"localhost", "127.0.0.1"}


def split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` → (name, tag, digest)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return ref, tag, digest


def registry_host(ref: str) -> str | None:
    """The registry part of a reference, or None for Docker Hub short names."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def base_from(base: dict[str, Any]) -> str:
    """The reference a Containerfile's FROM uses for a pinned base: ``name@sha256:...``."""
    if base.get("digest"):
        name, _tag, _ = split_ref(base["ref"])
        return f"{name}@{base['digest']}"
    return base["id"]


def tls_flag(ref: str, settings: BuilderSettings) -> list[str]:
    host = registry_host(ref)
    if host and (is_loopback(host) or host == settings.registry) and not settings.registry_tls_verify:
        return ["--tls-verify=false"]
    return []


def auth_flag(settings: BuilderSettings) -> list[str]:
    return ["--authfile", str(settings.registry_auth_file)] if settings.registry_auth_file else []


# ---------------------------------------------------------------------------------------------
# base image


def pin_base(ref: str, *, settings: BuilderSettings, log: Log = print) -> dict[str, Any]:
    """Resolve ``ref`` to an immutable digest: the registry's manifest digest, or for images only
    in local containers-storage (``localhost/...``) the digest storage recorded (or the image id)."""
    name, _tag, given_digest = split_ref(ref)
    host = registry_host(ref)
    remote_error = ""
    if host != "localhost":
        proc = run(["skopeo", "inspect", "--retry-times", "0", "--no-tags", *tls_flag(ref, settings),
                    *auth_flag(settings), f"docker://{ref}"], timeout=120)
        if proc.returncode == 0:
            digest = json.loads(proc.stdout)["Digest"]
            return {"ref": ref, "digest": given_digest or digest}
        remote_error = _tool_error(proc.stderr)
        log(f"base image {ref}: not in a registry ({remote_error}); looking in local storage")
    proc = run(["podman", "image", "inspect", ref], timeout=120)
    if proc.returncode == 0:
        info = json.loads(proc.stdout)[0]
        digest = given_digest or info.get("Digest") or None
        pinned = {"ref": ref, "digest": digest, "id": "sha256:" + info["Id"].removeprefix("sha256:")}
        if not digest:
            pinned.pop("digest")
        return pinned
    reason = remote_error or _tool_error(proc.stderr) or "no such image"
    raise BuildError(f"base image {ref!r} not found: {reason}")


def _tool_error(stderr: str) -> str:
    """The useful part of a skopeo/podman error line."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1]
    m = re.search(r'msg="(.*)"\s*$', line)
    if m:
        line = m.group(1).replace('\\"', '"')
    line = re.sub(r"^(Error: )", "", line)
    return _short(line, 300)


def base_python(base: dict[str, Any], *, settings: BuilderSettings, log: Log = print) -> str | None:
    """``X.Y`` of the base's ``python3`` (run with no network), cached per digest; None if absent."""
    key = base.get("digest") or base["id"]
    if key in _python_by_digest:
        return _python_by_digest[key]
    cache_file = settings.cache_root() / "base-python" / key.replace(":", "-")
    if cache_file.exists():
        value = cache_file.read_text().strip() or None
        _python_by_digest[key] = value
        return value
    image = base_from(base)
    proc = run(["podman", "run", "--rm", "--network=none", *tls_flag(image, settings), *auth_flag(settings),
                "--entrypoint", "", image, "python3", "-c",
                "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=600)
    value: str | None
    if proc.returncode == 0 and re.fullmatch(r"\d+\.\d+", proc.stdout.strip()):
        value = proc.stdout.strip()
    else:
        err = proc.stderr.strip()
        if "executable file" in err or "not found" in err or proc.returncode == 127:
            value = None
        else:
            _log_output(log, f"running {image}", err)
            raise BuildError(f"could not run base image {base['ref']!r} to detect its Python: {_tool_error(err)}")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(value or "")
    _python_by_digest[key] = value
    return value


# ---------------------------------------------------------------------------------------------
# Python


_REQ_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def parse_compiled(text: str) -> list[dict[str, Any]]:
    """Parse ``uv pip compile --generate-hashes`` output into sorted ``{name, version, hashes}``."""
    packages: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _REQ_LINE.match(line)
        if m:
            packages.append({"name": canonicalize_name(m.group(1)), "version": m.group(2), "hashes": []})
        if packages:
            packages[-1]["hashes"].extend(_HASH.findall(line))
    for p in packages:
        p["hashes"] = sorted(set(p["hashes"]))
    return sorted(packages, key=lambda p: p["name"])


def requirements_text(packages: list[dict[str, Any]]) -> str:
    """Pinned, hashed requirements (one line per package, sorted): pip's ``--require-hashes`` input."""
    lines = []
    for p in sorted(packages, key=lambda p: p["name"]):
        hashes = " ".join(f"--hash={h}" for h in p["hashes"])
        lines.append(f"{p['name']}=={p['version']} {hashes}".rstrip())
    return "\n".join(lines) + ("\n" if lines else "")


def _uv_env(settings: BuilderSettings) -> dict[str, str]:
    env = dict(os.environ)
    if settings.pip_cert:
        env["SSL_CERT_FILE"] = str(settings.pip_cert)
    env.pop("VIRTUAL_ENV", None)
    return env


def uv_compile(requirements: list[str], *, python_version: str, settings: BuilderSettings,
               preferences: list[dict[str, Any]] | None = None, log: Log = print,
               indexes: list[Any] | None = None) -> list[dict[str, Any]]:
    """Resolve requirements for CPython ``python_version`` on manylinux x86_64, wheels only.

    With the workspace's ``indexes`` (``indexes.Index``), each package records the index it came
    from (``indexes.py`` says the search order and why)."""
    from . import indexes as _indexes  # late: indexes imports the models

    index_args, index_env = _indexes.uv_args(indexes) if indexes else ([], {})
    with tempfile.TemporaryDirectory(prefix="reprolab-lock-") as tmp:
        src = Path(tmp) / "requirements.in"
        src.write_text("\n".join(requirements) + "\n")
        out = Path(tmp) / "requirements.txt"
        if preferences:
            # uv prefers the versions already pinned in the output file: a derived lock keeps its
            # parent's versions unless the new requirements force a change.
            out.write_text(requirements_text(preferences))
        cmd = [uv_binary(), "pip", "compile", "--no-config", "--generate-hashes", "--python-version", python_version,
               "--python-platform", UV_PLATFORM, "--only-binary", ":all:", "--no-header", "--no-annotate",
               "--quiet", *index_args, "-o", str(out), str(src)]
        proc = run(cmd, env={**_uv_env(settings), **index_env}, cwd=tmp)
        if proc.returncode != 0:
            stderr = _indexes.scrub(proc.stderr, indexes or [])
            _log_output(log, "uv pip compile", stderr)
            raise BuildError(_explain_uv(stderr))
        compiled = out.read_text()
        packages = parse_compiled(compiled)
        if indexes:
            _indexes.record_origins(packages, compiled, indexes)
        return packages


def _explain_uv(stderr: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    m = re.search(r"Because ([A-Za-z0-9._\-\[\]]+) was not found in the package registry", text)
    if m:
        return f"python package {m.group(1)!r} is not on the package index"
    m = re.search(r"Because there is no version of ([A-Za-z0-9._\-\[\]]+)(==\S+)?", text)
    if m and "and you require" in text:
        what = m.group(1) + (m.group(2) or "")
        return f"python package {what!r}: no such version on the package index"
    m = re.search(r"([A-Za-z0-9._\-]+)(==\S+)? has no (usable )?wheels?", text)
    if m or "no wheels with a matching" in text or "only source distributions" in text.lower():
        name = m.group(1) if m else "a requirement"
        return (f"python package {name!r} has no binary wheel for CPython on linux/amd64 "
                "(manylinux_2_28); only wheels are installed")
    causes = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("error:")]
    body = " ".join(causes).removeprefix("cause: ").replace("hint: ", "; hint: ")
    head = "conflicting python requirements" if "unsatisfiable" in body else "python requirements cannot be resolved"
    if not body:
        body = _short(text, 300)
    return f"{head}: {_short(body, 500)}"


# ---------------------------------------------------------------------------------------------
# apt and R (resolved inside the base, with network, against Debian's current archive)


_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ")


def _apt_resolve(base: dict[str, Any], apt: list[str], r_map: dict[str, str], *, settings: BuilderSettings,
                 log: Log, extra: tuple[str, ...] = ()) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Simulate installing ``apt`` then ``apt`` + the R debs (``r_map``: deb → CRAN name);
    return (what apt installs, what apt + R installs)."""
    r_debs = sorted(r_map) + sorted(set(extra) - set(r_map))  # extra: r-base-core for CRAN sources
    image = base_from(base)
    key = (base.get("digest") or base["id"]).replace(":", "-")
    lists = settings.cache_root() / "apt-lists" / key
    lists.mkdir(parents=True, exist_ok=True)
    stamp = lists / ".reprolab-updated"
    fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < APT_LISTS_TTL
    script = ["set -e", "export DEBIAN_FRONTEND=noninteractive"]
    if not fresh:
        script.append("apt-get update -q >/dev/null")
    opts = "-s -q --no-install-recommends -o APT::Get::Show-Versions=0"
    script.append(f"apt-get install {opts} {' '.join(map(shlex.quote, apt))} 2>&1 || true" if apt else "true")
    script.append("echo '--- reprolab R ---'")
    both = " ".join(map(shlex.quote, apt + r_debs))
    script.append(f"apt-get install {opts} {both} 2>&1 || true" if r_debs else "true")
    proc = run(["podman", "run", "--rm", *tls_flag(image, settings), *auth_flag(settings), "--entrypoint", "",
                "-v", f"{lists}:/var/lib/apt/lists:Z", image, "sh", "-c", "\n".join(script)], timeout=900)
    if proc.returncode != 0:
        _log_output(log, "apt resolution", proc.stdout + proc.stderr)
        err = proc.stderr.strip()
        if "apt-get: not found" in err or "executable file" in err:
            raise BuildError(f"base image {base['ref']!r} has no apt-get: apt and R packages need a Debian-based base")
        raise BuildError(f"could not resolve apt packages in base image {base['ref']!r}: "
                         f"{_short(err.splitlines()[-1] if err else 'apt-get update failed', 300)}")
    if not fresh:
        stamp.touch()
    first, _, second = proc.stdout.partition("--- reprolab R ---")
    _apt_errors(first, r_debs={}, log=log)
    _apt_errors(second, r_debs=r_map, log=log)
    apt_pkgs = _parse_inst(first)
    all_pkgs = _parse_inst(second)
    return apt_pkgs, all_pkgs


def _parse_inst(text: str) -> list[dict[str, str]]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = _INST.match(line)
        if m:
            found[m.group(1)] = m.group(2)
    return [{"name": n, "version": v} for n, v in sorted(found.items())]


def _apt_errors(text: str, *, r_debs: dict[str, str], log: Log) -> None:
    errors = [ln for ln in text.splitlines() if ln.startswith("E:")]
    if not errors:
        return
    _log_output(log, "apt-get", text)
    for line in errors:
        m = re.search(r"Unable to locate package (\S+)", line)
        if m:
            deb = m.group(1)
            if deb in r_debs:
                raise BuildError(f"R package {r_debs[deb]!r} is not available: Debian has no package {deb!r} "
                                 "(only CRAN packages packaged as r-cran-* can be installed)")
            raise BuildError(f"apt package {deb!r} is not available in the base image's Debian archive")
        m = re.search(r"Version '([^']+)' for '([^']+)' was not found", line)
        if m:
            raise BuildError(f"apt package {m.group(2)!r} has no version {m.group(1)!r} in the Debian archive")
    detail = _short(" ".join(e[2:].strip() for e in errors), 400)
    raise BuildError(f"apt packages cannot be installed together: {detail}")


# ---------------------------------------------------------------------------------------------
# the lock


def resolve(spec: dict[str, Any], *, settings: BuilderSettings, parent_lock: dict[str, Any] | None = None,
            parent_image: str | None = None, log: Log = print, indexes: list[Any] | None = None) -> dict[str, Any]:
    """Resolve a (validated, normalised) spec into a lock document.

    ``parent_lock`` (with ``parent_image``, the parent's pushed ``ref@sha256:...``; or an
    ``image`` key inside ``parent_lock``) makes a derived lock: the parent's versions are
    preferred, and the build starts FROM the parent's image and adds only the delta.
    ``indexes`` are the workspace's package indexes (``indexes.Index``, credentials included).
    """
    from . import wheelcache  # late: wheelcache imports helpers from here

    base = pin_base(spec["base"], settings=settings, log=log)
    log(f"base {spec['base']} pinned to {base.get('digest') or base['id']}")
    python = base_python(base, settings=settings, log=log)
    base["python"] = python
    py_spec = spec.get("python") or {}
    wanted = py_spec.get("version")
    if wanted and python != wanted:
        if not python:
            raise BuildError(f"spec asks for Python {wanted} but base image {spec['base']!r} has no python3")
        raise BuildError(f"spec asks for Python {wanted} but base image {spec['base']!r} has Python {python}; "
                         f"set python.version to {python!r} or pick a base image with Python {wanted}")
    requirements = list(py_spec.get("requirements", []))
    if requirements and not python:
        raise BuildError(f"base image {spec['base']!r} has no python3, so python requirements cannot be installed")

    parent = None
    if parent_lock is not None:
        image = parent_image or parent_lock.get("image")
        if image and "@" in image:
            name, _tag, pinned = split_ref(image)
            image = f"{name}@{pinned}"
        same_base = parent_lock.get("base", {}).get("digest") == base.get("digest") and \
            parent_lock.get("base", {}).get("id") == base.get("id")
        if image and same_base:
            parent = {"lock_digest": lock_digest({k: v for k, v in parent_lock.items() if k != "image"}),
                      "image": image}
        else:
            log("parent is not reusable (different base or no parent image): building from the base")
            parent_lock = None

    lock: dict[str, Any] = {"format": LOCK_FORMAT, "platform": PLATFORM, "base": base, "build": dict(BUILD)}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reprolab-resolve") as pool:
        # The Python resolution (network), the installer's pin and wheel (network) and the apt/R
        # resolution (a container in the base) depend on nothing but the base: they run side by side.
        py_future = installer_future = None
        if requirements:
            prefs = (parent_lock or {}).get("python", {}).get("packages")
            log(f"resolving {len(requirements)} python requirements for CPython {python} ({UV_PLATFORM})")
            py_future = pool.submit(_python_packages, requirements, python, settings=settings, prefs=prefs,
                                    log=log, indexes=indexes)
            if not (parent_lock or {}).get("python", {}).get("installer"):
                installer_future = pool.submit(_installer, python, settings=settings, log=log, wheelcache=wheelcache)
        _resolve_rest(spec, lock, base, python, parent_lock, py_future, installer_future,
                      settings=settings, log=log, indexes=indexes)
    if parent:
        lock["parent"] = parent
    canonical.canonical_json(lock)  # refuses floats early
    return lock


def _python_packages(requirements: list[str], python: str, *, settings: BuilderSettings, prefs: Any, log: Log,
                     indexes: list[Any] | None) -> list[dict[str, Any]]:
    if indexes:
        from . import indexes as _indexes

        _indexes.check_reachable(indexes, settings=settings, log=log)
    return uv_compile(requirements, python_version=python, settings=settings, preferences=prefs, log=log,
                      indexes=indexes)


def _resolve_rest(spec: dict[str, Any], lock: dict[str, Any], base: dict[str, Any], python: str | None,
                  parent_lock: dict[str, Any] | None, py_future: Future | None,
                  installer_future: Future | None, *, settings: BuilderSettings, log: Log,
                  indexes: list[Any] | None) -> None:
    r_names = list((spec.get("r") or {}).get("packages", []))
    r_source: dict[str, Any] = {"packages": [], "debian": []}
    if spec.get("r"):
        from . import rlock  # R beyond Debian: CRAN-like repositories (rlock.py)

        r_names, r_source = rlock.plan(spec["r"], base, settings=settings, log=log)
    apt = list(spec.get("apt", []))
    if apt or r_names or r_source["packages"]:
        r_map = {f"r-cran-{n.lower()}": n for n in r_names}
        log(f"resolving {len(apt)} apt and {len(r_names)} R packages in the base image")
        apt_pkgs, all_pkgs = _apt_resolve(base, apt, r_map, settings=settings, log=log,
                                          extra=tuple(r_source.get("extra_debs", ())))
        if apt:
            lock["apt"] = apt_pkgs
        if r_names:
            versions = {p["name"]: p["version"] for p in all_pkgs}
            r_entries = []
            for deb, name in r_map.items():
                if deb not in versions:
                    raise BuildError(f"R package {name!r} ({deb}) is already in the base image or could not "
                                     "be resolved")
                r_entries.append({"name": name, "deb": deb, "version": versions[deb]})
            in_apt = {p["name"] for p in apt_pkgs}
            r_debs_set = {e["deb"] for e in r_entries}
            lock["r"] = sorted(r_entries, key=lambda e: e["name"])
            lock["r_system"] = [p for p in all_pkgs if p["name"] not in in_apt and p["name"] not in r_debs_set]
        if r_source["packages"]:
            in_apt = {p["name"] for p in apt_pkgs}
            lock["r_system"] = [p for p in all_pkgs if p["name"] not in in_apt
                                and p["name"] not in {f"r-cran-{n.lower()}" for n in r_names}]
            lock["r_source"] = r_source["packages"]

    if py_future is not None:
        packages = py_future.result()
        installer = installer_future.result() if installer_future is not None else \
            (parent_lock or {}).get("python", {}).get("installer")
        lock["python"] = {"version": python, "installer": installer, "packages": packages}
        if indexes:
            from . import indexes as _indexes

            lock["python"]["indexes"] = _indexes.lock_entry(indexes)
        log(f"locked {len(packages)} python packages")

    for key in ("datasets", "files", "entrypoint", "repository", "build_steps", "start"):
        if spec.get(key):
            lock[key] = spec[key]
    if spec.get("build_steps"):
        lock["reproducibility"] = reproducibility(spec["build_steps"])


def reproducibility(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The lock's statement that its image is not guaranteed bit-reproducible, with the reasons.

    Only a lock with build steps carries it (absent means: the same lock gives the same digest). A
    step runs whatever the repository says (``postBuild`` may download, stamp dates, pick random
    names), so two builds of the lock may differ; the lock still pins everything else."""
    return {"bit_reproducible": False,
            "reasons": [f"build_steps[{i}] runs arbitrary commands as {step.get('user', 'student')}: "
                        f"{_short(step['run'], 200)}" for i, step in enumerate(steps)]}


def _installer(python: str, *, settings: BuilderSettings, log: Log, wheelcache: Any) -> dict[str, str]:
    """Pin the wheel that installs the lock's wheels inside the build: uv, the release the builder itself
    resolves with (its binary runs from the unpacked wheel in the build step and is gone after it).

    uv unpacks and links wheels several times faster than pip (the scientific bench set: about 5 s
    against 20 s inside a build). Locks made before it name pip, and their rebuilds still use pip."""
    from importlib.metadata import version as _version

    pins = uv_compile([f"uv=={_version('uv')}"], python_version=python, settings=settings, log=log)
    uv = next(p for p in pins if p["name"] == "uv")
    files = wheelcache.fetch([uv], python_version=python, settings=settings, log=log)
    path = files["uv"]
    return {"name": "uv", "version": uv["version"], "filename": path.name,
            "sha256": "sha256:" + path.parent.name}
