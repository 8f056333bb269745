"""The documented schema of the chart's values; ``values.schema.json`` is generated from it.

Run ``python charts/reprolab/schema/values_model.py`` after changing a model; tests/chart checks the
committed JSON is what this file generates (the drift check) and that values.yaml validates.
Models forbid unknown keys, so a misspelt value fails ``helm install`` instead of being ignored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "values.schema.json"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Quantity = str | int | float
Resources = dict[Literal["requests", "limits"], dict[str, Quantity]]


class Image(Strict):
    repository: str = Field(description="Repository of the services image (one image, five entry points).")
    tag: str = Field(description="Tag, used when digest is empty.")
    digest: str = Field("", pattern=r"^(sha256:[0-9a-f]{64})?$", description="Pins the image; wins over tag.")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="imagePullPolicy.")


class Postgresql(Strict):
    url: str = Field("", description="DSN of PostgreSQL, stored in a Secret (or existingSecret).")
    existingSecret: str = Field("", description="Secret holding the DSN (wins over url).")
    existingSecretKey: str = Field("database-url", description="Key of the DSN in existingSecret.")
    schemaPrefix: str = Field("reprolab", description="Prefix of each service's schema.")


class NatsTls(Strict):
    enabled: bool = Field(True, description="Verify the NATS server with caSecret (REPROLAB_NATS_TLS_CA_FILE).")
    caSecret: str = Field("", description="Secret holding the CA certificate; required when enabled.")
    caKey: str = Field("ca.crt", description="Key of the CA certificate in caSecret.")


class NatsCredential(Strict):
    user: str = Field("", description="Bus user of this service (REPROLAB_NATS_USER).")
    password: str = Field("", description="Its password (REPROLAB_NATS_PASSWORD).")
    existingSecret: str = Field("", description="Secret with keys nats-user and nats-password (wins over inline).")


class NatsAuth(Strict):
    gateway: NatsCredential = Field(default_factory=NatsCredential, description="Gateway's bus identity.")
    registry: NatsCredential = Field(default_factory=NatsCredential, description="Registry's bus identity.")
    builder: NatsCredential = Field(default_factory=NatsCredential, description="Builder's bus identity.")
    runner: NatsCredential = Field(default_factory=NatsCredential, description="Runner's bus identity.")
    audit: NatsCredential = Field(default_factory=NatsCredential, description="Audit's bus identity.")


class Nats(Strict):
    url: str = Field("", description="NATS URL (JetStream R3 with sync_interval: always). Required.")
    tls: NatsTls = Field(default_factory=NatsTls, description="TLS to NATS.")
    auth: NatsAuth = Field(default_factory=NatsAuth, description="One credential Secret per service.")
    streamReplicas: int = Field(3, ge=1, le=5, description="Replicas of each JetStream stream Reprolab creates "
                                "(JOBS, EVENTS, LOGS): 3 on a three-node JetStream cluster, 1 on a single server.")


class ObjectStore(Strict):
    bucket: str = Field("", description="S3 bucket. Required.")
    endpointUrl: str = Field("", description="S3 endpoint (empty: AWS).")
    region: str = Field("us-east-1", description="S3 region.")
    accessKeyId: str = Field("", description="Access key id (or existingSecret).")
    secretAccessKey: str = Field("", description="Secret access key (or existingSecret).")
    existingSecret: str = Field("", description="Secret with keys access-key-id and secret-access-key.")


class OciRegistry(Strict):
    host: str = Field("", description="host[:port] of the OCI registry, reachable from build pods. Required.")
    tlsVerify: bool = Field(True, description="Verify the registry's TLS certificate.")
    username: str = Field("", description="Push user; the chart writes the build namespace's auth.json Secret.")
    password: str = Field("", description="Its password.")
    existingSecret: str = Field("", description="Secret in the build namespace with key auth.json (wins over inline).")
    tokenIssuerSecret: str = Field(
        "", description="Secret (keys token-key.pem, token-cert.pem, service-credentials.json) that makes the gateway "
        "the registry's token issuer at /api/v1/registry/token; configure the registry's auth.token with that realm, "
        "service reprolab-registry, issuer reprolab and rootcertbundle token-cert.pem, and push as reprolab-builder.")
    runnerAuthSecret: str = Field(
        "", description="Secret with key auth.json (reprolab-runner's containers-auth.json for the registry): the "
        "runner mints each run's one-image pull grant from it (a per-run imagePullSecret).")


class NetworkPolicy(Strict):
    enabled: bool = Field(True, description="Default-deny every platform pod and allow only what each service needs.")
    externalEgressCidrs: list[str] = Field(default_factory=list, description="CIDRs of out-of-cluster dependencies.")
    dependencyNamespaceSelector: dict[str, Any] = Field(
        default_factory=dict, description="Namespace selector of in-cluster dependencies (empty: all namespaces).")
    dnsNamespace: str = Field("kube-system", description="Namespace of the cluster DNS.")
    apiServerCidrs: list[str] = Field(
        default_factory=list, description="CIDRs of the Kubernetes API server (builder and runner run Jobs there).")
    apiServerPort: int = Field(6443, ge=1, le=65535, description="Port of the Kubernetes API server.")
    clusterCidrs: list[str] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
        description=("Pod, service and node CIDRs of the cluster: runs with network and build pods may not reach "
                     "them (nor link-local addresses, where cloud metadata lives, whatever this says)."))
    runStoreCidrs: list[str] = Field(
        default_factory=list, description=("CIDRs of the object store, the only place a run's fetch and upload "
                                           "pods may reach; empty: anywhere outside clusterCidrs."))
    runStorePorts: list[int] = Field(default_factory=lambda: [443], description="TCP ports of the object store.")
    buildEgressCidrs: list[str] = Field(
        default_factory=list, description=("CIDRs build pods may reach (the OCI registry, the package indexes, the "
                                           "object store); empty: anywhere outside clusterCidrs."))
    buildEgressPorts: list[int] = Field(
        default_factory=lambda: [443, 80], description="TCP ports build pods may reach there.")


class Pdb(Strict):
    enabled: bool = Field(True, description="Create a PodDisruptionBudget.")
    minAvailable: int = Field(1, ge=0, description="Pods kept through voluntary disruptions.")


class Component(Strict):
    replicas: int = Field(2, ge=0, description="Replicas (every service is safe with several).")
    resources: Resources = Field(description="Requests and limits, including ephemeral-storage.")
    nodeSelector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="Pod tolerations.")
    affinity: dict[str, Any] = Field(default_factory=dict, description="Pod affinity.")
    extraEnv: list[dict[str, Any]] = Field(default_factory=list, description="Extra container env entries.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the Deployment.")
    podAnnotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the pods.")
    pdb: Pdb = Field(default_factory=Pdb, description="PodDisruptionBudget.")


class GatewayService(Strict):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="Service type.")
    port: int = Field(80, ge=1, le=65535, description="Service port.")


class IngressHost(Strict):
    host: str = Field(description="Host name.")
    path: str = Field("/", description="Path prefix.")


class Ingress(Strict):
    enabled: bool = Field(False, description="Create an Ingress for the gateway.")
    className: str = Field("", description="ingressClassName.")
    hosts: list[IngressHost] = Field(default_factory=list, description="Hosts routed to the gateway.")
    tls: list[dict[str, Any]] = Field(default_factory=list, description="Ingress tls entries.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Ingress annotations.")


class HttpRoute(Strict):
    enabled: bool = Field(False, description="Create a Gateway API HTTPRoute for the gateway.")
    parentRefs: list[dict[str, Any]] = Field(default_factory=list, description="Gateways it attaches to.")
    hostnames: list[str] = Field(default_factory=list, description="Host names.")
    annotations: dict[str, str] = Field(default_factory=dict, description="HTTPRoute annotations.")


class Autoscaling(Strict):
    enabled: bool = Field(False, description="HorizontalPodAutoscaler for the gateway (replaces replicas).")
    minReplicas: int = Field(2, ge=1, description="Lowest replica count.")
    maxReplicas: int = Field(10, ge=1, description="Highest replica count.")
    targetCPUUtilizationPercentage: int = Field(70, ge=1, le=100, description="CPU target.")


class Gateway(Component):
    service: GatewayService = Field(default_factory=GatewayService, description="The gateway's Service.")
    ingress: Ingress = Field(default_factory=Ingress, description="Ingress.")
    httpRoute: HttpRoute = Field(default_factory=HttpRoute, description="Gateway API HTTPRoute.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="HPA.")
    ingressFrom: list[dict[str, Any]] = Field(
        default_factory=list, description="NetworkPolicy peers allowed to reach the gateway (ingress controller).")
    trustedProxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of the ingress controller / load balancer whose X-Forwarded-For the gateway "
        "believes (uvicorn's FORWARDED_ALLOW_IPS). Set it behind an Ingress or HTTPRoute: otherwise every person "
        "appears as the proxy's address and the per-address sign-in throttle counts them all as one.")


class Builder(Component):
    jobNamespace: str = Field("reprolab-builds", description="Namespace of build Jobs.")
    jobImage: str = Field(description="Image of build Jobs (buildah, rootless); pin it by digest in production.")
    jobImageDigest: str = Field("", pattern=r"^(sha256:[0-9a-f]{64})?$",
                                description="Digest of jobImage (make images writes it): build Jobs use repo@digest.")


class Runner(Component):
    jobNamespace: str = Field("reprolab-runs", description="Namespace of run Jobs.")
    fetcherImage: str = Field(description="Image of the run Job's fetch/upload containers.")
    fetcherImageDigest: str = Field("", pattern=r"^(sha256:[0-9a-f]{64})?$",
                                    description="Digest of fetcherImage: run Jobs then use repo@digest.")
    runStorage: str = Field("10Gi", description="Size of each run's PersistentVolumeClaim.")
    runStorageClass: str = Field("", description="StorageClass of the runs' claims (empty: the cluster default).")
    credentialKeysSecret: str = Field("", description="Secret with key keyring (REPROLAB_RUNNER_CREDENTIAL_KEYS).")
    modelTarget: Literal["kubernetes", "local"] = Field(
        "kubernetes", description=("Where deployed models are served: kubernetes (a Deployment, Service and HPA per "
                                   "version in jobNamespace) or local (podman beside the runner; not in a cluster)."))
    modelMaxReplicas: int = Field(4, ge=1, description="Most replicas the autoscaler gives one model version.")
    sessionTarget: Literal["kubernetes", "local"] = Field(
        "kubernetes", description=("Where JupyterLab sessions run: kubernetes (a Pod, Service, NetworkPolicy and the "
                                   "user's home PVC in sessionNamespace) or local (podman; not in a cluster)."))
    sessionNamespace: str = Field("reprolab-sessions", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                  description="Namespace of the session pods and home claims (created beforehand).")


class Audit(Component):
    origin: str = Field("reprolab.local/audit", pattern=r"^[^\s+]+$", description="Checkpoint origin prefix.")
    signingKeySecret: str = Field("", description="Secret with key signing-key, shared by all replicas. Required.")


class Migrations(Strict):
    enabled: bool = Field(True, description="pre-install/pre-upgrade Job upgrading every service's schema.")
    resources: Resources = Field(description="Requests and limits of the migration Job.")
    backoffLimit: int = Field(3, ge=0, description="Retries of the migration Job.")


class Values(Strict):
    """Values of charts/reprolab."""

    nameOverride: str = Field("", description="Replaces the chart name in resource names.")
    fullnameOverride: str = Field("", description="Replaces the full resource name prefix.")
    imagePullSecrets: list[dict[str, str]] = Field(default_factory=list, description="Chart-wide pull secrets.")
    image: Image = Field(description="The services image.")
    postgresql: Postgresql = Field(default_factory=Postgresql, description="PostgreSQL.")
    nats: Nats = Field(default_factory=Nats, description="NATS JetStream.")
    objectStore: ObjectStore = Field(default_factory=ObjectStore, description="S3 object store.")
    ociRegistry: OciRegistry = Field(default_factory=OciRegistry, description="OCI registry of environment images.")
    networkPolicy: NetworkPolicy = Field(default_factory=NetworkPolicy, description="NetworkPolicies.")
    gateway: Gateway = Field(description="The gateway (REST API and portal).")
    registry: Component = Field(description="The environment registry service.")
    builder: Builder = Field(description="The builder service.")
    runner: Runner = Field(description="The runner service.")
    audit: Audit = Field(description="The audit service.")
    migrations: Migrations = Field(description="The migration hook Job.")
    global_: dict[str, Any] = Field(default_factory=dict, alias="global", description="Helm's global values.")


def generate() -> str:
    schema = Values.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(generate())
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
