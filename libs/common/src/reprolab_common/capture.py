"""Turning what was installed in a container into a derived spec: shared by ``reprolab env capture`` (the
CLI, a container the user runs) and the gateway's ``POST .../sessions/{id}/capture`` (a JupyterLab session
the runner runs).

Both read the same document, the in-image agent's ``reprolab env capture --json`` (format
``reprolab-capture/1``: ``changes`` per kind, ``added``/``removed``/``changed``, against the baseline the
build recorded); only how it is fetched differs (``podman exec`` there, the runner's engine API here). The
spec logic lives here once so a package saved from the portal and one saved with the CLI give the same spec.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

FORMAT = "reprolab-capture/1"
MAX_CAPTURE_BYTES = 4 << 20

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_KINDS = ("python", "apt", "r")
_PARTS = ("added", "removed", "changed")


class CaptureError(ValueError):
    """The agent's output is not a capture document this code understands."""


def norm(name: str) -> str:
    """PEP 503 normalised name (``Foo_Bar`` and ``foo-bar`` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_capture(raw: str | bytes) -> dict[str, Any]:
    """The agent's JSON, checked for the shape ``derive_spec`` relies on (a session's container is the
    student's: what it prints is input, not trusted structure)."""
    if len(raw) > MAX_CAPTURE_BYTES:
        raise CaptureError(f"the capture is larger than {MAX_CAPTURE_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise CaptureError(f"the agent's capture is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("changes"), dict):
        raise CaptureError("the agent's capture has no 'changes' object")
    for kind, parts in doc["changes"].items():
        if kind not in _KINDS or not isinstance(parts, dict):
            raise CaptureError(f"the agent's capture has an unknown change kind {kind!r}")
        for part, entries in parts.items():
            if part not in _PARTS or not isinstance(entries, dict):
                raise CaptureError(f"the agent's capture has an unknown {kind} change {part!r}")
            for name, value in entries.items():
                ok = (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
                      if part == "changed" else isinstance(value, str))
                if not isinstance(name, str) or not ok:
                    raise CaptureError(f"the agent's capture has a malformed {kind} entry {str(name)[:80]!r}")
    doc["changes"] = {k: v for k, v in doc["changes"].items() if v}
    return doc


def derive_spec(spec: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the captured changes: python pins replaced/added/dropped, apt and R names added/dropped."""
    out = copy.deepcopy(spec)
    py = changes.get("python") or {}
    if py:
        section = out.setdefault("python", {})
        reqs = list(section.get("requirements", []))
        touched = {norm(n) for part in _PARTS for n in py.get(part, {})}

        def name_of(req: str) -> str:
            m = _NAME.match(req)
            return norm(m.group(1)) if m else ""

        reqs = [r for r in reqs if name_of(r) not in touched]
        reqs += [f"{n}=={v}" for n, v in sorted(py.get("added", {}).items())]
        reqs += [f"{n}=={v[1]}" for n, v in sorted(py.get("changed", {}).items())]
        section["requirements"] = reqs
    apt = changes.get("apt") or {}
    if apt:
        names = set(out.get("apt", [])) - set(apt.get("removed", {}))
        out["apt"] = sorted(names | set(apt.get("added", {})) | set(apt.get("changed", {})))
    r = changes.get("r") or {}
    if r:
        section = out.setdefault("r", {})
        names = set(section.get("packages", [])) - set(r.get("removed", {}))
        section["packages"] = sorted(names | set(r.get("added", {})) | set(r.get("changed", {})))
    return out


def change_lines(changes: dict[str, Any]) -> list[str]:
    """One line per change: ``+ python idna 3.7``, ``- apt curl 7.88``, ``~ python six 1.16.0 -> 1.17.0``."""
    lines = []
    for kind, d in sorted(changes.items()):
        lines += [f"+ {kind} {n} {v}" for n, v in sorted(d.get("added", {}).items())]
        lines += [f"- {kind} {n} {v}" for n, v in sorted(d.get("removed", {}).items())]
        lines += [f"~ {kind} {n} {v[0]} -> {v[1]}" for n, v in sorted(d.get("changed", {}).items())]
    return lines
