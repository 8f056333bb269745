"""One interface for every way of turning a rendered build context into a pushed image."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LogSink = Callable[[str], None]
"""Receives build output line by line (streamed to the LOGS stream and the build's log)."""


class BuildError(Exception):
    """A build failed for a reason a person can act on (bad package, missing base, registry down)."""


@dataclass(frozen=True)
class BuildResult:
    image_ref: str      # "<registry>/<workspace>/<env>:v<N>" as pushed
    digest: str         # the manifest digest in the registry, "sha256:<hex>"
    # what is in the image, listed by its build's last step (one-layer locks; sbom.InventoryLines)
    inventory: dict[str, list[dict[str, str]]] | None = None


class BuildBackend(ABC):
    """Builds ``context/Containerfile`` and pushes it to ``image_ref``; returns the registry digest.

    Implementations must build reproducibly (fixed timestamps, no identity label) and must not
    report success unless the push completed: nothing half-pushed is ever recorded.
    """

    name: str

    @abstractmethod
    def build_and_push(self, context: Path, image_ref: str, *, log: LogSink,
                       build_volumes: dict[str, Path] | None = None, one_layer: bool = False) -> BuildResult:
        """``build_volumes`` maps a path inside the build (e.g. ``/wheels``) to a host directory
        mounted read-only during RUN steps and never written into a layer.

        ``one_layer`` (locks whose ``build.layers`` is ``"one"``): everything the Containerfile adds
        over its FROM image goes into one layer. A backend that cannot build so says what it does
        instead in its own documentation; the lock's digest label names the build either way."""


_BACKENDS: dict[str, type[BuildBackend]] = {}


def register(name: str) -> Callable[[type[BuildBackend]], type[BuildBackend]]:
    def deco(cls: type[BuildBackend]) -> type[BuildBackend]:
        cls.name = name
        _BACKENDS[name] = cls
        return cls

    return deco


def backend_class(name: str) -> type[BuildBackend]:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown build backend {name!r}; choose one of {sorted(_BACKENDS)}") from None
