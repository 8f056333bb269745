"""Settings of the builder service (``REPROLAB_BUILDER_*``)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings


class BuilderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_BUILDER_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    durable: str = Field(default="builder", description="Name of the durable JetStream consumer on the JOBS stream.")
    ack_wait_seconds: float = Field(
        default=60.0, description="How long JetStream waits for an ack (or in-progress signal) before redelivering."
    )
    max_deliver: int = Field(default=5, description="Deliveries of one job before it is given up as failed.")


@lru_cache
def get_settings() -> BuilderSettings:
    return BuilderSettings()
