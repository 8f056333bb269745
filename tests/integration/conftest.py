"""The whole platform as real processes (nats-server + five services), once per database."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

MAX_UPLOAD = 1024 * 1024
_counter = itertools.count()


def registry_creds(client: Client) -> list[str]:
    """``--creds user:token`` for podman/skopeo: the registry serves only whom the gateway authorises."""
    token = client.http.headers["Authorization"].removeprefix("Bearer ")
    return ["--creds", f"{client.get('/me')['username']}:{token}"]


@dataclass
class Running:
    platform: Platform
    admin: Client
    backend: str

    @property
    def objects_dir(self) -> Path:
        return self.platform.data_dir / "objects"

    def user(self, prefix: str = "u") -> tuple[str, Client]:
        name = f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"
        token = self.admin.post("/users", json={"username": name})["token"]
        return name, self.admin.as_user(token)

    def workspace(self, owner: Client, prefix: str = "ws") -> str:
        slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
        owner.post("/workspaces", json={"slug": slug, "title": f"Workspace {slug}"})
        return slug


def registry_headers(running: Running, repository: str) -> dict[str, str]:
    """Headers for reading ``repository`` straight from the registry: a pull token from the gateway's
    realm for the platform admin, and the OCI manifest type (distribution 2.8 answers 404 without it)."""
    r = running.admin.http.get("/registry/token", params={"service": "reprolab-registry",
                                                          "scope": f"repository:{repository}:pull"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}", "Accept": "application/vnd.oci.image.manifest.v1+json"}


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    extra = {"REPROLAB_GATEWAY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "REPROLAB_AUDIT_CHECKPOINT_EVERY": "10",
             "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
             # a killed builder's job comes back after this many seconds without a heartbeat
             "REPROLAB_BUILDER_ACK_WAIT_SECONDS": "10", "REPROLAB_RUNNER_ACK_WAIT_SECONDS": "10",
             # test_import imports its fixture folders by path too
             "REPROLAB_GATEWAY_IMPORT_ROOTS": json.dumps([str(Path(__file__).parents[1] / "importer" / "repos")])}
    prefix = None
    drop = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        drop = request.getfixturevalue("drop_pg_schemas")
        prefix = f"it{uuid.uuid4().hex[:8]}_"
        extra |= {"REPROLAB_DATABASE_URL": url, "REPROLAB_DATABASE_SCHEMA_PREFIX": prefix}
    platform = Platform(tmp_path_factory.mktemp(f"platform-{request.param}"), extra_env=extra)
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    yield Running(platform, admin, request.param)
    admin.close()
    platform.stop()
    if drop and prefix:
        drop(prefix)


@pytest.fixture
def course(running: Running):
    """A workspace with an instructor who owns it and a student member."""
    iname, instructor = running.user("teach")
    sname, student = running.user("stud")
    ws = running.workspace(instructor)
    instructor.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    return ws, (iname, instructor), (sname, student)
