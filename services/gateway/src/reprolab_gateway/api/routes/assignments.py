"""Assignments: an instructor's evaluation (code + hidden labels), how the course runs it (instructions,
starter code, dates, late policy, limits, public/private split, anonymity), the leaderboard, re-scoring,
the gradebook and feedback."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse
from reprolab.v1 import registry_pb2
from reprolab_common.errors import NotFound, ProblemError
from reprolab_common.objectstore import ObjectNotFound

from ...coursework import (
    EvaluationUpdate,
    FeedbackCreate,
    FeedbackOut,
    Gradebook,
    Rescoring,
    gradebook_csv,
    update_request,
)
from ...schemas import Assignment, AssignmentCreate, AssignmentList, AssignmentSettings, Leaderboard
from ..deps import RegistryDep, RunnerDep, StoreDep
from ..params import AssignmentPath, WsPath
from .runs import _evaluation, find_code

router = APIRouter(prefix="/workspaces/{ws}/assignments", tags=["assignments"])

RunIdPath = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="A run id (the submission).")]


async def _starter_key(ws: str, body: AssignmentSettings, store: StoreDep) -> str:
    if "starter_code" in body.model_fields_set and body.starter_code:
        return await find_code(ws, body.starter_code, store, loc="body.starter_code")
    return ""


@router.post("", status_code=201, response_model=Assignment,
             responses={422: {"description": "The evaluation code, environment version or labels dataset does not "
                                             "exist, the labels are public, or the body is invalid."}})
async def create_assignment(ws: WsPath, body: AssignmentCreate, registry: RegistryDep, store: StoreDep) -> Assignment:
    """Instructors and admins. ``evaluation_code`` is an archive uploaded to .../code whose ``command``
    reads the student's predictions at /inputs/<predictions> and the hidden ``labels`` at /data/labels,
    and writes /outputs/score.json ``{"score": <number>}`` (the public split's score) and optionally
    ``"private": <number>`` (the private split's, shown from the due date on); it runs without network
    in the image of ``environment`` v``version``. The course settings (instructions, dates, ...) may be
    given here or later with PATCH."""
    await registry.get_workspace(ws)  # members only, before looking at the store
    key = await find_code(ws, body.evaluation_code, store, loc="body.evaluation_code")
    starter = await _starter_key(ws, body, store)
    made = await registry.create_assignment(registry_pb2.CreateAssignmentRequest(
        workspace=ws, name=body.name, title=body.title or "", environment=body.environment, version=body.version,
        evaluation_code_digest=body.evaluation_code, evaluation_code_key=key, labels=body.labels,
        predictions=body.predictions, metric=body.metric, higher_is_better=body.higher_is_better,
        command=body.command))
    update = update_request(ws, body.name, body, starter)
    if update.fields:
        made = (await registry.update_assignment(update)).assignment
    return Assignment.of(made)


@router.get("", response_model=AssignmentList)
async def list_assignments(ws: WsPath, registry: RegistryDep) -> AssignmentList:
    return AssignmentList(items=[Assignment.of(a) for a in (await registry.list_assignments(ws)).items])


@router.get("/{name}", response_model=Assignment)
async def get_assignment(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Assignment:
    """Students see what to write (``predictions``), the instructions and dates, and how it is ranked,
    never the labels."""
    return Assignment.of(await registry.get_assignment(ws, name))


@router.patch("/{name}", response_model=Assignment,
              responses={422: {"description": "A setting is invalid (the due date before the opening, ...)."}})
async def update_assignment(ws: WsPath, name: AssignmentPath, body: AssignmentSettings, registry: RegistryDep,
                            store: StoreDep) -> Assignment:
    """Instructors and admins change how the course runs it; only the fields sent change."""
    await registry.get_workspace(ws)
    starter = await _starter_key(ws, body, store)
    return Assignment.of((await registry.update_assignment(update_request(ws, name, body, starter))).assignment)


@router.put("/{name}/evaluation", response_model=Rescoring,
            responses={422: {"description": "The evaluation code archive is unknown in this workspace, or the "
                                            "command is invalid."}})
async def new_evaluation(ws: WsPath, name: AssignmentPath, body: EvaluationUpdate, registry: RegistryDep,
                         runner: RunnerDep, store: StoreDep) -> Rescoring:
    """Instructors and admins upload a new evaluation: its revision goes up and each student's best and
    last scored submission is scored again with it. Earlier scores are kept (the gradebook shows the
    revision a score comes from); new submissions are scored with the new evaluation."""
    await registry.get_workspace(ws)
    key = await find_code(ws, body.evaluation_code, store, loc="body.evaluation_code")
    targets = await registry.update_assignment(registry_pb2.UpdateAssignmentRequest(
        workspace=ws, name=name, fields=["evaluation"], evaluation_code_digest=body.evaluation_code,
        evaluation_code_key=key, command=body.command))
    started, skipped = [], {}
    # the evaluation as the runner gets it (its environment must be built) only when there is a run to score
    evaluation = (await _evaluation(registry, ws, name))[1] if targets.run_ids else None
    for run_id in targets.run_ids:
        try:
            await runner.rescore(run_id, evaluation)
            started.append(run_id)
        except ProblemError as exc:
            if exc.status >= 500:
                raise
            skipped[run_id] = exc.detail
    return Rescoring(assignment=Assignment.of(targets.assignment), rescoring=started, skipped=skipped)


@router.get("/{name}/starter", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The starter code archive"},
                       404: {"description": "The assignment has no starter code."}})
async def starter_code(ws: WsPath, name: AssignmentPath, registry: RegistryDep, store: StoreDep) -> StreamingResponse:
    """Every member downloads the starter code; its digest also works as a run's ``code``."""
    a = await registry.get_assignment(ws, name)
    if not a.starter_code_digest:
        raise NotFound(f"assignment {name!r} has no starter code")
    key = await find_code(ws, a.starter_code_digest, store)
    try:
        chunks = await asyncio.to_thread(store.open_chunks, key)
    except ObjectNotFound as exc:
        raise NotFound(f"the starter code of assignment {name!r} is gone from the store") from exc
    suffix = ".zip" if key.endswith(".zip") else ".tar.gz"
    return StreamingResponse(chunks, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}-starter{suffix}"', "X-Content-Type-Options": "nosniff"})


@router.get("/{name}/leaderboard", response_model=Leaderboard)
async def leaderboard(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Leaderboard:
    """Each student's best score, best first (equal scores rank earlier first): the public split's until the
    due date, the private split's from then on. On an anonymous board students see pseudonyms (their own
    row marked ``you``)."""
    return Leaderboard.of(await registry.leaderboard(ws, name))


@router.get("/{name}/gradebook", response_model=Gradebook)
async def gradebook(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Gradebook:
    """Instructors and admins: every student's counted submission (best or last), scores, time, late flag,
    penalty and feedback. A student: their own row, without the private score before the due date."""
    return Gradebook.of(await registry.gradebook(ws, name))


@router.get("/{name}/gradebook.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The gradebook, one row per student"}})
async def gradebook_export(ws: WsPath, name: AssignmentPath, registry: RegistryDep) -> Response:
    """The gradebook as CSV (the same rows and scores as the JSON; a student gets their own row)."""
    book = Gradebook.of(await registry.gradebook(ws, name))
    return Response(gradebook_csv(book), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{ws}-{name}-gradebook.csv"'})


@router.post("/{name}/submissions/{run_id}/feedback", status_code=201, response_model=FeedbackOut,
             responses={404: {"description": "No scored submission with that run id in this assignment."}})
async def give_feedback(ws: WsPath, name: AssignmentPath, run_id: RunIdPath, body: FeedbackCreate,
                        registry: RegistryDep) -> FeedbackOut:
    """Instructors and admins write feedback on a submission; only its student reads it (in their
    gradebook row)."""
    return FeedbackOut.of(await registry.give_feedback(ws, name, run_id, body.text))
