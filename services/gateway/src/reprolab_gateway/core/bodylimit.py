"""A size limit for the JSON bodies FastAPI reads into memory itself.

FastAPI reads a route's body before it runs the route's dependencies, authentication included, so
without a limit anyone could make the gateway buffer a gigabyte. Routes that stream their bodies
(dataset uploads, bundle verification) enforce their own limits and do not use this class.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from .problems import PayloadTooLarge


def _too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes, the most this endpoint accepts"


class BodyLimitedRoute(APIRoute):
    """Refuses bodies above ``settings.max_document_bytes``: by Content-Length up front, and by
    counting while FastAPI reads (chunked bodies have no Content-Length)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None and self.methods and self.methods <= {"GET", "HEAD"}:
            return handler  # nothing reads a body here: no wrapper, no second Request per call

        async def limited(request: Request) -> Response:
            limit: int = request.app.state.settings.max_document_bytes
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(_too_large(limit))
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI lets an HTTPException raised while reading the body through as is.
                    raise StarletteHTTPException(413, detail=_too_large(limit))
                return message

            return await handler(Request(request.scope, receive))

        return limited
