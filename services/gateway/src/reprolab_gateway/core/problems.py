"""Every error leaves the gateway as an RFC 9457 ``application/problem+json`` document.

Problems raised by the registry and audit services arrive as ``ProblemError`` (see
``reprolab_common.nats.call``) and pass through unchanged; FastAPI's own errors (validation,
unknown routes, wrong methods) and anything unexpected are mapped here, in one place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from reprolab_common.errors import ProblemError
from reprolab_common.outage import outage_problem
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
AUTH_HINT = (
    "send 'Authorization: Bearer <token>' with an API token (rpl_...); the bootstrap admin's token is in the "
    "file named by REPROLAB_GATEWAY_BOOTSTRAP_TOKEN_FILE, an admin creates users and their first token with "
    "POST /api/v1/users, and you create more with POST /api/v1/me/tokens"
)


class Unauthorized(ProblemError):
    """401 with the ``WWW-Authenticate`` challenge RFC 6750 asks for."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, invalid_token: bool = True) -> None:
        super().__init__(f"{detail}; {AUTH_HINT}")
        challenge = 'Bearer realm="reprolab"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class MalformedBody(ProblemError):
    status = 400
    title = "Malformed request body"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported media type"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Iterable[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
    }
    errors = list(errors)
    if errors:
        body["errors"] = errors
    body.update(extensions)
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", "2")
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def join_loc(loc: Sequence[str | int]) -> str:
    """``("body", "spec", "apt", 2)`` → ``body.spec.apt[2]`` (the FieldError convention of the contracts)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_MESSAGES = {
    "extra_forbidden": "unknown field; remove it (see /api/v1/docs for the fields this request takes)",
    "missing": "field required",
}


# Regex → what it asks for in words: a pattern mismatch otherwise reads "String should match pattern '^...$'".
_PATTERN_HINTS: dict[str, str] = {}


def pattern(regex: str, hint: str) -> str:
    """Declare a field's pattern with the words a 422 uses when a value does not match it."""
    _PATTERN_HINTS[regex] = hint
    return regex


def _message(e: Any) -> str:
    kind = e.get("type", "")
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get((e.get("ctx") or {}).get("pattern", ""))
        if hint:
            return hint
    return _MESSAGES.get(kind, e.get("msg", "invalid"))


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    # Input values are deliberately not echoed: they may be large, or secret.
    return [{"loc": join_loc(e.get("loc", ())), "msg": _message(e)} for e in errors]


def _line_col(text: str, pos: int) -> tuple[int, int]:
    before = text[:pos]
    line = before.count("\n") + 1
    return line, pos - (before.rfind("\n") + 1) + 1


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    body = exc.to_dict()
    return problem_response(
        exc.status,
        body["detail"],
        title=body["title"],
        errors=body.get("errors", ()),
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            # FastAPI reports the character offset; people fix files by line and column.
            pos = e["loc"][-1] if isinstance(e["loc"][-1], int) else 0
            doc = exc.body if isinstance(exc.body, str) else ""
            line, col = _line_col(doc, pos)
            reason = (e.get("ctx") or {}).get("error", "invalid JSON")
            msg = f"line {line}, column {col}: {reason}"
            return problem_response(
                400,
                f"malformed JSON at {msg}",
                title="Malformed request body",
                errors=[{"loc": "body", "msg": msg}],
            )
    items = validation_errors(errors)
    shown = "; ".join(f"{i['loc'] or 'request'}: {i['msg']}" for i in items[:5])
    more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
    return problem_response(
        422, f"the request is invalid; fix these fields: {shown}{more}", title="Invalid input", errors=items
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = (
            f"there is no endpoint {request.method} {request.url.path}; the API is described at /api/v1/docs"
        )
    elif exc.status_code == 405:
        allowed = _allowed_methods(request) or headers.get("Allow", "")
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"} | ({"Allow": allowed} if allowed else {})
        detail = f"{request.method} is not allowed on {request.url.path}" + (
            f"; use {allowed}" if allowed else ""
        )
    return problem_response(exc.status_code, detail, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the API documents at this path (RFC 9110: a 405 lists them all in ``Allow``).
    Starlette names only the first route whose path matched, so a path with a GET and a POST route
    answered a DELETE with ``Allow: POST``. Read from the OpenAPI document, so ``Allow`` and the
    document cannot disagree; when several templates match, the most literal one is the route served
    (``.../environments/import`` rather than ``.../environments/{env}``). "" outside the API."""
    table = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = request.app.state.allow_table = _allow_table(request.app.openapi())
    path = request.url.path
    best = max((t for t in table if t[0].fullmatch(path)), key=lambda t: t[1], default=None)
    return best[2] if best else ""


def _allow_table(schema: dict[str, Any]) -> list[tuple[re.Pattern[str], int, str]]:
    """(path regex, number of literal segments, "GET, POST") per documented path."""
    table = []
    for template, operations in schema.get("paths", {}).items():
        parts = template.strip("/").split("/")
        regex = "/" + "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        literal = sum(not p.startswith("{") for p in parts)
        methods = ", ".join(sorted(m.upper() for m in operations if m.upper() in _HTTP_METHODS))
        table.append((re.compile(regex), literal, methods))
    return table


_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


async def _client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # Nobody reads this answer; it keeps a dropped upload out of the error log.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(400, "the client disconnected before sending the whole body")


async def _maybe_outage(request: Request, exc: Exception) -> JSONResponse:
    """Database and OS errors: a dependency that is down or full is a 503/507 the client can act on.
    Handled here rather than in ``_unexpected``: Starlette re-raises from that one, and uvicorn then
    closes the client's keep-alive connection."""
    outage = outage_problem(exc, "gateway")
    if outage is None:
        return await _unexpected(request, exc)
    log.warning("%s %s: %s", request.method, request.url.path, outage.detail)
    return problem_response(outage.status, outage.detail, title=outage.title)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "the gateway failed while handling this request; the error has been logged",
        title="Internal Server Error",
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; every error response of this API has this shape.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong and how to fix it."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "string", "description": "Dotted location, e.g. body.spec.apt[2]"},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document tell the truth about errors: FastAPI describes its 422 as an
    ``HTTPValidationError`` JSON body, but every error here is ``application/problem+json``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = content
                responses.setdefault("default", {"description": "Error", "content": content})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(DBAPIError, _maybe_outage)
    app.add_exception_handler(OSError, _maybe_outage)
    app.add_exception_handler(Exception, _unexpected)
    document_problems(app)
