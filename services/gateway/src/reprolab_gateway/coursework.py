"""Assignments as courses run them, on the gateway's side: instructions rendered from Markdown, the
settings an instructor changes, the gradebook (JSON and CSV) and feedback (issue 17)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from functools import lru_cache

from markdown_it import MarkdownIt
from pydantic import BaseModel, Field
from reprolab.v1 import registry_pb2

from .core.problems import pattern
from .schemas import Assignment, AssignmentSettings, _In, ts

SETTING_FIELDS = {"title": "title", "instructions": "instructions", "starter_code": "starter_code",
                  "opens_at": "opens_at", "due_at": "due_at", "late_policy": "late_policy",
                  "late_penalty_percent": "late_penalty_percent", "daily_limit": "daily_limit",
                  "anonymous": "anonymous", "grade_by": "grade_by"}


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # CommonMark with raw HTML off: a <script> or <img onerror> in the instructions is shown as text.
    # markdown-it's own link check refuses javascript:, vbscript:, file: and data: (but images) URLs.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"])


def render_markdown(text: str) -> str:
    return _renderer().render(text) if text.strip() else ""


def update_request(ws: str, name: str, body: AssignmentSettings,
                   starter_key: str = "") -> registry_pb2.UpdateAssignmentRequest:
    """The registry request for the settings the body sent (``model_fields_set``: null clears a date)."""
    sent = body.model_fields_set & set(SETTING_FIELDS)
    r = registry_pb2.UpdateAssignmentRequest(workspace=ws, name=name, fields=sorted(sent))
    if "title" in sent:
        r.title = body.title or ""
    if "instructions" in sent:
        r.instructions = body.instructions or ""
    if "starter_code" in sent:
        r.starter_code_digest, r.starter_code_key = body.starter_code or "", starter_key
    for key in ("opens_at", "due_at"):
        value: datetime | None = getattr(body, key)
        if key in sent and value is not None:
            getattr(r, key).FromDatetime(value)
    if body.late_policy is not None:
        r.late_policy = body.late_policy
    if body.late_penalty_percent is not None:
        r.late_penalty_percent = body.late_penalty_percent
    if body.daily_limit is not None:
        r.daily_limit = body.daily_limit
    if body.anonymous is not None:
        r.anonymous = body.anonymous
    if body.grade_by is not None:
        r.grade_by = body.grade_by
    # a null for a setting that cannot be cleared is "leave it"
    for key in ("late_policy", "late_penalty_percent", "daily_limit", "anonymous", "grade_by", "title",
                "instructions"):
        if key in sent and getattr(body, key) is None:
            r.fields.remove(key)
    return r


class EvaluationUpdate(_In):
    evaluation_code: str = Field(pattern=r"^sha256:[0-9a-f]{64}$",
                                 description="Digest of the new evaluation archive uploaded to .../code.")
    command: list[str] = Field(default_factory=list, max_length=64,
                               description="Empty: the evaluation's current command.")


class Rescoring(BaseModel):
    assignment: Assignment
    rescoring: list[str] = Field(description="Runs being scored again with the new evaluation.")
    skipped: dict[str, str] = Field(default_factory=dict, description="Runs not re-scored, and why.")


class FeedbackCreate(_In):
    text: str = Field(min_length=1, max_length=5000, pattern=pattern(
        r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$", "contains control characters"))


class FeedbackOut(BaseModel):
    run_id: str
    text: str
    author: str
    created_at: datetime | None

    @classmethod
    def of(cls, f: registry_pb2.Feedback) -> FeedbackOut:
        return cls(run_id=f.run_id, text=f.text, author=f.author, created_at=ts(f.created_at))


class GradebookRow(BaseModel):
    username: str
    run_id: str
    submitted_at: datetime | None
    late: bool
    penalty_percent: int
    public_score: str
    private_score: str | None = Field(description="Hidden from students until the due date.")
    final_score: str = Field(description="What counts: the private split's score after the due date when the "
                             "evaluation wrote one, else the public one; the late penalty applied.")
    submissions: int
    evaluation_revision: int
    feedback: list[FeedbackOut]


class Gradebook(BaseModel):
    workspace: str
    assignment: str
    grade_by: str
    due_at: datetime | None
    past_due: bool
    rows: list[GradebookRow]

    @classmethod
    def of(cls, b: registry_pb2.Gradebook) -> Gradebook:
        a = b.assignment
        return cls(workspace=a.workspace, assignment=a.name, grade_by=a.grade_by or "best", due_at=ts(a.due_at),
                   past_due=a.past_due, rows=[GradebookRow(
                       username=r.username, run_id=r.run_id, submitted_at=ts(r.submitted_at), late=r.late,
                       penalty_percent=r.penalty_percent, public_score=r.public_score,
                       private_score=r.private_score or None, final_score=r.final_score, submissions=r.submissions,
                       evaluation_revision=r.evaluation_revision,
                       feedback=[FeedbackOut.of(f) for f in r.feedback]) for r in b.rows])


CSV_COLUMNS = ["username", "run_id", "submitted_at", "late", "penalty_percent", "public_score", "private_score",
               "final_score", "submissions", "evaluation_revision"]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # a spreadsheet runs a cell starting with = + - @ as a formula (CSV injection): quote it as text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def gradebook_csv(book: Gradebook) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in book.rows:
        writer.writerow([_cell(r.username), r.run_id, r.submitted_at.isoformat() if r.submitted_at else "",
                         "yes" if r.late else "no", r.penalty_percent, r.public_score, r.private_score or "",
                         r.final_score, r.submissions, r.evaluation_revision])
    return out.getvalue()

