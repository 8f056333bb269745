"""``renv.lock`` in and out: R version, repositories and packages ↔ the spec's ``r`` section.

In: every package becomes an exact request (``name==version``) from the lock's one repository; the
builder takes it from Debian's ``r-cran-*`` when Debian has that version, otherwise from the
repository, and checks ``r.version`` against the base's R. A package renv took from GitHub,
Bioconductor or elsewhere, or from a second repository, is named, never dropped.
Out: a built version's lock as ``renv.lock``; importing it again gives the same lock.
"""

from __future__ import annotations

import json
import re
from typing import Any

# renv's Source for packages installed from a CRAN-like repository ("CRAN" in old renv versions)
REPOSITORY_SOURCES = {"Repository", "CRAN"}
DEFAULT_REPOSITORY = "https://cloud.r-project.org"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$")
_VERSION = re.compile(r"^[0-9]+(?:[.-][0-9]+)+$")


def _upstream(deb_version: str) -> str:
    """Debian's ``1:1.8.4+dfsg-1`` → the R package version ``1.8.4``."""
    v = deb_version.split(":", 1)[-1]
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    return re.split(r"[+~]", v, maxsplit=1)[0]


def r_section(text: str, path: str = "renv.lock") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(the spec's ``r`` section, problems as (file, reason)) from an ``renv.lock``'s text."""
    problems: list[tuple[str, str]] = []
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return {}, [(path, f"is not JSON: {exc}")]
    if not isinstance(doc, dict):
        return {}, [(path, "is not a JSON object with R and Packages")]
    r = doc.get("R") if isinstance(doc.get("R"), dict) else {}
    repos = {str(x.get("Name")): str(x.get("URL", "")).rstrip("/")
             for x in r.get("Repositories", []) if isinstance(x, dict)}
    section: dict[str, Any] = {}
    version = r.get("Version")
    if isinstance(version, str) and re.fullmatch(r"\d+\.\d+(?:\.\d+)?", version):
        section["version"] = version
    elif version is not None:
        problems.append((path, f"R.Version {version!r} is not an R version like '4.2.2'"))
    used: set[str] = set()
    packages: list[str] = []
    for key, pkg in sorted((doc.get("Packages") or {}).items()):
        if not isinstance(pkg, dict):
            problems.append((path, f"Packages.{key} is not an object"))
            continue
        name, ver, source = pkg.get("Package", key), pkg.get("Version"), pkg.get("Source", "Repository")
        if source not in REPOSITORY_SOURCES:
            where = pkg.get("RemoteRepo") or pkg.get("RemoteUrl") or ""
            problems.append((path, f"R package {name!r} comes from {source}{' (' + where + ')' if where else ''}: "
                                   "only packages from a CRAN-like repository can be locked; install it from "
                                   "one or remove it"))
            continue
        if not (isinstance(name, str) and _NAME.match(name) and isinstance(ver, str) and _VERSION.match(ver)):
            problems.append((path, f"Packages.{key}: {name!r} {ver!r} is not an R package name and version"))
            continue
        repo_name = pkg.get("Repository") or "CRAN"
        url = repos.get(repo_name) or (DEFAULT_REPOSITORY if repo_name == "CRAN" else None)
        if url is None:
            problems.append((path, f"R package {name!r} names repository {repo_name!r}, which R.Repositories "
                                   "does not list"))
            continue
        used.add(url)
        packages.append(f"{name}=={ver}")
    if len(used) > 1:
        problems.append((path, f"packages come from {len(used)} repositories ({', '.join(sorted(used))}); "
                               "an environment takes R packages from one repository"))
    if used:
        section["repository"] = next(iter(sorted(used)))
    if packages:
        section["packages"] = packages
    return section, problems


def renv_lock(lock: dict[str, Any]) -> dict[str, Any]:
    """An environment's lock as an ``renv.lock`` document (no packages and no R version when it has no R)."""
    r_base = next((p["version"] for p in lock.get("r_system", []) + lock.get("apt", [])
                   if p["name"] == "r-base-core"), None)
    source = lock.get("r_source", [])
    debian = lock.get("r", [])
    repository = source[0]["repository"] if source else DEFAULT_REPOSITORY
    packages: dict[str, dict[str, Any]] = {}
    for p in debian:
        packages[p["name"]] = {"Package": p["name"], "Version": _upstream(p["version"]), "Source": "Repository",
                               "Repository": "CRAN"}
    for p in source:
        packages[p["name"]] = {"Package": p["name"], "Version": p["version"], "Source": "Repository",
                               "Repository": "CRAN", "Requirements": p.get("depends", [])}
    doc: dict[str, Any] = {"R": {"Repositories": [{"Name": "CRAN", "URL": repository}]},
                           "Packages": dict(sorted(packages.items()))}
    if r_base:
        doc["R"] = {"Version": ".".join(_upstream(r_base).split(".")[:3]), **doc["R"]}
    return doc
