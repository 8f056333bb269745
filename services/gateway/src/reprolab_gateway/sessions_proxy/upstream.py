"""Where a session's Jupyter server is, and who may open it: the proxy asks a ``Resolver``.

``RunnerResolver`` asks the runner (``runner.session.connect``, callable by the gateway only); answers
are cached for a few seconds, since a JupyterLab page load is ~100 requests and each would otherwise
cost a bus round trip. ``FixedResolver`` is a fake for tests that run a Jupyter server themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from reprolab.v1 import common_pb2

from ..core.security import TTLCache


class SessionGone(Exception):
    """No such session, or it is not running: the proxy answers 404."""


@dataclass(frozen=True)
class Upstream:
    session_id: str
    workspace: str
    owner: str  # user id
    upstream_url: str  # http://host:port, no path: the browser's path is forwarded unchanged
    server_token: str = field(repr=False)
    instructors_may_open: bool = False


class Resolver(Protocol):
    async def resolve(self, session_id: str, actor: common_pb2.Actor) -> Upstream:
        """The running session's upstream; ``SessionGone`` when there is none."""
        ...

    def forget(self, session_id: str) -> None:
        """Drop a cached answer (the upstream refused a connection: the session may have moved or stopped)."""
        ...

    async def touch(self, session_id: str, at: float, actor: common_pb2.Actor) -> None:
        """Report activity seen by the proxy (at most every few seconds per session; see ``ActivityReporter``)."""
        ...


class FixedResolver:
    """A FAKE resolver for tests: a fixed table of upstreams (the runner's connect answer, without a runner).
    Records touches so tests can check the proxy reports activity sparingly."""

    def __init__(self, upstreams: dict[str, Upstream] | None = None) -> None:
        self.upstreams = dict(upstreams or {})
        self.touches: list[tuple[str, float]] = []

    async def resolve(self, session_id: str, actor: common_pb2.Actor) -> Upstream:
        try:
            return self.upstreams[session_id]
        except KeyError:
            raise SessionGone(session_id) from None

    def forget(self, session_id: str) -> None:
        pass

    async def touch(self, session_id: str, at: float, actor: common_pb2.Actor) -> None:
        self.touches.append((session_id, at))


class RunnerResolver:
    """Asks the runner over the bus through ``RunnerClient`` (its session methods), caching answers."""

    def __init__(self, client_for, ttl: float = 5.0) -> None:
        # client_for(actor) -> RunnerClient bound to that caller (the runner checks nothing more for connect:
        # the subject is the gateway's alone; who may open the session is decided here, from the owner)
        self._client_for = client_for
        self.ttl = ttl
        self._cache = TTLCache()  # session id -> Upstream

    async def resolve(self, session_id: str, actor: common_pb2.Actor) -> Upstream:
        if (hit := self._cache.get(session_id)) is not None:
            return hit
        from reprolab_common.errors import NotFound, ProblemError

        client = self._client_for(actor)
        if not hasattr(client, "connect_session"):  # a runner client without sessions: there are none to open
            raise SessionGone(session_id)
        try:
            conn = await client.connect_session(session_id)
        except NotFound:
            raise SessionGone(session_id) from None
        except ProblemError as exc:
            if exc.status in (403, 404, 409):
                raise SessionGone(session_id) from None
            raise
        session = conn.session
        if not conn.upstream_url:  # starting or stopped: nothing to forward to
            raise SessionGone(session_id)
        # the runner names the server's base URL (…/sessions/<id>/); the proxy forwards the browser's whole path
        # unchanged, so only scheme://host:port is kept
        parts = urlsplit(conn.upstream_url)
        upstream = Upstream(session_id=session.id, workspace=session.workspace, owner=session.owner,
                            upstream_url=f"{parts.scheme}://{parts.netloc}", server_token=conn.server_token,
                            instructors_may_open=conn.instructors_may_open)
        self._cache.put(session_id, upstream, self.ttl)
        return upstream

    def forget(self, session_id: str) -> None:
        self._cache.pop(session_id)

    async def touch(self, session_id: str, at: float, actor: common_pb2.Actor) -> None:
        client = self._client_for(actor)
        if hasattr(client, "touch_session"):
            await client.touch_session(session_id, datetime.fromtimestamp(at, UTC))
