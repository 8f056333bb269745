"""Assignments: an instructor's evaluation (code + hidden labels) and the leaderboard of scored runs."""

from __future__ import annotations

from fastapi import APIRouter
from reprolab.v1 import registry_pb2

from ...schemas import Assignment, AssignmentCreate, AssignmentList, Leaderboard
from ..deps import RegistryDep, StoreDep
from ..params import AssignmentPath, WsPath
from .runs import find_code

router = APIRouter(prefix="/workspaces/{ws}/assignments", tags=["assignments"])


@router.post("", status_code=201, response_model=Assignment,
             responses={422: {"description": "The evaluation code, environment version or labels dataset does not "
                                             "exist, the labels are public, or the body is invalid."}})
async def create_assignment(ws: WsPath, body: AssignmentCreate, registry: RegistryDep, store: StoreDep) -> Assignment:
    """Instructors and admins. ``evaluation_code`` is an archive uploaded to .../code whose ``command``
    reads the student's predictions at /inputs/<predictions> and the hidden ``labels`` at /data/labels,
    and writes /outputs/score.json ``{"score": <number>}``; it runs without network in the image of
    ``environment`` v``version``."""
    await registry.get_workspace(ws)  # members only, before looking at the store
    key = await find_code(ws, body.evaluation_code, store, loc="body.evaluation_code")
    made = await registry.create_assignment(registry_pb2.CreateAssignmentRequest(
        workspace=ws, name=body.name, title=body.title, environment=body.environment, version=body.version,
        evaluation_code_digest=body.evaluation_code, evaluation_code_key=key, labels=body.labels,
        predictions=body.predictions, metric=body.metric, higher_is_better=body.higher_is_better,
        command=body.command))
    return Assignment.of(made)


@router.get("", response_model=AssignmentList)
async def list_assignments(ws: WsPath, registry: RegistryDep) -> AssignmentList:
    return AssignmentList(items=[Assignment.of(a) for a in (await registry.list_assignments(ws)).items])


@router.get("/{name}", response_model=Assignment)
async def get_assignment(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Assignment:
    """Students see what to write (``predictions``) and how it is ranked, never the labels."""
    return Assignment.of(await registry.get_assignment(ws, name))


@router.get("/{name}/leaderboard", response_model=Leaderboard)
async def leaderboard(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Leaderboard:
    """Each member's best score (by the metric's direction), best first; equal scores rank earlier first."""
    return Leaderboard.of(await registry.leaderboard(ws, name))
