"""Assignments as courses run them: dates and a late policy, a daily submission limit, a public and a
private test split, anonymous leaderboards, re-scoring with a new evaluation, the gradebook and
instructor feedback (issue 17).

Plain functions on a session, like ``service``. The registry's clock decides what is late and
whether the private split is revealed: students never get a private score before the due date,
from any function here (the runner's run records carry the public score only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from reprolab.v1 import common_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound, ProblemError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Assignment, Feedback, Score, Submission, now
from .service import Access, _get_assignment, _text, access, parse_score
from .spec import check_digest, invalid

LATE_POLICIES = ("none", "penalty", "refuse")
GRADE_BY = ("best", "last")
MAX_INSTRUCTIONS = 20000
MAX_FEEDBACK = 5000
MAX_DAILY_LIMIT = 1000


class TooManySubmissions(ProblemError):
    status = 429
    title = "Too Many Submissions"


def past_due(a: Assignment, at: datetime | None = None) -> bool:
    return a.due_at is not None and (at or now()) >= a.due_at


def is_late(a: Assignment, submitted_at: datetime | None) -> bool:
    return a.due_at is not None and submitted_at is not None and submitted_at > a.due_at


def penalty_of(a: Assignment, late: bool) -> int:
    return a.late_penalty if late and a.late_policy == "penalty" else 0


def adjusted(a: Assignment, raw: str, penalty: int) -> Decimal:
    """The score counted: a late penalty of p % takes p % off a higher-is-better score and adds p % to a
    lower-is-better one (an error metric), so a penalty always makes the score worse."""
    value = parse_score(raw)
    if not penalty:
        return value
    factor = Decimal(100 - penalty if a.higher_is_better else 100 + penalty) / 100
    return value * factor


def counted_text(a: Assignment, raw: str, penalty: int) -> str:
    """The counted score as text: the evaluation's own text when no penalty applies."""
    return raw if not penalty else _text_of(adjusted(a, raw, penalty))


def _text_of(value: Decimal) -> str:
    # normalized without exponent noise: 0.9000 * 0.9 -> "0.81"
    text = format(value.normalize(), "f")
    return text if len(text) <= 64 else format(value, ".12g")


def pseudonym(a: Assignment, user_id: str) -> str:
    """A stable name for a student on an anonymous leaderboard: the same for one assignment, unrelated
    across assignments (it hashes the assignment's identity with the user id)."""
    seed = f"{a.workspace_id}:{a.id}:{a.created_at.isoformat()}:{a.created_by_id}:{user_id}"
    return "student-" + hashlib.sha256(seed.encode()).hexdigest()[:6]


# --- settings --------------------------------------------------------------------------------

SETTINGS = ("title", "instructions", "starter_code", "opens_at", "due_at", "late_policy", "late_penalty_percent",
            "daily_limit", "anonymous", "grade_by", "evaluation")


@dataclass
class Update:
    fields: set[str]
    title: str = ""
    instructions: str = ""
    starter_digest: str = ""
    starter_key: str = ""
    opens_at: datetime | None = None
    due_at: datetime | None = None
    late_policy: str = "none"
    late_penalty: int = 0
    daily_limit: int = 0
    anonymous: bool = False
    grade_by: str = "best"
    code_digest: str = ""
    code_key: str = ""
    command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Updated:
    assignment: Assignment
    # Re-scoring: the runs a new evaluation scores again (empty without one).
    rescore: list[str]


def update_assignment(*, session: Session, actor: common_pb2.Actor, workspace: str, name: str,
                      change: Update) -> Updated:
    """Change an assignment's course settings (instructors and admins); a new evaluation bumps the
    revision and names the runs to re-score: each student's best and last scored submission."""
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(f"changing assignments in workspace {workspace!r} requires the instructor or admin role")
    a = _get_assignment(session, acc, name)
    unknown = change.fields - set(SETTINGS)
    if unknown:
        raise invalid([("fields", f"unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")], "request")
    f = change.fields
    if "title" in f:
        a.title = _text(change.title, "title", limit=200) or a.name
    if "instructions" in f:
        # a browser's textarea sends CRLF line ends
        a.instructions = _text(change.instructions.replace("\r\n", "\n"), "instructions", limit=MAX_INSTRUCTIONS)
    if "starter_code" in f:
        if change.starter_digest:
            check_digest(change.starter_digest, "starter_code")
        a.starter_digest, a.starter_key = change.starter_digest, change.starter_key if change.starter_digest else ""
    if "opens_at" in f:
        a.opens_at = change.opens_at
    if "due_at" in f:
        a.due_at = change.due_at
    if "late_policy" in f:
        if change.late_policy not in LATE_POLICIES:
            raise invalid([("late_policy", f"{change.late_policy!r}: choose one of {', '.join(LATE_POLICIES)}")],
                          "request")
        a.late_policy = change.late_policy
    if "late_penalty_percent" in f:
        if not 0 <= change.late_penalty <= 100:
            raise invalid([("late_penalty_percent", "must be between 0 and 100")], "request")
        a.late_penalty = change.late_penalty
    if "daily_limit" in f:
        if not 0 <= change.daily_limit <= MAX_DAILY_LIMIT:
            raise invalid([("daily_limit", f"must be between 0 (no limit) and {MAX_DAILY_LIMIT}")], "request")
        a.daily_limit = change.daily_limit
    if "anonymous" in f:
        a.anonymous = change.anonymous
    if "grade_by" in f:
        if change.grade_by not in GRADE_BY:
            raise invalid([("grade_by", f"{change.grade_by!r}: choose best or last")], "request")
        a.grade_by = change.grade_by
    if a.opens_at is not None and a.due_at is not None and a.opens_at >= a.due_at:
        raise invalid([("due_at", "the due date must come after the opening date")], "request")
    rescore: list[str] = []
    if "evaluation" in f:
        check_digest(change.code_digest, "evaluation_code")
        a.code_digest, a.code_key = change.code_digest, change.code_key
        if change.command:
            if len(change.command) > 64 or any(len(c) > 1000 for c in change.command):
                raise invalid([("command", "at most 64 arguments of 1000 characters")], "request")
            a.command_json = json.dumps(change.command)
        a.revision += 1
        scores = _latest_scores(session, a)
        for user_runs in _by_user(scores).values():
            for pick in (_best(a, user_runs, reveal=True), _last(user_runs)):
                if pick.run_id not in rescore:
                    rescore.append(pick.run_id)
    session.flush()
    return Updated(assignment=a, rescore=rescore)


# --- submissions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    late: bool
    penalty: int
    remaining: int  # -1: no limit


def _utc_day_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


def admit(*, session: Session, actor: common_pb2.Actor, workspace: str, assignment: str,
          at: datetime | None = None) -> Admission:
    """Admit a student's submission now, or refuse it: not open yet (409), closed by a refuse policy
    after the due date (409), or over the daily limit (429, saying when the next slot opens).
    Admitted submissions are counted here, per student and UTC day, under a row lock of the
    assignment so two submissions at once cannot both take the last slot. Instructors and admins
    are neither limited nor counted (they try their own assignment)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    a = session.scalar(select(Assignment).where(Assignment.workspace_id == acc.workspace.id,
                                                Assignment.name == assignment).with_for_update(of=Assignment))
    if a is None:
        raise NotFound(f"assignment {assignment!r} not found in workspace {workspace!r}")
    at = at or now()
    if acc.can_manage:
        return Admission(late=False, penalty=0, remaining=-1)
    if a.opens_at is not None and at < a.opens_at:
        raise Conflict(f"assignment {assignment!r} opens at {a.opens_at.isoformat()}; submit from then on")
    late = is_late(a, at)
    if late and a.late_policy == "refuse":
        raise Conflict(f"assignment {assignment!r} was due at {a.due_at.isoformat()} and takes no late "  # type: ignore[union-attr]
                       "submissions")
    remaining = -1
    if a.daily_limit:
        start = _utc_day_start(at)
        used = session.scalar(select(func.count(Submission.id)).where(
            Submission.assignment_id == a.id, Submission.user_id == actor.user_id,
            Submission.submitted_at >= start)) or 0
        if used >= a.daily_limit:
            opens = start + timedelta(days=1)
            raise TooManySubmissions(
                f"you have used all {a.daily_limit} submissions of assignment {assignment!r} for today (UTC); "
                f"the next one opens at {opens.isoformat()}")
        remaining = a.daily_limit - used - 1
    session.add(Submission(assignment_id=a.id, user_id=actor.user_id, submitted_at=at, late=late))
    session.flush()
    return Admission(late=late, penalty=penalty_of(a, late), remaining=remaining)


# --- scores ----------------------------------------------------------------------------------


def record_score(*, session: Session, workspace: str, assignment: str, run_id: str, user_id: str, username: str,
                 score: str, scored_at: datetime | None = None, private_score: str = "", revision: int = 0,
                 submitted_at: datetime | None = None) -> Score:
    """Record a run's score for one evaluation revision (called by the runner). Idempotent per run and
    revision; a different score for a run and revision that has one is refused (never rewritten)."""
    from .models import Workspace  # noqa: PLC0415 - the join's other table

    row = session.scalar(select(Assignment).join(Workspace, Assignment.workspace_id == Workspace.id)
                         .where(Workspace.slug == workspace, Assignment.name == assignment))
    if row is None:
        raise NotFound(f"assignment {assignment!r} not found in workspace {workspace!r}")
    if not run_id or not user_id:
        raise invalid([("run_id", "run_id and user_id are required")], "request")
    parse_score(score)
    if private_score:
        parse_score(private_score)
    revision = revision or 1
    existing = session.scalar(select(Score).where(Score.run_id == run_id, Score.revision == revision))
    if existing is not None:
        if (existing.score != score.strip() or existing.assignment_id != row.id
                or existing.private_score != private_score.strip()):
            raise Conflict(f"run {run_id} already has score {existing.score} for evaluation revision {revision}; "
                           "scores are never rewritten")
        return existing
    if submitted_at is None:  # a re-scoring keeps the submission's time
        submitted_at = session.scalar(select(Score.submitted_at).where(Score.run_id == run_id)
                                      .order_by(Score.revision))
    rec = Score(assignment_id=row.id, run_id=run_id, user_id=user_id, username=username or user_id,
                score=score.strip(), private_score=private_score.strip(), revision=revision,
                submitted_at=submitted_at, scored_at=scored_at or now())
    session.add(rec)
    session.flush()
    return rec


def _latest_scores(session: Session, a: Assignment) -> list[Score]:
    """Each run's score of its latest evaluation revision."""
    latest: dict[str, Score] = {}
    for s in session.scalars(select(Score).where(Score.assignment_id == a.id).order_by(Score.revision)):
        latest[s.run_id] = s
    return list(latest.values())


def _by_user(scores: list[Score]) -> dict[str, list[Score]]:
    out: dict[str, list[Score]] = {}
    for s in scores:
        out.setdefault(s.user_id, []).append(s)
    return out


def _when(s: Score) -> datetime:
    return s.submitted_at or s.scored_at


def _split_score(s: Score, reveal: bool) -> str:
    return s.private_score if reveal and s.private_score else s.score


def _counted(a: Assignment, s: Score, reveal: bool) -> Decimal:
    return adjusted(a, _split_score(s, reveal), penalty_of(a, is_late(a, _when(s))))


def _best(a: Assignment, runs: list[Score], reveal: bool) -> Score:
    sign = 1 if a.higher_is_better else -1
    return min(runs, key=lambda s: (-sign * _counted(a, s, reveal), _when(s), s.run_id))


def _last(runs: list[Score]) -> Score:
    return max(runs, key=lambda s: (_when(s), s.run_id))


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    username: str
    score: str
    run_id: str
    scored_at: datetime
    you: bool
    late: bool


@dataclass(frozen=True)
class Board:
    workspace: str
    assignment: Assignment
    rows: list[LeaderRow]
    split: str


def leaderboard(*, session: Session, actor: common_pb2.Actor, workspace: str, assignment: str) -> Board:
    """Each student's best counted score, best first (equal scores: earlier first). Until the due date it
    ranks by the public split, from then on by the private one (Kaggle's way; a run whose evaluation
    wrote no private score keeps its public one). On an anonymous board students see pseudonyms and
    no run ids but their own; instructors see names."""
    acc = access(session=session, actor=actor, workspace=workspace)
    a = _get_assignment(session, acc, assignment)
    reveal = past_due(a)
    bests = [_best(a, runs, reveal) for runs in _by_user(_latest_scores(session, a)).values()]
    sign = 1 if a.higher_is_better else -1
    bests.sort(key=lambda s: (-sign * _counted(a, s, reveal), _when(s), s.run_id))
    hide = a.anonymous and not acc.can_manage
    rows = []
    for i, s in enumerate(bests, 1):
        mine = s.user_id == actor.user_id
        rows.append(LeaderRow(
            rank=i, username=pseudonym(a, s.user_id) if hide else s.username,
            score=counted_text(a, _split_score(s, reveal), penalty_of(a, is_late(a, _when(s)))),
            run_id=s.run_id if (mine or not hide) else "",
            scored_at=s.scored_at, you=mine, late=is_late(a, _when(s))))
    return Board(workspace=workspace, assignment=a, rows=rows, split="private" if reveal else "public")


# --- gradebook and feedback ------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackItem:
    run_id: str
    text: str
    author: str
    created_at: datetime


@dataclass(frozen=True)
class GradeRow:
    user_id: str
    username: str
    run_id: str
    submitted_at: datetime
    late: bool
    penalty: int
    public_score: str
    private_score: str
    final_score: str
    submissions: int
    revision: int
    feedback: list[FeedbackItem]


@dataclass(frozen=True)
class Book:
    workspace: str
    assignment: Assignment
    rows: list[GradeRow]


def gradebook(*, session: Session, actor: common_pb2.Actor, workspace: str, assignment: str) -> Book:
    """Per student the counted submission (best or last, the instructor's choice) with its public and
    private score, time, late flag and penalty, and the feedback on their submissions. Instructors and
    admins get every student's row; a student only their own, without the private score before the
    due date."""
    acc = access(session=session, actor=actor, workspace=workspace)
    a = _get_assignment(session, acc, assignment)
    reveal = past_due(a)
    counts = dict(session.execute(select(Submission.user_id, func.count(Submission.id))
                                  .where(Submission.assignment_id == a.id).group_by(Submission.user_id)).all())
    notes: dict[str, list[FeedbackItem]] = {}
    for fb in session.scalars(select(Feedback).where(Feedback.assignment_id == a.id).order_by(Feedback.created_at)):
        notes.setdefault(fb.user_id, []).append(FeedbackItem(fb.run_id, fb.text, fb.author, fb.created_at))
    rows = []
    for user_id, runs in sorted(_by_user(_latest_scores(session, a)).items(), key=lambda kv: kv[1][0].username):
        if not acc.can_manage and user_id != actor.user_id:
            continue
        s = _best(a, runs, reveal) if a.grade_by == "best" else _last(runs)
        late = is_late(a, _when(s))
        penalty = penalty_of(a, late)
        rows.append(GradeRow(
            user_id=user_id, username=s.username, run_id=s.run_id, submitted_at=_when(s), late=late,
            penalty=penalty, public_score=s.score, private_score=s.private_score if reveal or acc.can_manage else "",
            final_score=counted_text(a, _split_score(s, reveal), penalty),
            submissions=max(int(counts.get(user_id, 0)), len(runs)), revision=s.revision,
            feedback=notes.get(user_id, [])))
    return Book(workspace=workspace, assignment=a, rows=rows)


def give_feedback(*, session: Session, actor: common_pb2.Actor, workspace: str, assignment: str, run_id: str,
                  text: str) -> FeedbackItem:
    """An instructor's feedback on a scored submission; only its student (and managers) read it."""
    acc: Access = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(f"feedback in workspace {workspace!r} requires the instructor or admin role")
    a = _get_assignment(session, acc, assignment)
    text = _text(text.replace("\r\n", "\n"), "text", limit=MAX_FEEDBACK, required=True)
    score = session.scalar(select(Score).where(Score.assignment_id == a.id, Score.run_id == run_id))
    if score is None:
        raise NotFound(f"no scored submission {run_id!r} of assignment {assignment!r}")
    fb = Feedback(assignment_id=a.id, run_id=run_id, user_id=score.user_id, text=text,
                  author=actor.username or actor.user_id, created_at=now())
    session.add(fb)
    session.flush()
    return FeedbackItem(fb.run_id, fb.text, fb.author, fb.created_at)
