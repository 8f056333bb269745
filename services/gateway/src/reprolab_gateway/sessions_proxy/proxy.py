"""``/sessions/{id}/...``: the gateway forwards a JupyterLab session's HTTP requests and websockets.

On the way in: the platform's auth (the portal's cookie or a bearer API token; the session's owner, or an
instructor of its workspace when the session allows it; anyone else gets 404, as for an unknown session), the
Origin check (websockets and changes), the CSRF check for changes made with the cookie; the browser's
credentials are removed and ``Authorization: token <server token>`` is added. On the way out: the token is
scrubbed from pages, cookies other than ``_xsrf`` are dropped, the session CSP replaces Jupyter's headers.
Bodies stream both ways (never buffered, except HTML pages, which are small and scrubbed); websocket frames
are relayed as they come, text as text and binary as binary, with the close code. Activity is reported to
the runner at most every ``session_touch_seconds`` per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time

import httpx
from reprolab.v1 import common_pb2
from reprolab_common.errors import ProblemError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from . import policy
from .upstream import Resolver, RunnerResolver, SessionGone, Upstream

log = logging.getLogger(__name__)

PREFIX = "/sessions/"
_PATH = re.compile(r"^/sessions/([A-Za-z0-9][A-Za-z0-9_-]{0,63})(/.*)?$")
SCRUB_LIMIT = 8 * 1024 * 1024  # pages larger than this are not HTML a Jupyter server writes


class ActivityReporter:
    """Tells the runner a session is in use, at most once per ``every`` seconds per session: the check costs
    a dict lookup per request or frame, the report is a background bus request."""

    def __init__(self, resolver: Resolver, every: float) -> None:
        self.resolver = resolver
        self.every = every
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    def seen(self, session_id: str, actor: common_pb2.Actor) -> None:
        now = time.monotonic()
        if now - self._last.get(session_id, -1e18) < self.every:
            return
        self._last[session_id] = now
        task = asyncio.get_running_loop().create_task(self._touch(session_id, actor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, session_id: str, actor: common_pb2.Actor) -> None:
        try:
            await self.resolver.touch(session_id, time.time(), actor)
        except Exception as exc:  # activity is advisory: a lost touch at worst culls a session a little early
            log.warning("session %s: activity report failed: %s", session_id, exc)


class SessionProxy:
    """The ASGI app mounted at ``/sessions``."""

    def __init__(self, app) -> None:
        self.app = app  # the gateway FastAPI app: its state carries settings, the bus link, the token cache
        self._client: httpx.AsyncClient | None = None
        self._resolver: Resolver | None = None
        self._reporter: ActivityReporter | None = None

    # --- wiring -----------------------------------------------------------------------------------
    @property
    def settings(self):
        return self.app.state.settings

    @property
    def resolver(self) -> Resolver:
        override = getattr(self.app.state, "session_resolver", None)
        if override is not None:
            return override
        if self._resolver is None:
            from ..clients import RunnerClient

            state = self.app.state
            self._resolver = RunnerResolver(
                lambda actor: RunnerClient(state.nats, actor, self.settings.nats_timeout_seconds),
                ttl=self.settings.session_resolve_cache_seconds)
        return self._resolver

    @property
    def reporter(self) -> ActivityReporter:
        if self._reporter is None or self._reporter.resolver is not self.resolver:
            self._reporter = ActivityReporter(self.resolver, self.settings.session_touch_seconds)
        return self._reporter

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # no read timeout: a long download or a long-polling request is fine; connecting must be quick
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), follow_redirects=False,
                                             limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                                             trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- ASGI -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        raw = scope.get("raw_path") or (scope.get("root_path", "") + scope["path"]).encode()
        path = raw.decode("latin-1")
        match = _PATH.match(path)
        if match is None:
            await self._refuse(scope, receive, send, 404, "no such session")
            return
        session_id, rest = match.group(1), match.group(2)
        if rest is None:  # /sessions/<id> → /sessions/<id>/ (Jupyter's base_url ends with a slash)
            if scope["type"] == "http":
                await _send_plain(send, 308, b"", [(b"location", (path + "/").encode("latin-1"))])
            else:
                await self._refuse(scope, receive, send, 404, "no such session")
            return
        qs = scope.get("query_string", b"")
        path_qs = path + ("?" + qs.decode("latin-1") if qs else "")

        user = await self._user(scope)
        if user is None:
            await self._refuse(scope, receive, send, 404, f"no session {session_id!r} of yours is running")
            return
        actor = common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)
        try:
            upstream = await self.resolver.resolve(session_id, actor)
        except SessionGone:
            upstream = None
        except ProblemError as exc:
            await self._refuse(scope, receive, send, exc.status if exc.status >= 500 else 404,
                               "the session service did not answer; try again" if exc.status >= 500
                               else f"no session {session_id!r} of yours is running")
            return
        if upstream is None or not await self._may_open(user, actor, upstream):
            await self._refuse(scope, receive, send, 404, f"no session {session_id!r} of yours is running")
            return

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = policy.parse_cookies(headers.get("cookie", ""))
        by_cookie = "authorization" not in headers
        allowed = policy.own_origins(self.settings.public_url, scope.get("scheme", "http"), headers.get("host", ""))
        origin = headers.get("origin")
        if scope["type"] == "websocket":
            # a browser always sends Origin on a websocket; a script with a bearer token may omit it
            if (by_cookie or origin is not None) and not policy.origin_allowed(origin, allowed):
                await self._refuse(scope, receive, send, 403, "websocket from another site refused")
                return
            self.reporter.seen(session_id, actor)
            await self._websocket(scope, receive, send, upstream, path_qs, actor)
            return
        method = scope["method"]
        if method not in policy.SAFE_METHODS:
            if (by_cookie or origin is not None) and not policy.origin_allowed(origin, allowed):
                await self._refuse(scope, receive, send, 403,
                                   "a change to a session must come from this site's pages (Origin header)")
                return
            if by_cookie and not policy.csrf_ok(method, headers, cookies):
                await self._refuse(scope, receive, send, 403,
                                   "a change to a session must carry X-XSRFToken equal to the _xsrf cookie "
                                   "(JupyterLab does this); reload the page")
                return
        self.reporter.seen(session_id, actor)
        await self._http(scope, receive, send, upstream, path_qs, actor)

    async def _user(self, scope: Scope):
        """The caller by the platform's own auth (``request_user``: bearer token or the portal's cookie,
        with its cache). Asked as a GET: the CSRF check for changes is the proxy's own (Jupyter's header pair)."""
        from ..api.deps import request_user

        probe = Request({"type": "http", "method": "GET", "headers": scope["headers"], "app": self.app,
                         "path": scope["path"], "query_string": b"", "client": scope.get("client")})
        try:
            return await request_user(probe, self.settings)
        except ProblemError:
            return None

    async def _may_open(self, user, actor: common_pb2.Actor, upstream: Upstream) -> bool:
        if user.id == upstream.owner:
            return True
        if not upstream.instructors_may_open:
            return False
        from ..clients import RegistryClient

        try:
            ws = await RegistryClient(self.app.state.nats, actor, self.settings.nats_timeout_seconds) \
                .get_workspace(upstream.workspace)
        except ProblemError:
            return False
        return ws.caller_role >= common_pb2.ROLE_INSTRUCTOR

    # --- HTTP -------------------------------------------------------------------------------------
    async def _still_running(self, session_id: str, actor: common_pb2.Actor) -> bool:
        """After the upstream stopped answering: does the runner still know the session as running? The
        cached address (``session_resolve_cache_seconds``) outlives a stop, so a stopped session must not
        answer 502 "try again" for those seconds but 404; when the runner cannot say, assume it runs."""
        try:
            return await self.resolver.resolve(session_id, actor) is not None
        except SessionGone:
            return False
        except ProblemError:
            return True

    async def _http(self, scope: Scope, receive: Receive, send: Send, upstream: Upstream, path_qs: str,
                    actor: common_pb2.Actor) -> None:
        headers = policy.upstream_request_headers(scope["headers"], upstream.server_token)
        names = {k for k, _ in headers}
        content = _request_body(receive) if (b"content-length" in names or b"transfer-encoding"
                                             in {k.lower() for k, _ in scope["headers"]}) else None
        request = self.client().build_request(scope["method"], upstream.upstream_url + path_qs,
                                              headers=headers, content=content)
        try:
            response = await self.client().send(request, stream=True)
        except httpx.TransportError as exc:
            self.resolver.forget(upstream.session_id)
            log.info("session %s: upstream unreachable: %s", upstream.session_id, type(exc).__name__)
            if not await self._still_running(upstream.session_id, actor):
                await _problem(send, 404, f"no session {upstream.session_id!r} of yours is running")
                return
            await _problem(send, 502, "the session's server is not answering (starting, or stopped); try again")
            return
        try:
            out = policy.browser_response_headers(response.headers.raw)
            ctype = response.headers.get("content-type", "")
            size = int(response.headers.get("content-length") or 0)
            if ctype.startswith("text/html") and upstream.server_token and size <= SCRUB_LIMIT:
                body = policy.scrub(await response.aread(), upstream.server_token)  # decoded: re-sent plain
                out = [(k, v) for k, v in out if k not in (b"content-length", b"content-encoding")]
                out.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
                return
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    # --- websockets -------------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send, upstream: Upstream, path_qs: str,
                         actor: common_pb2.Actor) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        url = "ws" + upstream.upstream_url.removeprefix("http") + path_qs
        extra = [(k.decode("latin-1"), v.decode("latin-1"))
                 for k, v in policy.upstream_request_headers(scope["headers"], upstream.server_token)
                 if k not in (b"accept-encoding", b"pragma", b"cache-control", b"user-agent")]
        wanted = [Subprotocol(p) for p in scope.get("subprotocols") or []]
        try:
            up = await connect(url, subprotocols=wanted or None, additional_headers=extra, max_size=None,
                               compression=None, open_timeout=60, ping_interval=None, user_agent_header=None)
        except InvalidStatus as exc:
            self.resolver.forget(upstream.session_id)
            log.info("session %s: upstream refused the websocket: %s", upstream.session_id,
                     exc.response.status_code)
            await send({"type": "websocket.close", "code": 1011 if exc.response.status_code >= 500 else 1008})
            return
        except (TimeoutError, OSError) as exc:
            self.resolver.forget(upstream.session_id)
            log.info("session %s: upstream unreachable: %s", upstream.session_id, type(exc).__name__)
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": up.subprotocol})
        reporter, sid = self.reporter, upstream.session_id
        pumps = [asyncio.create_task(_browser_to_upstream(receive, up, reporter, sid, actor)),
                 asyncio.create_task(_upstream_to_browser(up, send, reporter, sid, actor))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await up.close()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})  # the handshake gets 403
            return
        await _problem(send, status, detail)


async def _request_body(receive: Receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _close_code(code: int | None) -> int:
    """A close code the browser may be sent: 1005/1006 and the reserved ones are for observers only."""
    if code is None or code == 1005:
        return 1000
    if code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999:
        return code
    return 1011


async def _browser_to_upstream(receive: Receive, up: ClientConnection, reporter: ActivityReporter, sid: str,
                               actor: common_pb2.Actor) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            data = message.get("bytes")
            await up.send(data if data is not None else message.get("text") or "")
            reporter.seen(sid, actor)
        elif kind == "websocket.disconnect":
            await up.close(code=_close_code(message.get("code", 1000)))
            return


async def _upstream_to_browser(up: ClientConnection, send: Send, reporter: ActivityReporter, sid: str,
                               actor: common_pb2.Actor) -> None:
    try:
        async for data in up:
            if isinstance(data, bytes):
                await send({"type": "websocket.send", "bytes": data})
            else:
                await send({"type": "websocket.send", "text": data})
            reporter.seen(sid, actor)
    except ConnectionClosed:
        pass
    rcvd = up.close_rcvd
    await send({"type": "websocket.close", "code": _close_code(rcvd.code if rcvd else 1011),
                "reason": rcvd.reason if rcvd else ""})


async def _send_plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, status: int, detail: str) -> None:
    titles = {403: "Forbidden", 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = json.dumps({"type": "about:blank", "title": titles.get(status, "Error"), "status": status,
                       "detail": detail}).encode()
    await _send_plain(send, status, body, [(b"content-type", b"application/problem+json")])


def install_session_proxy(app: ASGIApp) -> SessionProxy:
    """Mount the proxy at ``/sessions`` (HTTP and websockets)."""
    proxy = SessionProxy(app)
    app.mount("/sessions", proxy)  # type: ignore[attr-defined]
    app.state.session_proxy = proxy  # type: ignore[attr-defined]  # the lifespan closes its pool
    return proxy
