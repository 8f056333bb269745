"""Workspace quotas at the gateway (issue 17 item 4): the storage check, which needs both of its parts (the
registry's datasets and the runner's run outputs), and the Retry-After of a run or session refused by the
runner's concurrent quota (a problem crossing NATS carries no headers)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from reprolab.v1 import runner_pb2
from reprolab_common.errors import Conflict, ProblemError

from .clients import RegistryClient, RunnerClient

T = TypeVar("T")
RETRY_AFTER_SECONDS = 30
"""What a 429 of the concurrent quota says to wait: runs and sessions end at unknown times; a poll's worth."""


class OverStorage(Conflict):
    title = "Storage quota reached"


def size_text(n: int) -> str:
    """1536 → '1.5 KiB': what people read in a refusal."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


async def usage(workspace: str, registry: RegistryClient, runner: RunnerClient
                ) -> tuple[runner_pb2.QuotaUsage, int]:
    """(the runner's usage and limits, the workspace's dataset bytes); 404 for non-members (the registry)."""
    datasets = await registry.list_datasets(workspace)
    return await runner.get_quota(workspace), datasets.total_bytes


async def check_storage(workspace: str, registry: RegistryClient, runner: RunnerClient, *, adding: int,
                        what: str) -> None:
    """Refuse (409) ``adding`` more bytes beyond the workspace's storage quota; with ``adding`` 0 (a run, whose
    outputs will be kept), refuse once the workspace is at or over it. The caller has checked membership."""
    u = await runner.get_quota(workspace)
    limit = u.quota.max_storage_bytes
    if not limit:  # the common case: every run and upload passes here, the dataset listing is not needed
        return
    dataset_bytes = (await registry.list_datasets(workspace)).total_bytes
    used = dataset_bytes + u.output_bytes
    if used + adding > limit or (adding == 0 and used >= limit):
        adds = f"; {what} adds {size_text(adding)}" if adding else ""
        raise OverStorage(
            f"workspace {workspace!r} keeps {size_text(used)} of its {size_text(limit)} storage quota (datasets "
            f"{size_text(dataset_bytes)}, run outputs {size_text(u.output_bytes)}){adds}; nothing was stored or "
            f"started. Delete datasets or finished runs you no longer need, or ask an instructor to raise the "
            "quota", errors=[("storage", f"used {used} of {limit} bytes")])


async def retry_later(call: Awaitable[T]) -> T:
    """``call``, with Retry-After on a 429 (the runner's concurrent quota)."""
    try:
        return await call
    except ProblemError as exc:
        if exc.status == 429:
            exc.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        raise
