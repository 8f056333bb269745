"""Settings of the runner service (``REPROLAB_RUNNER_*``)."""

import hashlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings


class RunnerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_RUNNER_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    durable: str = Field(default="runner", description="Name of the durable JetStream consumer on the JOBS stream.")
    ack_wait_seconds: float = Field(
        default=30.0, description="How long JetStream waits for an ack (or in-progress signal) before redelivering."
    )
    max_deliver: int = Field(default=5, description="Deliveries of one run job before it is given up as failed.")
    concurrency: int = Field(default=4, ge=1, description="Runs this process supervises at once.")
    poll_seconds: float = Field(default=0.5, gt=0, description="How often a running run's status is checked.")
    docker_url: str = Field(
        default="unix:///run/podman/podman.sock", description="Docker Engine API of the local target."
    )
    work_dir: Path | None = Field(default=None, description="Per-run scratch space; default <data_dir>/runner.")
    max_output_bytes: int = Field(default=64 * 1024 * 1024, description="Largest total of a run's outputs kept.")
    default_timeout_seconds: int = Field(default=600, description="Timeout of a run that names none.")
    max_timeout_seconds: int = Field(default=6 * 3600, description="Longest timeout a run may ask for.")
    enabled_targets: list[str] = Field(
        default=["local"],
        description=("Targets runs may use. kubernetes and the clouds (aws, azure, openstack) are implemented and "
                     "tested as modules; the runner hands them inputs once presigned-URL and credential wiring "
                     "lands, so they are off until then."),
    )
    reconcile_seconds: float = Field(default=60.0, description="How often leftovers of finished runs are removed.")

    installation: str = Field(
        default="",
        description=("Name of this installation, put on every container, Job and VM it creates; the reconciler "
                     "removes only its own. Default: derived from the database URL or data directory."),
    )

    def installation_id(self) -> str:
        if self.installation:
            return self.installation
        where = self.common.database_url or str(self.common.data_dir.resolve())
        return hashlib.sha256(f"{where}|{self.common.database_schema_prefix}".encode()).hexdigest()[:16]

    def work_root(self) -> Path:
        return self.work_dir or self.common.data_dir / "runner"


@lru_cache
def get_settings() -> RunnerSettings:
    return RunnerSettings()
