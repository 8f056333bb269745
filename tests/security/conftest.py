"""A whole platform (real processes) for the security-gap tests: SQLite for most, PostgreSQL where the
database matters (concurrent writes). Its data directory does not exist before ``start``, so the
tests see the modes the platform itself gives it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform


@dataclass
class Lab:
    platform: Platform
    admin: Client
    backend: str

    def user(self, prefix: str = "u", *, admin: bool = False) -> tuple[str, str, Client]:
        """(username, token, client) of a new user."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        token = self.admin.post("/users", json={"username": name, "platform_admin": admin})["token"]
        return name, token, self.admin.as_user(token)

    def workspace(self, owner: Client) -> str:
        slug = f"ws-{uuid.uuid4().hex[:8]}"
        owner.post("/workspaces", json={"slug": slug, "title": slug})
        return slug


def _start(tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest) -> Iterator[Lab]:
    extra = {"REPROLAB_AUDIT_EXPORT_SWEEP_SECONDS": "1"}  # left-over activity exports are looked for every second
    prefix = drop = None
    if backend == "postgres":
        drop = request.getfixturevalue("drop_pg_schemas")
        url = request.getfixturevalue("pg_url")
        prefix = f"sg{uuid.uuid4().hex[:8]}_"
        extra |= {"REPROLAB_DATABASE_URL": url, "REPROLAB_DATABASE_SCHEMA_PREFIX": prefix}
    platform = Platform(tmp_path_factory.mktemp(f"gaps-{backend}") / "data", extra_env=extra)
    try:
        platform.start(timeout=120)
    except Exception:
        platform.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    yield Lab(platform, admin, backend)
    admin.close()
    platform.stop()
    if drop and prefix:
        drop(prefix)


@pytest.fixture(scope="session")
def gaps(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The platform on SQLite (the embedded default)."""
    yield from _start(tmp_path_factory, "sqlite", request)


@pytest.fixture(scope="session")
def gaps_pg(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The platform on PostgreSQL."""
    yield from _start(tmp_path_factory, "postgres", request)
