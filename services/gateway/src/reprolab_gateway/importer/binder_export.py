"""A built version as a Binder-ready folder, so nobody is locked in: repo2docker (or mybinder.org)
builds the same packages from it without Reprolab.

The configuration comes from the *lock*, not the spec, so it names exact versions: ``requirements.txt``
pins every package with its sha256 hashes (pip then runs in hash-checking mode), ``apt.txt`` pins
``name=version`` (repo2docker passes the lines to ``apt-get install``), ``runtime.txt`` names the
Python. An imported repository's own files come along; its configuration files are replaced.
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from typing import Any

from .renv import renv_lock
from .tree import RepoTree

# Files that would change what repo2docker detects: dropped from the repository's copy.
CONFIG_FILES = ("requirements.txt", "requirements3.txt", "environment.yml", "environment.yaml", "Pipfile",
                "Pipfile.lock", "apt.txt", "runtime.txt", "install.R", "Dockerfile", "default.nix",
                "Project.toml", "JuliaProject.toml", "REQUIRE", "setup.py", "pyproject.toml", "DESCRIPTION")
PLATFORM_FILES = "/opt/reprolab/files"


def _requirements(lock: dict[str, Any]) -> str:
    lines = []
    for p in sorted((lock.get("python") or {}).get("packages", []), key=lambda p: p["name"]):
        hashes = " ".join(f"\\\n    --hash={h}" for h in p["hashes"])
        lines.append(f"{p['name']}=={p['version']} {hashes}".rstrip())
    return "\n".join(lines) + "\n" if lines else ""


def binder_folder(lock: dict[str, Any], *, environment: str, version: int,
                  repository: RepoTree | None = None) -> dict[str, str | bytes]:
    """Path → content of the folder: the repository's files (if any) plus ``binder/`` (or the
    repository's own ``.binder/``) holding the configuration made from ``lock``."""
    out: dict[str, str | bytes] = {}
    config = repository.binder_dir if repository is not None and repository.binder_dir else "binder"
    if repository is not None:
        for path, data in repository.files.items():
            folder, _, name = path.rpartition("/")
            if name in CONFIG_FILES and folder == config:  # root ones are ignored once binder/ exists
                continue
            out[path] = data
    notes = [f"Exported by Reprolab from {environment} v{version} (lock {lock.get('format')}).",
             "Packages are pinned to the versions Reprolab locked; pip checks every hash."]
    requirements = _requirements(lock)
    if requirements:
        out[f"{config}/requirements.txt"] = requirements
    py = (lock.get("python") or {}).get("version") or lock.get("base", {}).get("python")
    if py:
        out[f"{config}/runtime.txt"] = f"python-{py}\n"
    apt = [*lock.get("apt", []), *lock.get("r_system", []),
           *({"name": r["deb"], "version": r["version"]} for r in lock.get("r", []))]
    if apt:
        pins = sorted(apt, key=lambda p: p["name"])
        out[f"{config}/apt.txt"] = "".join(f"{p['name']}={p['version']}\n" for p in pins)
    if lock.get("r_source"):
        # packages from a CRAN-like repository, which apt.txt cannot name: renv restores them (renv::restore())
        # and Reprolab imports the file back to the same lock (importer/renv.py)
        out[f"{config}/renv.lock"] = json.dumps(renv_lock(lock), indent=2) + "\n"
        notes.append("R packages from a CRAN-like repository are in renv.lock (exact versions; renv::restore())")
    steps = lock.get("build_steps", [])
    files = lock.get("files", [])
    if steps:
        script = ["#!/bin/bash", "# Reprolab's build steps, in order, from the repository's folder",
                  "set -euo pipefail"]
        for i, step in enumerate(steps):
            if step.get("user") == "root":
                notes.append(f"build step {i} ran as root in Reprolab; here it runs as the user (mybinder.org's "
                             "postBuild has no root)")
            script.append(f"( cd \"${{REPO_DIR:-$HOME}}\" && {step['run']} )")
        existing = f"{config}/postBuild"
        if existing in out:  # the repository's own postBuild is one of the steps: keep it beside ours
            out[f"{config}/postBuild.repository"] = out.pop(existing)
            script = [line.replace(existing, f"{existing}.repository") for line in script]
        out[f"{config}/postBuild"] = "\n".join(script) + "\n"
    if files:
        notes.append(f"the spec's files are under reprolab-files/ (Reprolab puts them in {PLATFORM_FILES})")
        for f in files:
            out[f"reprolab-files/{f['path']}"] = f["content"]
    if lock.get("datasets"):
        notes.append("datasets are not included: download them from the workspace "
                     + ", ".join(f"{d['digest']} → {d['mount']}" for d in lock["datasets"]))
    if lock.get("entrypoint"):
        notes.append("entrypoint (run it yourself): " + " ".join(shlex.quote(a) for a in lock["entrypoint"]))
    out["REPROLAB-EXPORT.txt"] = "\n".join(notes) + "\n"
    return dict(sorted(out.items()))


EXECUTABLE_NAMES = ("postBuild", "postBuild.repository", "start", "verify")


def zip_folder(files: dict[str, str | bytes], executable: frozenset[str] = frozenset()) -> bytes:
    """A zip with fixed times and modes (0755 for scripts), so the same folder gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if path in executable or path.rpartition("/")[2] in EXECUTABLE_NAMES else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data.encode() if isinstance(data, str) else data)
    return out.getvalue()
