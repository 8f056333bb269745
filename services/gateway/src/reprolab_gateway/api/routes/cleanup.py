"""Clean-up: archiving and deleting what a workspace no longer needs (the registry decides what may go; see
``reprolab_registry.cleanup``). The gateway removes stored bytes nothing else refers to, and tells the
registry which runs used an environment (runs live in the runner)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Path, Response
from reprolab_common.objectstore import ObjectNotFound

from ...schemas import DIGEST_PATTERN, Environment
from ..deps import RegistryDep, RunnerDep, StoreDep
from ..params import EnvPath, WsPath
from .runs import MANAGERS, _visible_run

router = APIRouter(tags=["clean-up"])
log = logging.getLogger(__name__)


@router.delete("/workspaces/{ws}/datasets/{digest}", status_code=204, response_class=Response,
               responses={403: {"description": "Deleting datasets needs the instructor or admin role."},
                          404: {"description": "No such dataset in the workspace."},
                          409: {"description": "A version or assignment uses the dataset; the detail names them."}})
async def delete_dataset(ws: WsPath, registry: RegistryDep, store: StoreDep,
                         digest: str = Path(pattern=DIGEST_PATTERN, description="sha256:<64 hex digits>")) -> Response:
    """Delete a dataset no version or assignment uses (instructors and admins). Its bytes are freed when no
    other workspace holds the same file. The activity log keeps the upload and records the deletion; runs
    that used it keep its digest in their provenance."""
    deletion = await registry.delete_dataset(ws, digest)
    if deletion.object_unreferenced:
        try:
            await asyncio.to_thread(store.delete, deletion.dataset.object_key)
        except ObjectNotFound:
            pass  # already gone (a retried deletion)
        except Exception:  # noqa: BLE001 (any store: local, S3) the record is gone either way; an orphan object is an operator's sweep, not a 500
            log.warning("could not remove the bytes of deleted dataset %s", digest, exc_info=True)
    return Response(status_code=204)


_CHANGE = {403: {"description": "Only instructors and admins (a student: their own fork) may do this."},
           404: {"description": "No such environment visible to you."}}


@router.post("/workspaces/{ws}/environments/{env}/archive", response_model=Environment, responses=_CHANGE)
async def archive_environment(ws: WsPath, env: EnvPath, registry: RegistryDep) -> Environment:
    """Archive an environment: it leaves lists and run forms, every version still pulls, runs again and
    forks; no new versions until restored. Archiving twice changes nothing."""
    return Environment.of(await registry.archive_environment(ws, env, True))


@router.post("/workspaces/{ws}/environments/{env}/restore", response_model=Environment, responses=_CHANGE)
async def restore_environment(ws: WsPath, env: EnvPath, registry: RegistryDep) -> Environment:
    """Restore an archived environment to lists and run forms."""
    return Environment.of(await registry.archive_environment(ws, env, False))


@router.delete("/workspaces/{ws}/environments/{env}", status_code=204, response_class=Response,
               responses={**_CHANGE, 409: {"description": "An assignment, a fork or a run still uses it; the "
                                                          "detail names them and suggests archiving."}})
async def delete_environment(ws: WsPath, env: EnvPath, registry: RegistryDep, runner: RunnerDep) -> Response:
    """Delete an environment and all its versions when nothing uses it: no assignment runs in it, no
    environment was forked from it, no run used it (409 naming them otherwise; archive it instead)."""
    workspace = await registry.get_workspace(ws)
    runs = [r for r in (await runner.list(ws, own_only=False)).items if r.environment == env]
    if workspace.caller_role in MANAGERS:
        named = [r.id for r in runs]
    else:  # a student deleting their fork learns the ids of their own runs only
        mine = [r.id for r in runs if r.requested_by == runner.actor.username]
        named = mine + ([f"{len(runs) - len(mine)} by others"] if len(runs) > len(mine) else [])
    await registry.delete_environment(ws, env, named)
    return Response(status_code=204)


@router.delete("/runs/{run_id}", status_code=204, response_class=Response,
               responses={404: {"description": "No such run visible to you (only its owner and instructors see it)."},
                          409: {"description": "The run is still going (cancel it first) or is an assignment's "
                                             "submission (the gradebook keeps it)."}})
async def delete_run(run_id: str, runner: RunnerDep, registry: RegistryDep, store: StoreDep) -> Response:
    """Delete a finished run: its record, outputs and log (its owner, instructors and admins). The activity
    log keeps its entries and adds ``run.deleted``."""
    await _visible_run(run_id, runner, registry)
    removed = await runner.delete(run_id)
    for f in removed.files:
        try:
            await asyncio.to_thread(store.delete, f.object_key)
        except ObjectNotFound:
            pass
        except Exception:  # noqa: BLE001 the record is gone either way; an orphan object is an operator's sweep
            log.warning("could not remove output %s of deleted run %s", f.name, run_id, exc_info=True)
    return Response(status_code=204)
