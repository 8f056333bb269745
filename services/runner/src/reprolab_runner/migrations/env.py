"""Alembic environment of the runner: migrate on the connection ``reprolab_common.db.migrate`` passes."""

from alembic import context
from reprolab_common.db import run_alembic_env
from reprolab_runner.models import Base

run_alembic_env(context, Base.metadata)
