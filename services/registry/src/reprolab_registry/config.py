"""Settings of the registry service (``REPROLAB_REGISTRY_*``)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_REGISTRY_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    outbox_batch: int = Field(
        default=256, ge=1, description="Events the outbox publisher reads from the database per round."
    )
    shutdown_flush_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a stopping registry keeps trying to publish its pending events.",
    )


@lru_cache
def get_settings() -> RegistrySettings:
    return RegistrySettings()
