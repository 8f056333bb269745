"""The registry's change notices (``registry.changed``, payload: the workspace slug): one after every committed
write to a workspace's data, whoever asked (a user through the gateway, the builder recording an image), none
for reads or for refused writes. The gateway's read cache depends on them (tests/gateway/test_read_cache.py)."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from reprolab.v1 import common_pb2
from reprolab_common.subjects import REGISTRY_CHANGED, Registry

from ._support import User, spec_json

pytestmark = pytest.mark.usefixtures("registry")


class Notices:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def start(self, nc: Client) -> Notices:
        await nc.subscribe(REGISTRY_CHANGED, cb=self._on)
        await nc.flush()
        return self

    async def _on(self, msg) -> None:
        self.seen.append(msg.data.decode())

    async def expect(self, nc: Client, *slugs: str) -> None:
        """Exactly ``slugs`` (in any order) since the last call."""
        await nc.flush()
        for _ in range(500):  # 5 s at most
            if len(self.seen) >= len(slugs):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # and nothing more
        assert sorted(self.seen) == sorted(slugs)
        self.seen.clear()


async def test_every_committed_write_is_announced_and_nothing_else(users: dict[str, User], ws: str, nc: Client) -> None:
    alice, bob = users["alice"], users["bob"]
    notices = await Notices().start(nc)
    other = f"{ws}-b"

    await alice(Registry.WORKSPACE_CREATE, slug=ws, title="Course")
    await notices.expect(nc, ws)
    await alice(Registry.WORKSPACE_CREATE, slug=other, title="Other")
    await notices.expect(nc, other)
    await alice(Registry.MEMBER_ADD, workspace=ws, user_id="id-bob", username="bob", role=common_pb2.ROLE_STUDENT)
    await notices.expect(nc, ws)
    await alice(Registry.ENV_CREATE, workspace=ws, name="py", spec_json=spec_json())
    await alice(Registry.VERSION_CREATE, workspace=ws, environment="py", spec_json=spec_json(), note="2")
    await notices.expect(nc, ws, ws)

    # reads and refused writes change nothing: no notice
    await alice(Registry.WORKSPACE_GET, workspace=ws)
    await alice(Registry.ENV_LIST, workspace=ws)
    await bob(Registry.VERSION_LIST, workspace=ws, environment="py")
    await alice.fails(409, Registry.WORKSPACE_CREATE, "already exists", slug=ws, title="again")
    await bob.fails(403, Registry.VERSION_CREATE, "", workspace=ws, environment="py", spec_json=spec_json())
    await notices.expect(nc)

    # the builder recording an image (no event of its own), a fork into another workspace, a removal
    await alice(
        Registry.VERSION_RECORD_IMAGE,
        workspace=ws,
        environment="py",
        number=2,
        lock_digest="sha256:" + "1" * 64,
        image_ref=f"r.test/{ws}/py:v2",
        image_digest="sha256:" + "2" * 64,
    )
    await notices.expect(nc, ws)
    await alice(Registry.ENV_FORK, workspace=ws, environment="py", target_workspace=other)
    await notices.expect(nc, ws, other)
    await alice(Registry.MEMBER_REMOVE, workspace=ws, user_id="id-bob")
    await notices.expect(nc, ws)
