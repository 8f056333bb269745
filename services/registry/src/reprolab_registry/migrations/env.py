"""Alembic environment of the registry: migrate on the connection ``reprolab_common.db.migrate`` passes."""

from alembic import context
from reprolab_common.db import run_alembic_env
from reprolab_registry.models import Base

run_alembic_env(context, Base.metadata)
