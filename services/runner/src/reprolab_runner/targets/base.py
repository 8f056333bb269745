"""One interface for every place a run can happen: local containers, Kubernetes, cloud VMs.

A target receives a fully resolved ``RunRequest`` (pinned image, code archive, datasets, command,
limits) and must run the student's code sandboxed: no network unless asked, a non-root user,
a read-only root filesystem with a writable tmpfs, every capability dropped, no new privileges,
CPU/memory/pids limits and a timeout. Outputs come back as files in a directory.

Inputs and outputs travel as local paths (``local``) or presigned URLs (Kubernetes and cloud VMs,
whose shared run agent fetches and uploads them), so a target never needs the platform's
object-store credentials.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

LABEL = "org.reprolab.run-id"
"""Label/tag on every container, Job and VM a target creates: the reconciler finds them by it."""

INSTALLATION_LABEL = "org.reprolab.installation"
"""Which Reprolab installation created it: a reconciler only ever removes its own installation's
leftovers, so two platforms sharing one engine (or cloud account) never remove each other's runs."""


OUTPUT_NAMES = ("status.json", "stdout.log", "stderr.log", "metrics.json", "outputs.tar.gz")
"""What a remote run uploads (the run agent of a VM; a Kubernetes pod uploads status.json and
outputs.tar.gz). ``status.json`` goes last: its presence means the run is over."""


def transfer_key(run_id: str, name: str = "") -> str:
    """Object-store key of what a remote run uploads: its transfer area, apart from
    ``runs/<id>/outputs/`` where the runner keeps the outputs it collected (so removing the
    transfer area never removes a kept output)."""
    return f"runs/{run_id}/transfer/{name}"


class TargetError(Exception):
    """A run could not be started or finished for a reason a person can act on (bad credentials,
    quota exceeded, image not found, instance failed)."""


class State(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    EXITED = "exited"      # finished; see exit_code
    FAILED = "failed"      # the target itself failed (not the student's code); see reason
    GONE = "gone"          # nothing by that handle any more


@dataclass(frozen=True)
class Limits:
    cpu_millis: int = 1000
    memory_bytes: int = 1 << 30
    pids: int = 256
    timeout_seconds: int = 600
    network: bool = False


@dataclass(frozen=True)
class Input:
    """A file the run reads: ``path`` on this machine or ``url`` (presigned GET), placed at ``mount``."""

    mount: str
    path: Path | None = None
    url: str | None = None
    sha256: str = ""


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    image: str                      # <ref>@sha256:...
    command: list[str]
    code: Input                     # tar.gz or zip, unpacked into /work
    datasets: list[Input] = field(default_factory=list)  # read-only under /data
    limits: Limits = field(default_factory=Limits)
    # Remote targets: one presigned PUT URL per output name (``OUTPUT_NAMES``), pointing at the run's
    # transfer area (``transfer_key``); the local target ignores them and collect()s to a directory.
    output_urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    state: State
    exit_code: int | None = None
    reason: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Owned:
    """Something a target created for a run, as the reconciler sees it."""

    run_id: str
    handle: str


class Target(ABC):
    """``submit`` returns a handle; the runner polls ``status``, streams ``logs``, then ``collect``s
    the outputs and ``cleanup``s. Every method but ``submit`` must be safe to call again after a
    runner restart with only the handle (the runner stores it before waiting)."""

    name: str
    remote: bool = False
    """True for targets that run elsewhere: inputs go as presigned GET URLs, outputs come back
    through ``RunRequest.output_urls`` into the run's transfer area."""

    @abstractmethod
    def submit(self, request: RunRequest) -> str: ...

    @abstractmethod
    def status(self, handle: str) -> Status: ...

    @abstractmethod
    def logs(self, handle: str) -> Iterator[str]:
        """Lines of stdout/stderr so far (from the start); may follow while it runs."""

    @abstractmethod
    def cancel(self, handle: str) -> None: ...

    @abstractmethod
    def collect(self, handle: str, dest: Path) -> None:
        """Copy the run's outputs (``/outputs`` in the container) into ``dest``."""

    @abstractmethod
    def cleanup(self, handle: str) -> None:
        """Remove everything created for the run; idempotent."""

    @abstractmethod
    def owned(self) -> list[Owned]:
        """Everything this target created that still exists (containers, Jobs, VMs by label)."""


_TARGETS: dict[str, type[Target]] = {}


def register(name: str) -> Callable[[type[Target]], type[Target]]:
    def deco(cls: type[Target]) -> type[Target]:
        cls.name = name
        _TARGETS[name] = cls
        return cls

    return deco


def target_class(name: str) -> type[Target]:
    try:
        return _TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown run target {name!r}; choose one of {sorted(_TARGETS)}") from None
