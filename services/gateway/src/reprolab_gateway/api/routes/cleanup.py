"""Clean-up: deleting what a workspace no longer needs (the registry decides what may go; see
``reprolab_registry.cleanup``). The gateway removes stored bytes nothing else refers to."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Path, Response
from reprolab_common.objectstore import ObjectNotFound

from ...schemas import DIGEST_PATTERN
from ..deps import RegistryDep, StoreDep
from ..params import WsPath

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
