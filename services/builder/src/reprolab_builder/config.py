"""Settings of the builder service (``REPROLAB_BUILDER_*``)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    backend: Literal["buildah", "docker", "kubernetes"] = Field(
        default="buildah", description="How images are built: local buildah, a Docker Engine API, or a Kubernetes Job."
    )
    registry: str = Field(
        default="127.0.0.1:5000",
        description="OCI registry (host[:port]) that images are pushed to as <registry>/<workspace>/<env>:v<N>.",
    )
    registry_tls_verify: bool = Field(default=False, description="Verify TLS when talking to the registry.")
    registry_auth_file: Path | None = Field(
        default=None, description="containers-auth.json with credentials for the registry (production)."
    )
    cache_dir: Path | None = Field(
        default=None, description="Wheel cache and build contexts; default <data_dir>/builder."
    )
    pip_cert: Path | None = Field(
        default=None,
        description="CA bundle the host uses to fetch wheels (a TLS-intercepting proxy). Never copied into an image.",
    )
    index_url: str = Field(
        default="https://pypi.org/simple",
        description="PEP 503 simple index the locked wheels are fetched from by hash; pip download is the fallback.",
    )
    docker_url: str = Field(
        default="unix:///run/podman/podman.sock", description="Docker Engine API endpoint for the docker backend."
    )
    kubernetes_namespace: str = Field(default="reprolab", description="Namespace of build Jobs (kubernetes backend).")
    kubernetes_builder_image: str = Field(
        default="quay.io/buildah/stable:v1.37", description="Rootless builder image run by build Jobs."
    )
    kubernetes_registry_secret: str = Field(
        default="reprolab-registry-auth",
        description="Secret in the build namespace whose auth.json key (containers-auth.json) build pods push with; "
        "the Helm chart creates it (or names the operator's existingSecret).",
    )
    kubernetes_seccomp_profile: str = Field(
        default="reprolab-build.json",
        description="Localhost seccomp profile of the build container, relative to the kubelet's seccomp "
        "directory on every node that runs builds (the chart ships it: files/seccomp/reprolab-build.json).",
    )

    def cache_root(self) -> Path:
        return self.cache_dir or self.common.data_dir / "builder"


@lru_cache
def get_settings() -> BuilderSettings:
    return BuilderSettings()
