"""Host paths out of the text a person reads: build logs, build and run errors.

A build or run error is read by students; the builder's and runner's host (its data directory, caches,
scratch and temporary directories, container storage) is none of their business and helps an attacker
map it. Each service names its own places; container storage and tools' temporary directories are
recognised by their shape. Paths inside an image (``/tmp/reprolab-agent``, ``/work``) are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SHAPES = (
    (re.compile(r"(?:/var/lib|/run|/home/[^/\s]+/\.local/share|/root/\.local/share)/containers(?:/[^\s'\":]*)?"),
     "<containers>"),
    (re.compile(r"/(?:var/)?tmp/(?:reprolab-(?!agent)|tmp|pytest-of-|buildah|podman)[^\s'\":]*"), "<tmp>"),
)


@dataclass(frozen=True)
class HostPaths:
    """Replaces each known place (longest first) by its neutral name, then the recognised shapes."""

    replacements: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, places: dict[Path | None, str]) -> HostPaths:
        pairs: dict[str, str] = {}
        for path, name in places.items():
            if path is None:
                continue
            for form in {str(path), str(path.resolve())}:
                if form.startswith("/") and len(form) > 1:  # a relative form would match inside other paths
                    pairs.setdefault(form.rstrip("/"), name)
        return cls(tuple(sorted(pairs.items(), key=lambda kv: -len(kv[0]))))

    def plus(self, more: dict[str, str]) -> HostPaths:
        """These replacements and ``more`` (literal text → name)."""
        return HostPaths(tuple(sorted((*self.replacements, *more.items()), key=lambda kv: -len(kv[0]))))

    def __call__(self, text: str) -> str:
        for found, name in self.replacements:
            text = text.replace(found, name)
        for pattern, name in _SHAPES:
            text = pattern.sub(name, text)
        return text
