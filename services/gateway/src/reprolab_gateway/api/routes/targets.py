"""Where runs can go: the targets this platform's runner has enabled, so forms offer only those."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..deps import RunnerDep

router = APIRouter(prefix="/targets", tags=["runs"])


class Target(BaseModel):
    name: str = Field(description="local, kubernetes, aws, azure or openstack.")
    needs_credentials: bool = Field(description="Runs there use your own credentials (PUT /me/credentials/...).")


class TargetList(BaseModel):
    items: list[Target]


@router.get("", response_model=TargetList)
async def list_targets(runner: RunnerDep) -> TargetList:
    """The targets runs may use on this platform, in the operator's order (the first is the usual one)."""
    reply = await runner.targets()
    return TargetList(items=[Target(name=t.name, needs_credentials=t.needs_credentials) for t in reply.items])
