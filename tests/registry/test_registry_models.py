"""The migrations build exactly the tables the models declare, and versions cannot be changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from reprolab.v1 import common_pb2
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.settings import CommonSettings
from reprolab_registry import service
from reprolab_registry.models import MIGRATIONS, Base, Version
from sqlalchemy import inspect, select

from ._support import spec_json


def test_migrations_match_models_and_versions_are_immutable(database_env: dict[str, str]) -> None:
    settings = CommonSettings(
        data_dir=Path(database_env["REPROLAB_DATA_DIR"]),
        database_url=database_env.get("REPROLAB_DATABASE_URL"),
        database_schema_prefix=database_env.get("REPROLAB_DATABASE_SCHEMA_PREFIX", ""),
    )
    engine = make_engine(settings, "registry")
    try:
        migrate(engine, MIGRATIONS)
        migrate(engine, MIGRATIONS)  # idempotent
        assert {
            "workspaces",
            "members",
            "environments",
            "versions",
            "datasets",
            "outbox",
            "alembic_version",
        } <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []

        sessions = session_factory(engine)
        actor = common_pb2.Actor(user_id="u", username="u")
        with sessions.begin() as s:
            service.create_workspace(session=s, actor=actor, slug="w", title="")
            view = service.create_environment(
                session=s, actor=actor, workspace="w", name="e", description="", spec_json=spec_json()
            )
            assert view.latest is not None and view.latest.created_at.tzinfo is not None
        with pytest.raises(RuntimeError, match="immutable"), sessions.begin() as s:
            version = s.scalar(select(Version))
            assert version is not None
            version.note = "rewritten"
        with sessions() as s:
            assert s.scalar(select(Version.note)) == ""
    finally:
        engine.dispose()
