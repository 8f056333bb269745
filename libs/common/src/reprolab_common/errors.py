"""Errors a user can cause, carried as RFC 9457 problems from any service to the gateway."""

from __future__ import annotations

from collections.abc import Iterable

from reprolab.v1 import common_pb2


class ProblemError(Exception):
    """A failure with an HTTP status and a message that says what to fix."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, status: int | None = None, title: str | None = None,
                 errors: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.errors = list(errors)

    def to_proto(self) -> common_pb2.Problem:
        return common_pb2.Problem(
            status=self.status, title=self.title, detail=self.detail,
            errors=[common_pb2.FieldError(loc=loc, msg=msg) for loc, msg in self.errors],
        )

    @classmethod
    def from_proto(cls, problem: common_pb2.Problem) -> ProblemError:
        return cls(problem.detail, status=problem.status or 500, title=problem.title or "Error",
                   errors=[(e.loc, e.msg) for e in problem.errors])

    def to_dict(self) -> dict:
        body: dict = {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = [{"loc": loc, "msg": msg} for loc, msg in self.errors]
        return body


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class Invalid(ProblemError):
    status = 422
    title = "Invalid input"


class ServiceUnavailable(ProblemError):
    status = 503
    title = "Service unavailable"
