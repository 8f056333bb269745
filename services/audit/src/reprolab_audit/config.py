"""Settings of the audit service (``REPROLAB_AUDIT_*``)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_AUDIT_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    signing_key_file: Path | None = Field(
        default=None,
        description=(
            "Ed25519 private key (PEM PKCS#8 or a raw 32-byte seed) that signs checkpoints. Unset: one is "
            "generated once into <data_dir>/audit-signing-key (mode 0600) and reused. Every key ever used "
            "stays recorded, so checkpoints signed before a rotation (python -m reprolab_audit rotate-key) "
            "still verify as this server's."
        ),
    )
    origin_prefix: str = Field(
        default="reprolab.local/audit", pattern=r"^[^\s+]+$",
        description=(
            "Log identity prefix: a workspace's checkpoints carry the origin <prefix>/<workspace> and are signed "
            "under that key name (C2SP tlog-checkpoint). Set it to a name of this installation, e.g. "
            "reprolab.example.edu/audit, and never change it: saved checkpoints name their origin."
        ),
    )
    checkpoint_every: int = Field(
        default=100, ge=1, description="Sign a checkpoint every N entries of a workspace."
    )
    checkpoint_seconds: float = Field(
        default=5.0, gt=0, description="Also sign one for any workspace with newer entries every T seconds."
    )
    batch_size: int = Field(
        default=256, ge=1, le=10_000, description="Events fetched and committed per batch (one transaction)."
    )
    fetch_timeout_seconds: float = Field(
        default=1.0, gt=0, description="How long one fetch waits for events before asking again."
    )
    linger_seconds: float = Field(
        default=0.0, ge=0, le=5,
        description="After a fetch that did not fill a batch, how long to wait for more events before committing: "
                    "events trickling in one by one (a busy API) are then stored a few at a time, not one "
                    "transaction each (0.05 halved the audit CPU per event at c=10); an entry is up to twice "
                    "that much later in the log. 0 (the default): commit at once, so an entry is readable a "
                    "moment after the API answered.")
    durable: str = Field(
        default="audit", description="Name of the durable JetStream consumer on the EVENTS stream."
    )
    ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="How long JetStream waits for an ack before redelivering an event."
    )

    export_ttl_seconds: float = Field(
        default=3600.0, gt=0, description="An activity export still stored after this long is removed (the "
        "gateway removes each one once downloaded; this catches downloads that never finished)."
    )
    export_max_total_bytes: int = Field(
        default=1024 ** 3, ge=0, description="At most this many bytes of activity exports are kept; the oldest "
        "go first."
    )
    export_sweep_seconds: float = Field(
        default=300.0, gt=0, description="How often left-over activity exports are looked for (and at start)."
    )

    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.common.data_dir / "audit-signing-key"


@lru_cache
def get_settings() -> AuditSettings:
    return AuditSettings()
