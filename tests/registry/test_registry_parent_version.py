"""``CreateVersionRequest.parent_version``: a version derived from a named version (a JupyterLab session saved
as a new version names the version it ran), not the latest; 0 keeps the old rule (the latest); a version that
does not exist is a 404, a negative number a 422. Against the real registry service over NATS."""

from __future__ import annotations

import pytest
from nats.aio.client import Client
from reprolab_common.subjects import Registry

from ._support import User, spec_json
from .test_registry_service import setup_course

pytestmark = pytest.mark.usefixtures("registry")


async def test_a_new_version_derives_from_the_named_parent(users: dict[str, User], ws: str, nc: Client) -> None:
    carol = users["carol"]
    await setup_course(users, ws)
    await carol(Registry.ENV_CREATE, workspace=ws, name="py", spec_json=spec_json())
    v2 = await carol(Registry.VERSION_CREATE, workspace=ws, environment="py", spec_json=spec_json(apt=["curl"]))
    assert (v2.number, v2.parent) == (2, f"{ws}/py/v1")
    v3 = await carol(Registry.VERSION_CREATE, workspace=ws, environment="py", spec_json=spec_json(apt=["git"]),
                     parent_version=1)
    assert (v3.number, v3.parent, v3.origin) == (3, f"{ws}/py/v1", "update")
    v4 = await carol(Registry.VERSION_CREATE, workspace=ws, environment="py", spec_json=spec_json(apt=["less"]))
    assert (v4.number, v4.parent) == (4, f"{ws}/py/v3")  # 0: the latest, as before
    await carol.fails(404, Registry.VERSION_CREATE, "no version 9", workspace=ws, environment="py",
                      spec_json=spec_json(apt=["vim"]), parent_version=9)
    await carol.fails(422, Registry.VERSION_CREATE, "parent_version", workspace=ws, environment="py",
                      spec_json=spec_json(apt=["vim"]), parent_version=-1)
