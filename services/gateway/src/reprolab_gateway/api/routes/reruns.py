"""Run again: an earlier run's code, command or notebook, datasets, target and limits, in the same or a
chosen version of its environment, with whatever the caller changes ("edit and re-run")."""

from __future__ import annotations

from fastapi import APIRouter
from reprolab.v1 import runner_pb2

from ...schemas import Run, RunAgain, RunCreate, RunResourcesIn
from ..deps import RegistryDep, RunnerDep, StoreDep
from .runs import _visible_run, start_run

router = APIRouter(tags=["runs"])


def _memory(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return f"{-(-n // 1024)}Ki"


def _resources(earlier: runner_pb2.Run) -> RunResourcesIn:
    r = earlier.resources
    return RunResourcesIn(cpu=f"{r.cpu_millis}m", memory=_memory(r.memory_bytes), pids=r.pids,
                          timeout=r.timeout_seconds)


def again(earlier: runner_pb2.Run, change: RunAgain) -> tuple[RunCreate, runner_pb2.CodeSource | None]:
    """The earlier run with ``change`` applied, and the earlier code's origin when its code is kept."""
    new_code = change.code is not None or change.git is not None
    notebook = change.notebook if change.notebook is not None else (
        "" if change.command is not None else earlier.source.notebook)
    command = change.command if change.command is not None else ([] if notebook else list(earlier.command))
    body = RunCreate(
        environment=earlier.environment,
        version=earlier.version if change.version is None else change.version,
        code=change.code or ("" if new_code else earlier.code_digest), git=change.git,
        command=command, notebook=notebook,
        datasets=change.datasets if change.datasets is not None else [d.digest for d in earlier.datasets],
        target=change.target or earlier.target,
        resources=change.resources or _resources(earlier),
        network=earlier.network if change.network is None else change.network,
        assignment=earlier.assignment,
    )
    kept = earlier.source if not new_code and earlier.source.git_commit else None
    return body, kept


@router.post("/runs/{run_id}/rerun", status_code=202, response_model=Run,
             responses={409: {"description": "The chosen version has no image yet: build it first."},
                        422: {"description": "A change is invalid (unknown code, dataset or version, a Git URL "
                                             "the platform cannot fetch, a target not enabled)."}})
async def rerun(run_id: str, change: RunAgain, registry: RegistryDep, runner: RunnerDep,
                    store: StoreDep) -> Run:
    """A new run from an earlier one you can see, in its workspace: the same code (a Git run's pinned
    commit, not the branch's newest), command or notebook, datasets, target and limits, in the same
    environment version unless ``version`` names another (0: the latest). Any field given replaces the
    earlier run's. The earlier run is untouched; an assignment's run is a new submission."""
    earlier = await _visible_run(run_id, runner, registry)
    body, kept = again(earlier, change)
    return await start_run(earlier.workspace, body, registry, runner, store, source=kept)
