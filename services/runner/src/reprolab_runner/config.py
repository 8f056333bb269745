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
    concurrency: int = Field(default=8, ge=1, description=(
        "Runs this process supervises at once (each mostly waits on its container; bench/run.py measures it)."))
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
        description=("Targets runs may use, as JSON: local, kubernetes, aws, azure, openstack, e.g. "
                     '\'["local","aws"]\'. A fresh install has no cluster or cloud, so only local is on. The remote '
                     "targets need REPROLAB_OBJECT_STORE=s3 (they fetch inputs and upload outputs by presigned "
                     "URL); the clouds use the credentials the run's requester stored for that vendor."),
    )
    model_monitor_seconds: float = Field(
        default=300.0, gt=0, description=("How often every served model's traffic is compared with its training "
                                          "data (drift and accuracy alerts); a report can also be asked for now."))
    model_reconcile_seconds: float = Field(
        default=60.0, gt=0, description=("How often the model servers are compared with the deployed versions: a "
                                          "local server that is gone is started again, a server of a stopped "
                                          "version removed, a deploy its runner did not finish failed."))
    model_min_accuracy: float = Field(
        default=0.8, ge=0, le=1, description="A window's accuracy on late labels below this raises an alert.")
    model_webhook_allow_private: bool = Field(
        default=False, description=("Let model webhooks call loopback, private and link-local addresses (a hook "
                                    "inside the platform's network); by default only public addresses are called."))
    model_target: str = Field(
        default="local", description=("Where deployed models are served: local (podman on this host) or kubernetes "
                                      "(a Deployment, Service and HorizontalPodAutoscaler per version in "
                                      "kubernetes_namespace; needs REPROLAB_OBJECT_STORE=s3: its pods fetch the "
                                      "artifact by presigned URL)."))
    kubernetes_model_url_seconds: int = Field(
        default=7 * 24 * 3600, ge=600, le=7 * 24 * 3600,
        description=("Lifetime of a served model's presigned artifact URL and image pull grant (S3 allows at "
                     "most 7 days). Every new pod (a reschedule, an eviction, a scale-up) fetches the artifact "
                     "again, so the runner renews both once less than half of this is left."))
    kubernetes_model_ready_seconds: float = Field(
        default=600.0, gt=0, description="How long a model's Deployment may take to become available (image pull).")
    kubernetes_model_max_replicas: int = Field(
        default=4, ge=1, description="Most replicas the HorizontalPodAutoscaler gives one model version.")
    reconcile_seconds: float = Field(default=60.0, description="How often leftovers of finished runs are removed.")
    reconcile_cloud_hours: float = Field(
        default=48.0,
        description=("A cloud VM is found through its run's requester's credentials, so the reconciler looks in "
                     "the accounts of runs that are live or ended at most this many hours ago."),
    )
    kubernetes_namespace: str = Field(default="reprolab-runs", description="Namespace of the kubernetes target's Jobs.")
    kubernetes_kubeconfig: str = Field(
        default="", description="Kubeconfig file of the kubernetes target; empty: the in-cluster service account.")
    kubernetes_fetcher_image: str = Field(
        default="docker.io/curlimages/curl:8.11.1",
        description="Image of a run pod's fetch and upload steps (needs sh, curl, tar, unzip, sha256sum).")
    kubernetes_egress_cidrs: list[str] = Field(
        default=[], description=("CIDRs of the object store, the only place a run's fetch and upload pods may "
                                 "reach (on kubernetes_store_ports); empty: anywhere outside the cluster CIDRs. "
                                 "The run pod itself has no network unless the run asks for it."))
    kubernetes_store_ports: list[int] = Field(default=[443], description="TCP ports of the object store.")
    kubernetes_allow_dns: bool = Field(
        default=True, description="Let the fetch and upload pods resolve names (the presigned URLs' host).")
    kubernetes_cluster_cidrs: list[str] = Field(
        default=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
        description=("Pod, service and node CIDRs of the cluster, which a run with network may not reach (nor "
                     "link-local addresses, where cloud metadata lives, whatever this says)."))
    kubernetes_run_storage: str = Field(
        default="10Gi", description="Size of each run's PersistentVolumeClaim (code, datasets, outputs).")
    kubernetes_storage_class: str = Field(
        default="", description="StorageClass of the runs' claims; empty: the cluster's default.")
    url_slack_seconds: int = Field(
        default=3600, description=("Presigned URLs of a remote run live its timeout plus this long (boot, image "
                                   "pull and input downloads come before the timeout starts)."))
    git_schemes: list[str] = Field(
        default=["https", "http", "git"],
        description="URL schemes a run's Git repository may use, as JSON (file:// only with git_allow_file).")
    git_allow_file: bool = Field(
        default=False, description="Let runs name a repository by a file:// path on the runner's host (tests, labs).")
    git_timeout_seconds: float = Field(default=60.0, gt=0, description="Longest a Git fetch or archive may take.")
    git_max_bytes: int = Field(default=256 * 1024 * 1024, description="Largest code archive made from a commit.")

    registry_auth_file: Path | None = Field(
        default=None,
        description="containers-auth.json with the runner's credentials for the platform's OCI registry (pull "
        "only). The local target pulls with them; remote targets get a pull grant for one image instead.",
    )
    # --- JupyterLab sessions (issue 12) ---
    session_target: str = Field(default="local", description="Where sessions run: local or kubernetes.")
    session_idle_timeout_seconds: int = Field(
        default=3600, ge=0, description="A session idle this long is stopped (0: never); workspaces may set theirs.")
    session_warn_seconds: int = Field(
        default=300, ge=0, description="How long before culling a session shows its warning (at most half the "
        "idle timeout).")
    session_cull_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often running sessions are checked (activity, liveness, culling).")
    session_network: str = Field(default="index", description="Default network of sessions: none or index.")
    session_max_per_environment: int = Field(
        default=1, ge=1, description="Active sessions per user and environment, unless the workspace allows more.")
    session_cpu_millis: int = Field(default=2000, description="CPU limit of a session (1000 = one CPU).")
    session_memory_bytes: int = Field(default=2 << 30, description="Memory limit of a session.")
    session_pids: int = Field(default=1024, description="Process limit of a session (kernels, terminals).")
    session_start_timeout_seconds: float = Field(
        default=900.0, description="How long a start may take (the first start of a version builds its layer).")
    session_layer_timeout_seconds: float = Field(
        default=900.0, description="How long the builder may take to build a session layer.")
    kubernetes_session_namespace: str = Field(
        default="reprolab-sessions", description="Namespace of session pods, their Services and home PVCs.")
    kubernetes_session_storage_class: str = Field(
        default="", description="StorageClass of the home PVCs; empty: the cluster's default.")
    kubernetes_session_home_bytes: int = Field(default=5 << 30, description="Size of a home PVC.")
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
