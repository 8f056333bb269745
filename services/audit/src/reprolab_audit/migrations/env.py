"""Alembic environment of the audit service (run by ``reprolab_common.db.migrate``)."""

from alembic import context
from reprolab_audit.models import Base
from reprolab_common.db import run_alembic_env

run_alembic_env(context, Base.metadata)
