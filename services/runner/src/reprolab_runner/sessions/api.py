"""The ``runner.session.*`` endpoints. Only the gateway may call them (buspermissions), with the caller
as the actor; who may see which session is the gateway's check (membership and role), the runner
checks what a request may ask for (limits, one session per user and environment)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.micro.service import Service
from reprolab.v1 import runner_pb2
from reprolab_common.capture import CaptureError, parse_capture
from reprolab_common.db import transact
from reprolab_common.errors import Conflict, Invalid, ServiceUnavailable
from reprolab_common.nats import InFlight, endpoint
from reprolab_common.subjects import Runner
from sqlalchemy.orm import sessionmaker

from .. import quotas
from ..config import RunnerSettings
from ..targets.base import TargetError
from . import service
from .manager import SessionManager
from .models import NotebookSession, SessionStatus
from .targets import NETWORKS

STARTER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
STATUS = {SessionStatus.STARTING: runner_pb2.SESSION_STATUS_STARTING,
          SessionStatus.RUNNING: runner_pb2.SESSION_STATUS_RUNNING,
          SessionStatus.STOPPING: runner_pb2.SESSION_STATUS_STOPPING,
          SessionStatus.STOPPED: runner_pb2.SESSION_STATUS_STOPPED,
          SessionStatus.FAILED: runner_pb2.SESSION_STATUS_FAILED}


def session_proto(s: NotebookSession, warn_seconds: int) -> runner_pb2.Session:
    """Everything a caller may see of a session; the server token and upstream URL are not in it."""
    warning, left = service.cull_state(s, datetime.now(UTC), warn_seconds)
    msg = runner_pb2.Session(
        id=s.id, workspace=s.workspace, environment=s.environment, version=s.version, owner=s.owner_id,
        owner_username=s.owner_username, status=STATUS[SessionStatus(s.status)], error=s.error,
        idle_timeout_seconds=s.idle_timeout_seconds, cull_warning=warning,
        cull_in_seconds=left if s.status == SessionStatus.RUNNING and s.idle_timeout_seconds else 0,
        image=s.session_image, target=s.target, network=s.network,
        resources=runner_pb2.RunResources(cpu_millis=s.cpu_millis, memory_bytes=s.memory_bytes, pids=s.pids))
    msg.created.FromDatetime(s.created_at)
    msg.last_activity.FromDatetime(s.last_activity)
    if s.stopped_at:
        msg.stopped.FromDatetime(s.stopped_at)
    return msg


@dataclass
class SessionApi:
    settings: RunnerSettings
    sessions: sessionmaker
    manager: SessionManager
    wake_outbox: object

    def _proto(self, s: NotebookSession) -> runner_pb2.Session:
        return session_proto(s, self.settings.session_warn_seconds)

    def _limits(self, r: runner_pb2.RunResources) -> tuple[int, int, int]:
        st = self.settings
        cpu, memory, pids = (r.cpu_millis or st.session_cpu_millis, r.memory_bytes or st.session_memory_bytes,
                             r.pids or st.session_pids)
        problems = []
        if not 100 <= cpu <= 64_000:
            problems.append(("resources.cpu", "must be between 0.1 and 64 CPUs"))
        if not 256 << 20 <= memory <= 256 << 30:
            problems.append(("resources.memory", "must be between 256 MiB and 256 GiB (JupyterLab needs room)"))
        if not 64 <= pids <= 65_536:
            problems.append(("resources.pids", "must be between 64 and 65536"))
        if problems:
            raise Invalid("; ".join(f"{loc} {msg}" for loc, msg in problems), errors=problems)
        return cpu, memory, pids

    async def start(self, r: runner_pb2.StartSessionRequest) -> runner_pb2.Session:
        if not r.image or "@sha256:" not in r.image or not r.lock_digest:
            raise Invalid("a session needs the version's image pinned by digest and its lock digest "
                          "(build the version first)", errors=[("image", "not pinned")])
        target = r.target or self.settings.session_target
        if target != self.settings.session_target:
            raise Invalid(f"sessions run on {self.settings.session_target!r} on this platform, not {target!r}",
                          errors=[("target", target)])
        cpu, memory, pids = self._limits(r.resources)
        for st in r.starter:  # the folder of the home each goes to: a plain name, never a path
            if not STARTER_NAME.fullmatch(st.assignment) or not st.object_key or not st.digest:
                raise Invalid(f"starter code {st.assignment!r}: an assignment's name, digest and object key are "
                              "needed", errors=[("starter", st.assignment)])

        def _create(db):  # noqa: ANN001, ANN202
            quotas.admit(db, workspace=r.workspace, user_id=r.actor.user_id, what="session")
            p = service.policy(db, r.workspace)
            return service.create(
                db, request=r, target=target, network=p.network if p else self.settings.session_network,
                cpu_millis=cpu, memory_bytes=memory, pids=pids,
                idle_timeout_seconds=p.idle_timeout_seconds if p else self.settings.session_idle_timeout_seconds,
                max_per_environment=p.max_per_environment if p else self.settings.session_max_per_environment)

        s = await transact(self.sessions, _create)
        self.wake_outbox()
        self.manager.begin(s.id, list(r.starter))
        return self._proto(s)

    async def get(self, r: runner_pb2.GetSessionRequest) -> runner_pb2.Session:
        return self._proto(await transact(self.sessions, lambda db: service.get(db, r.session_id)))

    async def list(self, r: runner_pb2.ListSessionsRequest) -> runner_pb2.SessionList:
        rows = await transact(self.sessions, lambda db: service.list_for(
            db, workspace=r.workspace, owner_id=r.actor.user_id if r.own_only else None, active_only=r.active_only))
        return runner_pb2.SessionList(items=[self._proto(s) for s in rows])

    async def stop(self, r: runner_pb2.StopSessionRequest) -> runner_pb2.Session:
        s = await self.manager.stop(r.session_id)
        self.wake_outbox()
        return self._proto(s)

    async def connect(self, r: runner_pb2.ConnectSessionRequest) -> runner_pb2.SessionConnection:
        """The gateway's proxy: where the server is and its token (a running session only)."""
        def read(db):  # noqa: ANN001, ANN202 - the session and its workspace's policy in one transaction
            s = service.get(db, r.session_id)
            return s, service.policy(db, s.workspace)

        s, p = await transact(self.sessions, read)
        conn = runner_pb2.SessionConnection(session=self._proto(s),
                                            instructors_may_open=bool(p and p.instructors_may_open))
        if s.status == SessionStatus.RUNNING:
            conn.upstream_url, conn.server_token = s.upstream_url, s.server_token
        return conn

    async def capture(self, r: runner_pb2.GetSessionRequest) -> runner_pb2.SessionCapture:
        """What a running session installed beyond its version's lock (``reprolab env capture --json`` in the
        container, checked by ``reprolab_common.capture.parse_capture``). The inspection is the runner's: it
        alone reaches the container. Creating the version is the gateway's (it holds the caller's rights)."""
        s = await transact(self.sessions, lambda db: service.get(db, r.session_id))
        if s.status != SessionStatus.RUNNING or not s.handle:
            raise Conflict(f"session {s.id} is {s.status}, not running: start it again to save what it installs")
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(self.manager.target.capture, s.handle), 120)
            doc = parse_capture(raw)
        except TargetError as exc:
            raise Conflict(f"cannot read what session {s.id} installed: {exc}") from exc
        except TimeoutError as exc:
            raise ServiceUnavailable(f"session {s.id} did not answer `reprolab env capture` in 120 s") from exc
        except CaptureError as exc:
            raise Conflict(f"session {s.id}'s image gave an unusable capture: {exc}") from exc
        return runner_pb2.SessionCapture(session=self._proto(s), capture_json=json.dumps(doc, sort_keys=True))

    async def touch(self, r: runner_pb2.TouchSessionRequest) -> runner_pb2.Session:
        at = r.at.ToDatetime(tzinfo=UTC) if r.HasField("at") else datetime.now(UTC)
        return self._proto(await transact(self.sessions, lambda db: service.touch(db, r.session_id, at)))

    async def policy_get(self, r: runner_pb2.GetSessionPolicyRequest) -> runner_pb2.SessionPolicy:
        p = await transact(self.sessions, lambda db: service.policy(db, r.workspace))
        st = self.settings
        if p is None:
            return runner_pb2.SessionPolicy(workspace=r.workspace, idle_timeout_seconds=st.session_idle_timeout_seconds,
                                            max_per_environment=st.session_max_per_environment,
                                            network=st.session_network)
        return runner_pb2.SessionPolicy(workspace=p.workspace, idle_timeout_seconds=p.idle_timeout_seconds,
                                        max_per_environment=p.max_per_environment, network=p.network,
                                        instructors_may_open=bool(p.instructors_may_open))

    async def policy_put(self, r: runner_pb2.PutSessionPolicyRequest) -> runner_pb2.SessionPolicy:
        p = r.policy
        problems = []
        if not (p.idle_timeout_seconds == 0 or 10 <= p.idle_timeout_seconds <= 7 * 86400):
            problems.append(("idle_timeout_seconds", "must be 0 (never) or between 10 s and 7 days"))
        if not 1 <= p.max_per_environment <= 20:
            problems.append(("max_per_environment", "must be between 1 and 20"))
        if p.network not in NETWORKS:
            problems.append(("network", f"must be one of {', '.join(NETWORKS)}"))
        if problems:
            raise Invalid("; ".join(f"{loc} {msg}" for loc, msg in problems), errors=problems)
        await transact(self.sessions, lambda db: service.put_policy(
            db, workspace=p.workspace, idle_timeout_seconds=p.idle_timeout_seconds,
            max_per_environment=p.max_per_environment, network=p.network, updated_by=r.actor.username,
            instructors_may_open=p.instructors_may_open))
        return runner_pb2.SessionPolicy(workspace=p.workspace, idle_timeout_seconds=p.idle_timeout_seconds,
                                        max_per_environment=p.max_per_environment, network=p.network,
                                        instructors_may_open=p.instructors_may_open)


async def add_session_endpoints(micro: Service, api: SessionApi, in_flight: InFlight) -> None:
    for subject, req_type, fn in (
        (Runner.SESSION_START, runner_pb2.StartSessionRequest, api.start),
        (Runner.SESSION_GET, runner_pb2.GetSessionRequest, api.get),
        (Runner.SESSION_LIST, runner_pb2.ListSessionsRequest, api.list),
        (Runner.SESSION_STOP, runner_pb2.StopSessionRequest, api.stop),
        (Runner.SESSION_CONNECT, runner_pb2.ConnectSessionRequest, api.connect),
        (Runner.SESSION_TOUCH, runner_pb2.TouchSessionRequest, api.touch),
        (Runner.SESSION_CAPTURE, runner_pb2.GetSessionRequest, api.capture),
        (Runner.SESSION_POLICY_GET, runner_pb2.GetSessionPolicyRequest, api.policy_get),
        (Runner.SESSION_POLICY_PUT, runner_pb2.PutSessionPolicyRequest, api.policy_put),
    ):
        await micro.add_endpoint(name=subject.value.replace(".", "-"), subject=subject.value,
                                 handler=in_flight.wrap(endpoint(req_type, fn)))
