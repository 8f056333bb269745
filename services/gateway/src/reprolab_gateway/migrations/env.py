from alembic import context
from reprolab_common.db import run_alembic_env
from reprolab_gateway.models import Base

run_alembic_env(context, Base.metadata)
