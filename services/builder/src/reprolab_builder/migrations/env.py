"""Alembic environment of the builder: migrate on the connection ``reprolab_common.db.migrate`` passes."""

from alembic import context
from reprolab_builder.models import Base
from reprolab_common.db import run_alembic_env

run_alembic_env(context, Base.metadata)
