"""Turn a dependency's outage into the problem a client can act on, instead of a 500.

A database that is down or restarting, and a disk that is full, are not bugs of the request: the client
should retry later (503 with Retry-After) or an operator must make room (507). Used by the gateway's last-
resort error handler and by every service's request wrapper (``reprolab_common.nats.endpoint``).
"""

from __future__ import annotations

import errno

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from .errors import ProblemError, ServiceUnavailable


class InsufficientStorage(ProblemError):
    status = 507
    title = "Insufficient Storage"


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def outage_problem(exc: BaseException, where: str) -> ProblemError | None:
    """The problem for ``exc`` if it (or what caused it) is an outage of a dependency of ``where`` (a
    service name), else None. Walks ``__cause__``/``__context__`` so wrapped errors are recognised."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return InsufficientStorage(
                f"the {where}'s storage is full ({current.strerror}); nothing was kept of this request. "
                "An operator must free space or grow the volume; then retry")
        if isinstance(current, (OperationalError, InterfaceError, DisconnectionError)) or (
                isinstance(current, DBAPIError) and current.connection_invalidated):
            return ServiceUnavailable(
                f"the {where}'s database is unavailable ({type(current.orig or current).__name__}); "
                "try again shortly")
        current = current.__cause__ or current.__context__
    return None
