"""The life of a session: start (notebook layer → workload → the server answers), stop, culling.

Start runs in the background: ``runner.session.start`` answers ``starting`` at once, and the
caller polls ``runner.session.get`` until ``running`` (or ``failed``, with the reason). The first
start of a version waits for the builder to build its layer; later ones find it in
``session_layers``.

Culling (``cull_forever``): every ``session_cull_interval_seconds`` each running session's
activity is the latest of the server's own ``/api/status`` ``last_activity`` (kernels executing,
terminals, API calls) and the gateway's last proxied byte (``runner.session.touch``). A session
idle for its workspace's timeout is stopped; ``session_warn_seconds`` before that its ``Session``
shows ``cull_warning``. Stopping removes the container or pod only: the home keeps every file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from reprolab.v1 import builder_pb2
from reprolab_common.agentchain import ChainError
from reprolab_common.db import transact
from reprolab_common.errors import ProblemError, ServiceUnavailable
from reprolab_common.nats import call
from reprolab_common.subjects import Builder
from sqlalchemy.orm import sessionmaker

from ..config import RunnerSettings
from ..targets.base import TargetError
from . import activity, service, starter
from .models import NotebookSession, SessionStatus
from .targets import LocalSessions, SessionSpec, SessionTarget

log = logging.getLogger(__name__)
# httpx logs every request at INFO: the culling pass asks each server's /api/status every few seconds
logging.getLogger("httpx").setLevel(logging.WARNING)

LAYER_DIR = Path(__file__).parent / "layer"


def layer_files() -> dict[str, bytes]:
    """Every file under ``layer/`` (relative path → bytes), as copied to /opt/reprolab/session/."""
    return {str(p.relative_to(LAYER_DIR)): p.read_bytes() for p in sorted(LAYER_DIR.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def layer_key(image: str, files: dict[str, bytes]) -> str:
    h = hashlib.sha256(image.encode())
    for rel, data in sorted(files.items()):
        h.update(f"\0{rel}\0{hashlib.sha256(data).hexdigest()}".encode())
    return "sha256:" + h.hexdigest()


def make_target(settings: RunnerSettings) -> SessionTarget:
    if settings.session_target == "kubernetes":
        from .kube import KubernetesSessions

        return KubernetesSessions(settings, installation=settings.installation_id())
    return LocalSessions(settings, installation=settings.installation_id())


def _parse_time(value: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class SessionManager:
    def __init__(self, *, settings: RunnerSettings, sessions: sessionmaker, nc: Any, wake_outbox: Callable[[], None],
                 target: SessionTarget | None = None, store: Any = None) -> None:
        self.settings = settings
        self.store = store  # the object store the assignments' starter code is read from
        self.sessions = sessions
        self.nc = nc
        self.wake_outbox = wake_outbox
        self.target = target or make_target(settings)
        self.tasks: set[asyncio.Task[None]] = set()
        self._starting: set[str] = set()
        self._stopping: set[str] = set()
        self._synced: dict[str, int] = {}  # session id -> highest chain sequence put in the outbox
        # session id -> the starter code it gets (kept until it is running: a start cut short by a
        # restart fails, see ``resume``)
        self._starter: dict[str, list[Any]] = {}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- start -------------------------------------------------------------------------------------

    def begin(self, session_id: str, starters: list[Any] | None = None) -> None:
        """Start the session in the background; ``starters``: ``runner_pb2.SessionStarter`` to unpack."""
        if session_id not in self._starting:
            self._starting.add(session_id)
            if starters:
                self._starter[session_id] = list(starters)
            self._spawn(self._start(session_id))

    async def _layer(self, s: NotebookSession) -> str:
        files = layer_files()
        key = layer_key(s.image, files)
        known = await transact(self.sessions, lambda db: service.layer_image(db, key))
        if known:
            return known
        request = builder_pb2.SessionLayerRequest(image=s.image, lock_digest=s.lock_digest,
                                                  requirements=files["requirements.txt"].decode(), files=files)
        request.actor.user_id, request.actor.username = s.owner_id, s.owner_username
        # the builder answers at once ("building" until pushed): a reply held for minutes would outlive
        # NATS's allow_responses window
        while True:
            layer = await call(self.nc, Builder.SESSION_LAYER.value, request, builder_pb2.SessionLayer, timeout=30)
            if not layer.building:
                break
            await asyncio.sleep(1.0)  # polling the builder, nothing local to wait on
        pinned = f"{layer.image_ref.rsplit(':', 1)[0]}@{layer.image_digest}"
        log.info("session layer for %s built in %.1f s: %s", s.image, layer.seconds, pinned)
        await transact(self.sessions, lambda db: service.remember_layer(db, key=key, image=s.image,
                                                                        session_image=pinned))
        return pinned

    async def _start(self, session_id: str) -> None:
        handle = ""
        try:
            s = await transact(self.sessions, lambda db: service.get(db, session_id))
            image = await asyncio.wait_for(self._layer(s), self.settings.session_layer_timeout_seconds + 30)
            s = await transact(self.sessions, lambda db: service.set_image(db, session_id, image))
            if s.status != SessionStatus.STARTING:
                return await self._finish_stop(session_id)
            spec = SessionSpec(session_id=s.id, workspace=s.workspace, owner_id=s.owner_id, image=image,
                               token=s.server_token, cpu_millis=s.cpu_millis, memory_bytes=s.memory_bytes,
                               pids=s.pids, network=s.network)
            started = await asyncio.to_thread(self.target.start, spec)
            handle = started.handle
            await transact(self.sessions, lambda db: service.set_handle(db, session_id, handle))
            await self._wait_ready(started.handle, started.upstream_url, s.server_token)
            await self._unpack_starters(session_id, started.upstream_url, s.server_token)
            s = await transact(self.sessions, lambda db: service.started(
                db, session_id, handle=started.handle, upstream_url=started.upstream_url))
            self.wake_outbox()
            if s.status == SessionStatus.STOPPING:  # stopped while starting
                await self._finish_stop(session_id)
        except Exception as exc:  # noqa: BLE001 - every failure ends in ``failed`` with its reason
            reason = self._reason(exc)
            if not isinstance(exc, (TargetError, ProblemError, TimeoutError)):
                log.exception("session %s failed to start", session_id)
            if handle:
                try:
                    await asyncio.to_thread(self.target.stop, handle)
                except TargetError as stop_exc:
                    log.warning("could not remove failed session %s: %s", session_id, stop_exc)
            await transact(self.sessions, lambda db: service.failed(db, session_id, reason))
            self.wake_outbox()
        finally:
            self._starting.discard(session_id)
            self._starter.pop(session_id, None)

    async def _unpack_starters(self, session_id: str, upstream_url: str, token: str) -> None:
        """Each assignment's starter code into ~/<assignment>/ where the home has nothing yet (``starter``).
        A starter that cannot be read or written is logged and left out: the session starts anyway."""
        wanted = self._starter.get(session_id) or []
        if not wanted or self.store is None:
            return
        async with httpx.AsyncClient(timeout=30.0, headers={"Authorization": f"token {token}"}) as http:
            for st in wanted:
                try:
                    if await asyncio.to_thread(self.store.size, st.object_key) > starter.MAX_BYTES:
                        raise starter.StarterError(f"the archive is larger than {starter.MAX_BYTES} bytes")
                    data = await asyncio.to_thread(self.store.read_bytes, st.object_key)
                    if "sha256:" + hashlib.sha256(data).hexdigest() != st.digest:
                        raise starter.StarterError("its digest does not match")
                    files = await asyncio.to_thread(starter.files_of, data)
                    n = await starter.unpack(http, upstream_url, st.assignment, files)
                    log.info("session %s: %d of %d starter files of %s written", session_id, n, len(files),
                             st.assignment)
                except Exception as exc:  # noqa: BLE001 - the session starts without it
                    log.warning("session %s: the starter code of %s was not unpacked: %s", session_id,
                                st.assignment, exc)

    @staticmethod
    def _reason(exc: Exception) -> str:
        if isinstance(exc, ProblemError):
            return exc.detail or str(exc)
        if isinstance(exc, TimeoutError):
            return "the notebook server did not answer in time"
        return str(exc) or type(exc).__name__

    async def _wait_ready(self, handle: str, upstream_url: str, token: str) -> None:
        """Until ``GET <upstream>api/status`` answers 200 with the token; fails when the server dies."""
        deadline = asyncio.get_running_loop().time() + self.settings.session_start_timeout_seconds
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                try:
                    r = await http.get(f"{upstream_url}api/status", headers={"Authorization": f"token {token}"})
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                alive, why = await asyncio.to_thread(self.target.alive, handle)
                if not alive:
                    tail = await asyncio.to_thread(getattr(self.target, "logs", lambda h: ""), handle)
                    raise TargetError(f"{why}" + (f"; its last output: {tail[-1500:]}" if tail else ""))
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(handle)
                await asyncio.sleep(0.2)

    # --- stop --------------------------------------------------------------------------------------

    async def stop(self, session_id: str, reason: str = "stopped") -> NotebookSession:
        s = await transact(self.sessions, lambda db: service.request_stop(db, session_id, reason))
        if s.status == SessionStatus.STOPPING and session_id not in self._starting:
            self._spawn(self._finish_stop(session_id))
        return s

    async def _finish_stop(self, session_id: str) -> None:
        if session_id in self._stopping:  # the API's stop and a culling pass may both get here
            return
        self._stopping.add(session_id)
        try:
            s = await transact(self.sessions, lambda db: service.get(db, session_id))
            try:
                if s.handle:
                    try:
                        await self._sync_activity(s)  # the chain dies with the container
                    except Exception:  # noqa: BLE001 - never keep a session from stopping
                        log.exception("session %s: activity not synced before stopping", session_id)
                    await asyncio.to_thread(self.target.stop, s.handle)
            except TargetError as exc:
                log.warning("session %s: %s (retried by the next culling pass)", session_id, exc)
                return
            await transact(self.sessions, lambda db: service.stopped(db, session_id))
            self._synced.pop(session_id, None)
            self.wake_outbox()
        finally:
            self._stopping.discard(session_id)

    async def _sync_activity(self, s: NotebookSession) -> None:
        """The agent's new chain entries (cells run, installs) into the outbox (``activity.py``)."""
        raw = await asyncio.to_thread(self.target.activity_chain, s.handle)
        if not raw.strip():
            return
        try:
            entries, ok = activity.parse(raw)
        except ChainError as exc:
            log.warning("session %s: activity chain not synced: %s", s.id, exc)
            return
        after = self._synced.get(s.id, 0)
        if max(e["seq"] for e in entries) <= after:
            return
        self._synced[s.id] = await transact(
            self.sessions, lambda db: activity.emit(db, s, entries, chain_ok=ok, after=after))
        self.wake_outbox()

    # --- activity, liveness, culling ---------------------------------------------------------------

    async def _server_activity(self, http: httpx.AsyncClient, s: NotebookSession) -> datetime | None:
        try:
            r = await http.get(f"{s.upstream_url}api/status", headers={"Authorization": f"token {s.server_token}"})
            if r.status_code == 200:
                return _parse_time(r.json().get("last_activity", ""))
        except (httpx.HTTPError, ValueError):
            pass
        return None

    async def check_once(self) -> None:
        rows = await transact(self.sessions, service.active)
        async with httpx.AsyncClient(timeout=5.0) as http:
            for s in rows:
                if s.status == SessionStatus.STOPPING and s.id not in self._starting:
                    await self._finish_stop(s.id)
                    continue
                if s.status != SessionStatus.RUNNING:
                    continue
                alive, why = await asyncio.to_thread(self.target.alive, s.handle)
                if not alive:
                    await transact(self.sessions, lambda db, sid=s.id, w=why: service.failed(db, sid, w))
                    self.wake_outbox()
                    continue
                await self._sync_activity(s)
                at = await self._server_activity(http, s)
                if at is not None:
                    s = await transact(self.sessions, lambda db, sid=s.id, t=at: service.touch(db, sid, t))
                _warn, left = service.cull_state(s, datetime.now(UTC), self.settings.session_warn_seconds)
                if s.idle_timeout_seconds > 0 and left <= 0:
                    log.info("session %s idle for %d s: culled", s.id, s.idle_timeout_seconds)
                    await self.stop(s.id, reason="culled")

    async def resume(self) -> None:
        """After a restart: starts that were cut short fail (the user starts again), stops finish."""
        rows = await transact(self.sessions, service.active)
        for s in rows:
            if s.status == SessionStatus.STARTING and s.id not in self._starting:
                if s.handle:
                    try:
                        await asyncio.to_thread(self.target.stop, s.handle)
                    except TargetError:
                        pass
                await transact(self.sessions, lambda db, sid=s.id: service.failed(
                    db, sid, "the runner restarted while the session was starting; start it again"))
        self.wake_outbox()

    async def cull_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check_once()
            except ServiceUnavailable as exc:
                log.warning("session check skipped: %s", exc)
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("session check failed")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.session_cull_interval_seconds)
            except TimeoutError:
                pass
