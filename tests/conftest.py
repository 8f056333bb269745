"""Shared fixtures: real NATS (a private nats-server per session) and real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from reprolab_common.natsserver import NatsServer
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
