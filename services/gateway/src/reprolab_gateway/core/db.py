"""The gateway's database: engine, migrations, sessions."""

from __future__ import annotations

from pathlib import Path

from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.settings import CommonSettings
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

SERVICE = "gateway"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def open_database(common: CommonSettings) -> tuple[Engine, sessionmaker]:
    """Create the engine, bring the tables to the newest revision, return a session factory."""
    engine = make_engine(common, SERVICE)
    migrate(engine, MIGRATIONS_DIR)
    return engine, session_factory(engine)
