"""Settings of the gateway service (``REPROLAB_GATEWAY_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings

GIB = 1024**3


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_GATEWAY_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    host: str = Field(default="127.0.0.1", description="Address uvicorn listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port uvicorn listens on.")
    bootstrap_token_file: Path | None = Field(
        default=None,
        description=(
            "When set and no user named 'admin' exists at start, create the platform admin 'admin' and "
            "write its new API token to this file (mode 0600). An existing admin is left untouched."
        ),
    )
    max_upload_bytes: int = Field(
        default=GIB,
        ge=1,
        description="Largest dataset upload or audit bundle accepted, in bytes (413 above).",
    )
    max_document_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Largest JSON/YAML request body (environment specs), in bytes; keep it below NATS's "
        "max payload.",
    )
    nats_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a request to the registry or audit service may take."
    )
    build_request_timeout_seconds: float = Field(
        default=180.0, gt=0, description="How long requesting a build may take (the builder locks the spec first)."
    )
    audit_timeout_seconds: float = Field(
        default=120.0, gt=0, description="How long an activity export or bundle verification may take."
    )
    nats_connect_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        description="How long start-up waits for NATS before serving anyway (requests needing NATS "
        "answer 503 meanwhile).",
    )
    tmp_dir: Path | None = Field(
        default=None, description="Where uploads are spooled while hashed; default <data_dir>/tmp/gateway."
    )
    token_touch_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A token's last_used_at is written at most this often, so reads do not all "
        "become writes.",
    )

    import_base: str = Field(
        default="localhost/reprolab/bookworm-python:latest",
        description="Base image of environments imported from a repository when the request names none "
        "(the repository's runtime.txt then picks the Python version inside it).",
    )
    import_roots: list[Path] = Field(
        default=[],
        description="Folders on the gateway's host whose subfolders may be imported by path "
        "(JSON list); empty: import by path is off.",
    )
    import_url_hosts: list[str] = Field(
        default=[],
        description="host[:port] names the gateway may download repository archives from (JSON list); "
        "empty: import by URL is off, so the gateway cannot be used to reach internal addresses.",
    )
    token_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A checked API token is remembered this long, so requests skip the database. A token "
        "revoked through another gateway process (another replica) keeps working there for at most this "
        "long; the process that revokes it forgets it at once. 0 turns the cache off.",
    )

    def upload_dir(self) -> Path:
        return self.tmp_dir or self.common.data_dir / "tmp" / "gateway"


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
