"""Datasets: streamed, content-addressed uploads and downloads."""

import asyncio
import re
from typing import Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from reprolab_common.errors import ProblemError
from reprolab_common.objectstore import ObjectNotFound

from ... import flows
from ...schemas import DATASET_NAME_PATTERN, DIGEST_PATTERN, Dataset, DatasetList
from ..deps import RegistryDep, RunnerDep, SettingsDep, StoreDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces/{ws}/datasets", tags=["datasets"])

DigestPath = Path(pattern=DIGEST_PATTERN, description="sha256:<64 hex digits>")
_SAFE_FILENAME = re.compile(DATASET_NAME_PATTERN)


@router.post(
    "",
    status_code=201,
    response_model=Dataset,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                                "minLength": 1}}},
        }
    },
    responses={409: {"description": "Another dataset has this name, or the upload would go beyond the "
                                    "workspace's storage quota (the problem says what is used and allowed; nothing "
                                    "is stored)."},
               413: {"description": "The upload is larger than REPROLAB_GATEWAY_MAX_UPLOAD_BYTES"},
               422: {"description": "The body is empty, or a query parameter is invalid."}},
)
async def upload_dataset(
    ws: WsPath,
    request: Request,
    registry: RegistryDep,
    runner: RunnerDep,
    store: StoreDep,
    settings: SettingsDep,
    name: str = Query(pattern=DATASET_NAME_PATTERN, description="Dataset name (letters, digits, . _ -)."),
    visibility: Literal["public", "hidden"] = Query(
        default="hidden",
        description="public: students may see and download it; hidden (the default, so a forgotten "
        "flag never shows evaluation data to students): instructors and admins only.",
    ),
) -> Dataset:
    """Upload the raw request body as a dataset (admins and instructors). Identical bytes get the
    same digest and are stored once per workspace."""
    dataset = await flows.upload_dataset(
        request,
        workspace=ws,
        name=name,
        visibility=visibility,
        registry=registry,
        store=store,
        settings=settings,
        runner=runner,
    )
    return Dataset.of(dataset)


@router.get("", response_model=DatasetList)
async def list_datasets(ws: WsPath, registry: RegistryDep) -> DatasetList:
    """Datasets the caller may see (students: public ones)."""
    reply = await registry.list_datasets(ws)
    return DatasetList(items=[Dataset.of(d) for d in reply.items])


@router.get("/{digest}", response_model=Dataset)
async def get_dataset(ws: WsPath, registry: RegistryDep, digest: str = DigestPath) -> Dataset:
    return Dataset.of(await registry.get_dataset(ws, digest))


@router.get(
    "/{digest}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The dataset's bytes"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    },
)
async def download_dataset(
    ws: WsPath, request: Request, registry: RegistryDep, store: StoreDep, digest: str = DigestPath
) -> Response:
    """The dataset's bytes, streamed. The ETag is the digest, so caches never need to revalidate twice."""
    dataset = await registry.get_dataset(ws, digest, for_download=True)
    etag = f'"{dataset.digest}"'
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    try:
        size = await asyncio.to_thread(store.size, dataset.object_key)
        chunks = await asyncio.to_thread(store.open_chunks, dataset.object_key)
    except (ObjectNotFound, ValueError) as exc:
        raise ProblemError(
            f"the content of dataset {digest} is missing from the object store; an operator must restore it",
            status=500,
            title="Internal Server Error",
        ) from exc
    # Always an attachment, never sniffed: an uploaded HTML file must not run as a page of this origin.
    filename = dataset.name if _SAFE_FILENAME.match(dataset.name) else "dataset"
    headers = {
        "ETag": etag,
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(
        chunks, media_type=dataset.media_type or "application/octet-stream", headers=headers
    )
