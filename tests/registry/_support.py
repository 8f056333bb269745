"""Helpers of the registry tests: the service as a subprocess, a typed caller, event collection."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from reprolab.v1 import common_pb2, events_pb2, registry_pb2
from reprolab_common.errors import ProblemError
from reprolab_common.nats import MSG_ID, call
from reprolab_common.subjects import Registry

R = registry_pb2

# subject → (request type, reply type)
API: dict[Registry, tuple[type[Message], type[Message]]] = {
    Registry.WORKSPACE_CREATE: (R.CreateWorkspaceRequest, R.Workspace),
    Registry.WORKSPACE_LIST: (R.ListWorkspacesRequest, R.WorkspaceList),
    Registry.WORKSPACE_GET: (R.GetWorkspaceRequest, R.Workspace),
    Registry.MEMBER_ADD: (R.AddMemberRequest, R.Member),
    Registry.MEMBER_LIST: (R.ListMembersRequest, R.MemberList),
    Registry.MEMBER_UPDATE: (R.UpdateMemberRequest, R.Member),
    Registry.MEMBER_REMOVE: (R.RemoveMemberRequest, R.Member),
    Registry.ENV_CREATE: (R.CreateEnvironmentRequest, R.Environment),
    Registry.ENV_LIST: (R.ListEnvironmentsRequest, R.EnvironmentList),
    Registry.ENV_GET: (R.GetEnvironmentRequest, R.Environment),
    Registry.ENV_FORK: (R.ForkEnvironmentRequest, R.Environment),
    Registry.VERSION_CREATE: (R.CreateVersionRequest, R.Version),
    Registry.VERSION_LIST: (R.ListVersionsRequest, R.VersionList),
    Registry.VERSION_GET: (R.GetVersionRequest, R.Version),
    Registry.DATASET_REGISTER: (R.RegisterDatasetRequest, R.Dataset),
    Registry.DATASET_LIST: (R.ListDatasetsRequest, R.DatasetList),
    Registry.DATASET_GET: (R.GetDatasetRequest, R.Dataset),
    Registry.VERSION_RECORD_IMAGE: (R.RecordImageRequest, R.Version),
    Registry.ASSIGNMENT_CREATE: (R.CreateAssignmentRequest, R.Assignment),
    Registry.ASSIGNMENT_LIST: (R.ListAssignmentsRequest, R.AssignmentList),
    Registry.ASSIGNMENT_GET: (R.GetAssignmentRequest, R.Assignment),
    Registry.ASSIGNMENT_RECORD_SCORE: (R.RecordScoreRequest, R.Score),
    Registry.ASSIGNMENT_LEADERBOARD: (R.LeaderboardRequest, R.Leaderboard),
}


class RegistryProcess:
    """``python -m reprolab_registry`` with the given environment; ``stop()`` checks a clean exit."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        # inherited REPROLAB_* settings (a developer's shell) must not redirect the service under test
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("REPROLAB_")}
        self.env = {**inherited, **env}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> RegistryProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reprolab_registry"], env=self.env, stdout=out, stderr=out
            )
        return self

    async def wait_ready(self, nc: Client, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (
                f"registry exited:\n{self.log.read_text()}"
            )
            try:
                await nc.request("$SRV.PING.registry", b"", timeout=0.25)
                return
            except Exception:
                await asyncio.sleep(0.05)
        raise TimeoutError(f"registry not ready in {within}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc


@dataclass
class User:
    """Calls the registry as one actor."""

    nc: Client
    actor: common_pb2.Actor

    async def __call__(self, subject: Registry, *, wait: float = 10.0, **fields: object) -> Message:
        request_type, reply_type = API[subject]
        return await call(
            self.nc, subject.value, request_type(actor=self.actor, **fields), reply_type, timeout=wait
        )

    async def fails(self, status: int, subject: Registry, *fragments: str, **fields: object) -> ProblemError:
        """Expect a problem with ``status`` whose detail contains every fragment."""
        with pytest.raises(ProblemError) as info:
            await self(subject, **fields)
        problem = info.value
        assert problem.status == status, f"expected {status}, got {problem.status}: {problem.detail}"
        for fragment in fragments:
            assert fragment in problem.detail, f"{fragment!r} not in {problem.detail!r}"
        return problem


async def collect_events(
    nc: Client, workspace: str, expected: int, *, settle: float = 0.5, within: float = 10.0
) -> list[tuple[events_pb2.Event, str, str]]:
    """(event, NATS subject, Nats-Msg-Id) of every event of ``workspace`` on the EVENTS stream, read
    with an ephemeral consumer; waits for ``expected`` events, then ``settle`` more seconds for extras."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        f"events.{workspace}.>",
        stream="EVENTS",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0),
    )
    out: list[tuple[events_pb2.Event, str, str]] = []

    async def fetch(wait: float) -> None:
        try:
            msgs = await sub.fetch(100, timeout=wait)
        except TimeoutError:  # nats.errors.TimeoutError is one too
            return
        for msg in msgs:
            ev = events_pb2.Event()
            ev.ParseFromString(msg.data)
            out.append((ev, msg.subject, (msg.headers or {}).get(MSG_ID, "")))
            await msg.ack()

    deadline = time.monotonic() + within
    try:
        while len(out) < expected and time.monotonic() < deadline:
            await fetch(0.5)
        await fetch(settle)  # anything beyond the expected count is a duplicate or a stray event
    finally:
        await sub.unsubscribe()
    return out


def check_events(
    got: list[tuple[events_pb2.Event, str, str]], expected_types: list[str]
) -> list[events_pb2.Event]:
    """Exactly the expected event types (in order), each once, with Nats-Msg-Id = event id and
    NATS subject ``events.<workspace>.<type>``."""
    assert [ev.type for ev, _, _ in got] == expected_types
    ids = [ev.id for ev, _, _ in got]
    assert len(set(ids)) == len(ids)
    for ev, subject, msg_id in got:
        assert msg_id == ev.id
        assert subject == f"events.{ev.workspace}.{ev.type}"
        assert ev.schema_version == common_pb2.SCHEMA_VERSION_1
        assert ev.HasField("time") and ev.actor.user_id
    return [ev for ev, _, _ in got]


def spec_json(**extra: object) -> str:
    return json.dumps(
        {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy>=1.26"]}, **extra}
    )
