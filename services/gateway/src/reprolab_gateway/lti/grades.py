"""Grades to the LMS (Assignment and Grade Services): each assignment is a line item (found by its
resourceId, created when missing); a student's best score is posted as their grade. Every post is
tried ``grade_attempts`` times, its outcome kept per (course, assignment, student) with the last error,
and recorded as ``lti.grade_posted`` or ``lti.grade_failed``.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clients import RegistryClient
from ..models import User
from . import audit
from .keys import tool_key
from .models import LtiContext, LtiGrade, LtiLineItem, LtiMember, LtiPlatform
from .services import LtiServices, ServiceFailed

SCORE_MAXIMUM = 1.0
SENT, FAILED = "sent", "failed"


def services_of(app: FastAPI) -> LtiServices:
    services = getattr(app.state, "lti_services", None)
    if services is None:
        lti = app.state.settings.lti
        services = app.state.lti_services = LtiServices(timeout=lti.http_timeout_seconds)
    return services


async def line_item(db: Session, app: FastAPI, context: LtiContext, platform: LtiPlatform, assignment: str) -> str:
    row = db.scalar(select(LtiLineItem).where(LtiLineItem.context_pk == context.id,
                                              LtiLineItem.assignment == assignment))
    if row is not None:
        return row.url
    if not context.lineitems_url:
        raise ServiceFailed("the LMS gave this course no line items URL (grade passback is not enabled for the tool)")
    url = await services_of(app).find_or_create_line_item(
        platform, tool_key(db), context.lineitems_url, resource_id=assignment, label=assignment,
        score_maximum=SCORE_MAXIMUM)
    db.add(LtiLineItem(context_pk=context.id, assignment=assignment, url=url))
    db.commit()
    return url


def _score(text: str) -> float:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ServiceFailed(f"score {text!r} is not a number", retry=False) from exc
    if not value.is_finite() or value < 0 or value > Decimal(str(SCORE_MAXIMUM)):
        raise ServiceFailed(f"score {text} is outside 0..{SCORE_MAXIMUM:g}, the grade scale posted to the LMS",
                            retry=False)
    return float(value)


def split_comment(split: str) -> str:
    """What the posted score is, for the LMS's gradebook: the leaderboard's score is the public split's
    until the assignment's due date and the private (final) split's from then on; only the latter says so
    (an assignment without a due date or a split posts as before)."""
    return ("After the due date: the score on the private test split (the only score when the evaluation "
            "has no private split)" if split == "private" else "")


async def post_grade(db: Session, app: FastAPI, context: LtiContext, *, assignment: str, user: User,
                     subject: str, score: str, comment: str = "") -> LtiGrade:
    """Post one student's grade, retrying; the outcome is kept and logged either way."""
    platform = db.get(LtiPlatform, context.platform_id)
    assert platform is not None
    attempts = app.state.settings.lti.grade_attempts
    error = ""
    tried = 0
    for tried in range(1, attempts + 1):
        try:
            value = _score(score)
            url = await line_item(db, app, context, platform, assignment)
            await services_of(app).post_score(platform, tool_key(db), url, user_sub=subject, score=value,
                                              score_maximum=SCORE_MAXIMUM, comment=comment)
            error = ""
            break
        except ServiceFailed as exc:
            error = str(exc)[:500]
            if not exc.retry:
                break
            if exc.status == 401:
                services_of(app).forget(platform)  # an expired or revoked token: ask for a new one
            await asyncio.sleep(0.2 * tried)
    row = db.scalar(select(LtiGrade).where(LtiGrade.context_pk == context.id, LtiGrade.assignment == assignment,
                                           LtiGrade.user_id == user.id))
    if row is None:
        row = LtiGrade(context_pk=context.id, assignment=assignment, user_id=user.id, username=user.username,
                       score=0.0, status=FAILED, attempts=0)
        db.add(row)
    try:
        row.score = float(Decimal(score))
    except InvalidOperation:
        row.score = 0.0
    row.status = FAILED if error else SENT
    row.attempts = tried
    row.last_error = error
    row.updated_at = datetime.now(UTC)
    audit.record(db, app, type="grade_failed" if error else "grade_posted",
                 subject=f"assignments/{assignment}/grades/{user.id}", workspace=context.workspace,
                 context_id=context.context_id, lms_subject=subject, username=user.username, assignment=assignment,
                 score=score, outcome=FAILED if error else SENT, reason=error, count=tried)
    return row


async def send_grades(db: Session, app: FastAPI, context: LtiContext, assignment: str) -> list[LtiGrade]:
    """The batch "send grades": every LMS student's best score on ``assignment`` (from the leaderboard: the
    private split's after the due date, the public split's before; the comment says which)."""
    registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, app.state.settings.nats_timeout_seconds)
    board = await registry.leaderboard(context.workspace, assignment)
    members = {m.user_id: m for m in db.scalars(select(LtiMember).where(LtiMember.context_pk == context.id))}
    users = {u.username: u for u in db.scalars(select(User).where(User.id.in_(list(members))))}
    out = []
    for row in board.rows:
        user = users.get(row.username)
        if user is None:
            continue  # not someone the LMS knows in this course
        out.append(await post_grade(db, app, context, assignment=assignment, user=user,
                                    subject=members[user.id].subject, score=row.score,
                                    comment=split_comment(board.split)))
    return out


def list_grades(db: Session, context: LtiContext, assignment: str = "") -> list[LtiGrade]:
    query = select(LtiGrade).where(LtiGrade.context_pk == context.id)
    if assignment:
        query = query.where(LtiGrade.assignment == assignment)
    return list(db.scalars(query.order_by(LtiGrade.assignment, LtiGrade.username)))


async def grades_csv(db: Session, app: FastAPI, context: LtiContext) -> str:
    """The fallback when the LMS takes no grades from tools: every assignment's best scores, one row per LMS
    student, with the LMS's user id to import by and what was sent."""
    registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, app.state.settings.nats_timeout_seconds)
    members = {m.user_id: m for m in db.scalars(select(LtiMember).where(LtiMember.context_pk == context.id))}
    users = {u.username: u for u in db.scalars(select(User).where(User.id.in_(list(members))))}
    sent = {(g.assignment, g.user_id): g for g in list_grades(db, context)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["assignment", "username", "name", "lms_user_id", "best_score", "lms_status"])
    for assignment in (await registry.list_assignments(context.workspace)).items:
        board = await registry.leaderboard(context.workspace, assignment.name)
        for row in board.rows:
            user = users.get(row.username)
            if user is None:
                continue
            grade = sent.get((assignment.name, user.id))
            writer.writerow([assignment.name, user.username, user.display_name, members[user.id].subject, row.score,
                             grade.status if grade is not None else "not sent"])
    return out.getvalue()
