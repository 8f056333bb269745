"""Shared fixtures: real NATS (a private nats-server per session), real PostgreSQL, and the whole platform
(``running``: nats-server + the services as real processes, once per database) for tests/integration and
tests/security."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common.localregistry import LocalRegistry
from reprolab_common.natsserver import NatsServer, free_port
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("REPROLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    root = tmp_path_factory.mktemp("nats")
    server = NatsServer(root / "js", log_file=root / "nats.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """PostgreSQL must be running (``make test`` installs and starts it): a failure here is real."""
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        conn.execute(text("select 1"))
    engine.dispose()
    return PG_URL


def drop_schemas(url: str, prefix: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = conn.execute(text("select nspname from pg_namespace where nspname like :p"),
                             {"p": prefix + "%"}).scalars().all()
        for name in names:
            conn.execute(text(f'drop schema "{name}" cascade'))
    engine.dispose()


@pytest.fixture(scope="session")
def drop_pg_schemas(pg_url: str):
    """Callable that drops every schema whose name starts with a prefix (test clean-up)."""
    return lambda prefix: drop_schemas(pg_url, prefix)


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment variables selecting SQLite (files under tmp_path) or a fresh PostgreSQL schema set."""
    env = {"REPROLAB_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        prefix = f"t{uuid.uuid4().hex[:8]}_"
        env |= {"REPROLAB_DATABASE_URL": url, "REPROLAB_DATABASE_SCHEMA_PREFIX": prefix}
        yield env
        drop_schemas(url, prefix)
    else:
        yield env


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode: the AWS APIs over real HTTP on a loopback port (a named fake of AWS)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise TimeoutError("moto server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


BASE_IMAGE = "localhost/reprolab/bookworm-python:latest"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A real OCI registry (CNCF distribution) on a loopback port; `make test` installs it."""
    root = tmp_path_factory.mktemp("registry")
    registry = LocalRegistry(root, log_file=root / "registry.log").start()
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def base_image() -> str:
    """The offline Debian bookworm + python3 base (`make base-image`; built here if missing)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "base-image.sh")], check=True)
    return BASE_IMAGE


# --- the whole platform -------------------------------------------------------------------

MAX_UPLOAD = 1024 * 1024
_counter = itertools.count()


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


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    extra = {"REPROLAB_GATEWAY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "REPROLAB_AUDIT_CHECKPOINT_EVERY": "10",
             "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
             # a killed builder's job comes back after this many seconds without a heartbeat
             "REPROLAB_BUILDER_ACK_WAIT_SECONDS": "10", "REPROLAB_RUNNER_ACK_WAIT_SECONDS": "10",
             # sessions: the cull test waits for a 20 s idle timeout, checked this often
             "REPROLAB_RUNNER_SESSION_CULL_INTERVAL_SECONDS": "2",
             # test_import imports its fixture folders by path too
             "REPROLAB_GATEWAY_IMPORT_ROOTS": json.dumps([str(Path(__file__).parent / "importer" / "repos")])}
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
