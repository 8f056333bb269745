"""Liveness and readiness probes (outside /api/v1, where orchestrators look for them)."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from reprolab_common.nats import ping
from reprolab_common.subjects import ServiceName

from ...core.problems import problem_response
from ...schemas import Health, Ready
from ..deps import NatsDep

router = APIRouter(prefix="", tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (says nothing about its peers)."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Ready, responses={503: {"description": "Something the gateway needs is down"}}
)
async def readyz(link: NatsDep) -> Ready | JSONResponse:
    """Ready when NATS is connected and the registry, audit, builder and runner services answer PING."""
    checks: dict[str, bool] = {"nats": link.connected}
    services = list(ServiceName)
    if link.connected:
        nc = link.client
        answers = await asyncio.gather(*(ping(nc, s.value) for s in services))
    else:
        answers = [False] * len(services)
    checks.update({s.value: ok for s, ok in zip(services, answers, strict=True)})
    if all(checks.values()):
        return Ready(status="ready", checks=checks)
    failed = [name for name, ok in checks.items() if not ok]
    return problem_response(
        503,
        f"not ready: {', '.join(failed)} not answering; try again shortly",
        title="Service Unavailable",
        checks=checks,
    )
