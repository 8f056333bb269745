"""One database per service: a SQLite file on the embedded default, a PostgreSQL schema in production.

Every service owns its tables and runs its own Alembic migrations at start.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.orm import sessionmaker

from .privatefiles import private_dir, private_file
from .settings import CommonSettings

log = logging.getLogger(__name__)


def schema_name(settings: CommonSettings, service: str) -> str:
    return f"{settings.database_schema_prefix}{service}"


def make_engine(settings: CommonSettings, service: str, *,
                sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> Engine:
    """The service's engine. On PostgreSQL its schema is created if missing and is the only one on
    the search path, so no service can see another's tables by accident."""
    if settings.database_url and settings.database_url.startswith("postgresql"):
        schema = schema_name(settings, service)
        admin = create_engine(settings.database_url, pool_pre_ping=True)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        return create_engine(
            settings.database_url,
            pool_pre_ping=True,
            pool_size=10,
            connect_args={"options": f"-csearch_path={schema}"},
        )
    if settings.database_url:
        url = settings.database_url
    else:
        private_dir(settings.data_dir)
        path = (settings.data_dir / f"{service}.db").resolve()
        private_file(path)
        url = f"sqlite:///{path}"
    # Pool as large as the thread pools that use it (anyio's 40, asyncio's default executor): with the
    # default 5 kept connections every burst opened and closed overflow connections, each paying the
    # pragmas below (journal_mode=WAL takes a lock): a large share of a read's CPU (bench/gateway.py).
    # Connections open lazily, so an idle service holds few.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=40, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names every service's metadata uses, so migrations name them the same way."""

T = TypeVar("T")


def in_transaction(sessions: sessionmaker, fn: Callable[[Any], T]) -> T:
    """Run ``fn(session)`` in one committed transaction."""
    with sessions.begin() as session:
        return fn(session)


async def transact(sessions: sessionmaker, fn: Callable[[Any], T]) -> T:
    """Run ``fn(session)`` in one committed transaction on a worker thread (the loop never blocks)."""
    return await asyncio.to_thread(in_transaction, sessions, fn)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine, migrations_dir: Path) -> None:
    """Upgrade the service's tables to the newest revision. On PostgreSQL an advisory lock keyed by
    the migrations folder keeps two replicas starting together from racing."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    lock_key = zlib.crc32(str(migrations_dir.name + migrations_dir.parent.name).encode())
    with engine.connect() as conn:
        is_pg = conn.dialect.name == "postgresql"
        if is_pg:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if is_pg:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
                conn.commit()


def run_alembic_env(context: Any, metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``: migrate on the connection ``migrate`` passes."""
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
