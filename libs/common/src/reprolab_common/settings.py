"""Settings shared by every service, read from ``REPROLAB_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every Reprolab process needs to find its peers and its storage."""

    model_config = SettingsConfigDict(env_prefix="REPROLAB_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".reprolab"),
        description="Directory for SQLite files, the local object store and keys on the embedded default.",
    )
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL (JetStream enabled).")
    nats_user: str | None = Field(
        default=None,
        description=("This process's NATS identity (gateway, registry, audit, builder, runner); its subject "
                     "permissions are reprolab_common.buspermissions. Unset: connect without credentials."),
    )
    nats_password: SecretStr | None = Field(default=None, description="Password of nats_user (a Secret).")
    nats_tls_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the NATS server's TLS certificate; set: TLS is required.",
    )
    nats_stream_replicas: int = Field(
        default=1, ge=1, le=5,
        description="Replicas of each JetStream stream (JOBS, EVENTS, LOGS): 3 on a three-node JetStream cluster.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of a PostgreSQL server (postgresql+psycopg://...). Unset: one SQLite file per "
            "service under data_dir. On PostgreSQL each service owns one schema."
        ),
    )
    database_schema_prefix: str = Field(
        default="",
        description="Prefix for each service's PostgreSQL schema name (lets several installations share a server).",
    )
    object_store: Literal["local", "s3"] = Field(
        default="local", description="Where datasets, code archives and exports live: a local directory or S3."
    )
    object_store_dir: Path | None = Field(
        default=None, description="Directory of the local object store; default <data_dir>/objects."
    )
    s3_bucket: str = Field(default="reprolab", description="Bucket of the S3 object store.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 API endpoint (MinIO, Ceph, moto); unset means AWS itself."
    )
    s3_region: str = Field(default="us-east-1", description="Region of the S3 bucket.")
    log_level: str = Field(default="INFO", description="Python logging level name.")
    nats_give_up_seconds: float = Field(
        default=300.0, gt=0,
        description=("A backend service whose NATS connection stays down this long logs why and exits non-zero "
                     "(its supervisor or Kubernetes restarts it or reports it) instead of retrying silently "
                     "forever; it warns every 10 s meanwhile. The gateway keeps serving and answers 503."),
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql", "sqlite")):
            raise ValueError("REPROLAB_DATABASE_URL must be a postgresql+psycopg:// (or sqlite://) URL")
        return value or None

    def objects_dir(self) -> Path:
        return self.object_store_dir or self.data_dir / "objects"
