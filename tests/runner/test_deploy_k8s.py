"""The kubernetes serving target against a FAKE Kubernetes API server (kmock's emulator, real HTTP) and
moto's S3 (a FAKE of AWS over real HTTP, real presigned URLs): the five objects of a model version
(ConfigMap, Secret, Deployment, Service, HPA) created in the runs' namespace with the installation's
labels and Pod Security "restricted", failures of its pods reported with their reason, everything
deleted on stop, API errors as TargetErrors; and the Deployer deploying on it.

No Kubernetes API server runs here: the fake only stores objects, so the tests play the Deployment
controller and the kubelet themselves, by writing the Deployment's status and the pod (``available``,
``add_pod``). The Deployment's pod itself is executed for real by podman in tests/kube/test_model_pods.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import kmock as kmocklib
import kubernetes
import kubernetes_validate
import pytest
from reprolab.v1 import common_pb2, serving_pb2
from reprolab_common import registrytoken as rt
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.objectstore import LocalObjectStore, S3ObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_runner.config import RunnerSettings
from reprolab_runner.deploy import manifests as m
from reprolab_runner.deploy.api import ModelApi
from reprolab_runner.deploy.deployer import Deployer, serving_target
from reprolab_runner.deploy.engine import MODEL_LABEL, ServingSpec, wait_ready
from reprolab_runner.deploy.k8s import EXPIRES_ANNOTATION, KubernetesServing
from reprolab_runner.deploy.monitoring import Monitor
from reprolab_runner.models import MIGRATIONS, Output, Run
from reprolab_runner.sessions.targets import Started
from reprolab_runner.targets.base import TargetError

from tests.chart.podsecurity import restricted_violations

K8S_VERSION = kubernetes_validate.latest_version()
NS = "runs"
INSTALLATION = "inst-1"
IMAGE = "registry.example.org/ws/env@sha256:" + "ab" * 32
DEPLOYMENTS = kmocklib.resource("apps/v1/deployments")
PODS = kmocklib.resource("v1/pods")
SECRETS = kmocklib.resource("v1/secrets")
CONFIGMAPS = kmocklib.resource("v1/configmaps")
SERVICES = kmocklib.resource("v1/services")
HPAS = kmocklib.resource("autoscaling/v2/horizontalpodautoscalers")
POLICIES = kmocklib.resource("networking.k8s.io/v1/networkpolicies")
SCORE = textwrap.dedent("""
    def init():
        pass

    def run(inputs):
        return ["virginica" if row[2] > 2.5 else "setosa" for row in inputs["input-0"]]
""").encode()
SHA = hashlib.sha256(SCORE).hexdigest()
LOG = b"fetching score.py\nartifact digest mismatch: 0000\n"


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the serving target uses."""
    kmock.resources["apps/v1/deployments"] = {"namespaced": True, "kind": "Deployment",
                                              "verbs": {"create", "get", "list", "patch", "delete"}}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": {"list", "get"},
                                  "subresources": {"log"}}
    for resource, kind in (("v1/configmaps", "ConfigMap"), ("v1/secrets", "Secret"), ("v1/services", "Service"),
                           ("autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler"),
                           ("networking.k8s.io/v1/networkpolicies", "NetworkPolicy")):
        kmock.resources[resource] = {"namespaced": True, "kind": kind, "verbs": {"create", "patch", "delete"}}
    kmock["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << LOG
    return kmock


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        mp.setenv(key, "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    mp.undo()


@pytest.fixture
def s3(moto_url: str, aws_env: None) -> S3ObjectStore:
    store = S3ObjectStore(f"models-{uuid.uuid4().hex[:10]}", endpoint_url=moto_url, region="us-east-1")
    store.put_bytes("runs/r1/outputs/score.py", SCORE)
    return store


def api_client(kmock: Any) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    return kubernetes.client.ApiClient(configuration)


def make_target(kmock: Any, store: Any, **settings: Any) -> KubernetesServing:
    target = KubernetesServing(SimpleNamespace(kubernetes_namespace=NS, kubernetes_model_ready_seconds=20,
                                               **settings),
                               installation=INSTALLATION, store=store, api_client=api_client(kmock))
    target.poll_seconds = 0.05
    return target


def spec(version: int = 3, **overrides: Any) -> ServingSpec:
    kw: dict[str, Any] = dict(model_id=f"ws/iris/{version}", workspace="ws", name="iris", version=version, image=IMAGE,
                              artifact_name="score.py", artifact_key="runs/r1/outputs/score.py", artifact_sha256=SHA,
                              cpu_millis=500, memory_bytes=256 << 20)
    return ServingSpec(**(kw | overrides))


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)  # the target is sync; the FAKE serves on this loop


def live(kmock: Any) -> set[tuple[str, str]]:
    return {(o.get("kind"), o["metadata"]["name"]) for o in kmock.objects.values() if not o.deleted}


def requests_to(kmock: Any, method: str, resource: Any) -> list[Any]:
    return [r for r in kmock[method] if r.resource == resource]


def available(kmock: Any, name: str) -> None:
    """Play the Deployment controller: every replica updated and available (readiness probe passed)."""
    kmock.objects[DEPLOYMENTS, NS, name].patch({"status": {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}})


def add_pod(kmock: Any, name: str, status: dict[str, Any], suffix: str = "7d9f-x2k4p") -> str:
    """Play the ReplicaSet controller and the kubelet: the Deployment's pod with this status."""
    template = kmock.objects[DEPLOYMENTS, NS, name].raw["spec"]["template"]
    pod = f"{name}-{suffix}"
    kmock.objects[PODS, NS, pod] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": NS, "labels": template["metadata"]["labels"],
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": template["spec"], "status": status}
    return pod


def crash_looping_init(message: str = "artifact digest mismatch: 0000") -> dict[str, Any]:
    return {"phase": "Pending", "initContainerStatuses": [{
        "name": "fetch-artifact", "ready": False, "restartCount": 3, "image": IMAGE, "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}}}],
        "containerStatuses": [{"name": "server", "ready": False, "restartCount": 0, "image": IMAGE, "imageID": "",
                               "state": {"waiting": {"reason": "PodInitializing"}}}]}


NAME = m.name_for(spec())
KINDS = ["NetworkPolicy", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"]


# -- the target -------------------------------------------------------------------------------------

async def test_start_creates_five_restricted_objects_and_a_working_presigned_url(
        fake_k8s: Any, s3: S3ObjectStore) -> None:
    started = await call(make_target(fake_k8s, s3).start, spec())
    assert started == Started(handle=f"{NS}/{NAME}", upstream_url=f"http://{NAME}.{NS}.svc:80")
    posts = [(r.data["kind"], r.data["metadata"]["name"], r.namespace) for r in fake_k8s["post"]]
    assert posts == [("NetworkPolicy", NAME, NS), ("ConfigMap", f"{NAME}-server", NS),
                     ("Secret", f"{NAME}-artifact", NS), ("Deployment", NAME, NS), ("Service", NAME, NS),
                     ("HorizontalPodAutoscaler", NAME, NS)]
    objects = {r.data["kind"]: dict(r.data) for r in fake_k8s["post"]}
    for obj in objects.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == NS
        labels = obj["metadata"]["labels"]
        assert labels["reprolab.org/installation"] == INSTALLATION
        assert labels["app.kubernetes.io/managed-by"] == "reprolab-runner"
        assert labels["app.kubernetes.io/instance"] == NAME and labels["reprolab.org/model-version"] == "3"
    dep = objects["Deployment"]
    assert dep["metadata"]["annotations"][MODEL_LABEL] == "ws/iris/3"
    pod = dep["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    for c in pod["initContainers"] + pod["containers"]:
        assert c["image"] == IMAGE and c["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False and "imagePullSecrets" not in pod
    assert objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == NAME
    assert objects["Service"]["spec"]["selector"] == {"app.kubernetes.io/instance": NAME}
    # only the gateway's pods reach the server; the pod reaches the object store (and DNS) only
    policy = objects["NetworkPolicy"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": NAME}}
    assert policy["ingress"] == [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {
        "app.kubernetes.io/component": "gateway"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}]
    store = policy["egress"][0]
    assert store["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "169.254.0.0/16" in store["to"][0]["ipBlock"]["except"]  # no cloud metadata, no cluster
    # the presigned URL is in the Secret only, and it really fetches the run's artifact from the store
    url = objects["Secret"]["stringData"]["url"]
    assert url not in json.dumps(dep) and "Signature=" in url
    async with httpx.AsyncClient() as http:
        got = await http.get(url)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == SHA
    init_env = {e["name"]: e for e in pod["initContainers"][0]["env"]}
    assert init_env["ARTIFACT_SHA256"]["value"] == SHA
    assert init_env["ARTIFACT_URL"]["valueFrom"]["secretKeyRef"]["name"] == f"{NAME}-artifact"


async def test_ready_when_the_deployment_is_available_alive_reports_a_failing_init_container(
        fake_k8s: Any, s3: S3ObjectStore) -> None:
    target = make_target(fake_k8s, s3)
    started = await call(target.start, spec())
    with httpx.Client() as http:
        assert not await call(target.ready, started, http)
        assert await call(target.alive, started.handle) == (True, "")  # pending, nothing wrong yet
        add_pod(fake_k8s, NAME, crash_looping_init())
        alive, why = await call(target.alive, started.handle)
        assert not alive
        assert why.startswith("init container fetch-artifact CrashLoopBackOff: back-off 40s")
        assert "it exited 1 (Error): artifact digest mismatch: 0000" in why
        # the logs are the init container's previous run (the current one waits to restart)
        assert await call(target.logs, started.handle) == LOG.decode()
        (log_request,) = [r for r in fake_k8s["get"] if r.url.path.endswith("/log")]
        assert log_request.params["container"] == "fetch-artifact" and log_request.params["previous"] == "true"
        assert log_request.params["tailLines"] == "30"
        with pytest.raises(TargetError, match="CrashLoopBackOff.*artifact digest mismatch"):
            await call(wait_ready, target, started)
        available(fake_k8s, NAME)
        assert await call(target.ready, started, http)
        assert await call(target.alive, started.handle) == (True, "")  # one replica serves: alive
    assert 0 <= await call(wait_ready, target, started) < 5


@pytest.mark.parametrize(("status", "reason"), [
    ({"phase": "Pending", "containerStatuses": [{"name": "server", "ready": False, "restartCount": 0, "image": IMAGE,
                                                 "imageID": "", "state": {"waiting": {
                                                     "reason": "ImagePullBackOff",
                                                     "message": "Back-off pulling image"}}}]},
     "container server ImagePullBackOff: Back-off pulling image"),
    ({"phase": "Running", "initContainerStatuses": [{
        "name": "fetch-artifact", "ready": False, "restartCount": 0, "image": IMAGE, "imageID": "",
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "HTTP Error 403: Forbidden"}}}]},
     "init container fetch-artifact exited 1 (Error): HTTP Error 403: Forbidden"),
    ({"phase": "Running", "containerStatuses": [{
        "name": "server", "ready": False, "restartCount": 5, "image": IMAGE, "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": "cannot load score.py"}}}]},
     "container server CrashLoopBackOff: back-off 5m0s; it exited 2 (Error): cannot load score.py"),
    ({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."},
     "the model server's pod failed: Evicted The node was low on resource: memory."),
])
async def test_alive_names_why_a_pod_does_not_serve(fake_k8s: Any, s3: S3ObjectStore, status: dict[str, Any],
                                                   reason: str) -> None:
    target = make_target(fake_k8s, s3)
    started = await call(target.start, spec())
    add_pod(fake_k8s, NAME, status)
    assert await call(target.alive, started.handle) == (False, reason)


async def test_alive_reports_deployment_conditions_and_a_deleted_deployment(fake_k8s: Any, s3: S3ObjectStore) -> None:
    target = make_target(fake_k8s, s3)
    started = await call(target.start, spec())
    fake_k8s.objects[DEPLOYMENTS, NS, NAME].patch({"status": {"conditions": [{
        "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": 'pods "x" is forbidden: violates PodSecurity "restricted:latest"'}]}})
    alive, why = await call(target.alive, started.handle)
    assert not alive and why == ('the Deployment cannot create pods: pods "x" is forbidden: violates PodSecurity '
                                 '"restricted:latest"')
    fake_k8s.objects[DEPLOYMENTS, NS, NAME].delete()
    assert await call(target.alive, started.handle) == (False, "the model server's Deployment no longer exists")


async def test_stop_removes_everything_and_is_idempotent(fake_k8s: Any, s3: S3ObjectStore) -> None:
    target = make_target(fake_k8s, s3)
    started = await call(target.start, spec())
    other = await call(target.start, spec(4))
    assert len(live(fake_k8s)) == 12
    await call(target.stop, started.handle)
    assert live(fake_k8s) == {(k, n.replace(NAME, m.name_for(spec(4)))) for k, n in [
        ("NetworkPolicy", NAME), ("ConfigMap", f"{NAME}-server"), ("Secret", f"{NAME}-artifact"), ("Deployment", NAME),
        ("Service", NAME), ("HorizontalPodAutoscaler", NAME)]}  # the other version is untouched
    assert {r.data["propagationPolicy"] for r in fake_k8s["delete"]} == {"Background"}
    await call(target.stop, started.handle)  # 404s are fine
    await call(target.stop, other.handle)
    assert live(fake_k8s) == set()
    with pytest.raises(TargetError, match="not a kubernetes model handle"):
        await call(target.stop, "no-namespace")


async def test_owned_lists_this_installations_models_by_label(fake_k8s: Any, s3: S3ObjectStore) -> None:
    target = make_target(fake_k8s, s3)
    a = await call(target.start, spec(3))
    b = await call(target.start, spec(4))
    # another installation's model server, and someone else's Deployment: the FAKE ignores label
    # selectors, the target does not
    theirs = KubernetesServing(SimpleNamespace(kubernetes_namespace=NS), installation="inst-2", store=s3,
                               api_client=api_client(fake_k8s))
    c = await call(theirs.start, spec(5))
    fake_k8s.objects[DEPLOYMENTS, NS, "unrelated"] = {"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "metadata": {"name": "unrelated", "namespace": NS}}
    assert await call(target.owned) == {"ws/iris/3": a.handle, "ws/iris/4": b.handle}
    assert await call(theirs.owned) == {"ws/iris/5": c.handle}
    listing = requests_to(fake_k8s, "get", DEPLOYMENTS)[0]
    assert listing.namespace == NS
    assert listing.params["labelSelector"] == ("app.kubernetes.io/name=reprolab-model,app.kubernetes.io/managed-by="
                                               f"reprolab-runner,reprolab.org/installation={INSTALLATION}")


async def test_a_second_start_replaces_what_an_earlier_attempt_left(fake_k8s: Any, s3: S3ObjectStore) -> None:
    target = make_target(fake_k8s, s3)
    await call(target.start, spec())
    await call(target.start, spec(cpu_millis=750))
    patched = [(r.resource, r.name) for r in fake_k8s["patch"]]
    assert patched == [(POLICIES, NAME), (CONFIGMAPS, f"{NAME}-server"), (SECRETS, f"{NAME}-artifact"),
                       (DEPLOYMENTS, NAME), (SERVICES, NAME), (HPAS, NAME)]
    (secret_patch,) = requests_to(fake_k8s, "patch", SECRETS)
    assert "Signature=" in secret_patch.data["stringData"]["url"]  # a fresh URL
    container = fake_k8s.objects[DEPLOYMENTS, NS, NAME]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["cpu"] == "750m"
    assert len(live(fake_k8s)) == 6


@pytest.mark.parametrize(("status", "words"), [
    (409, "409"), (404, "404"), (500, "500 Internal Server Error: etcdserver: request timed out")])
async def test_api_errors_become_target_errors(fake_k8s: Any, s3: S3ObjectStore, status: int, words: str) -> None:
    messages = {409: "services \"x\" already exists", 404: "namespaces \"runs\" not found",
                500: "etcdserver: request timed out"}
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": messages[status], "code": status}
    fake_k8s["post", SERVICES] << status << body
    if status == 409:  # a conflict the patch cannot mend either
        fake_k8s["patch", SERVICES] << 409 << body
    target = make_target(fake_k8s, s3)
    with pytest.raises(TargetError) as info:
        await call(target.start, spec())
    text = str(info.value)
    assert text.startswith("cannot start model ws/iris/3 on kubernetes: Kubernetes API error")
    assert str(status) in text and messages[status] in text
    assert live(fake_k8s) == set()  # what was created before the failure is removed again


async def test_unreachable_api_server_and_no_cluster(s3: S3ObjectStore, tmp_path: Path) -> None:
    from reprolab_common.natsserver import free_port

    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    target = KubernetesServing(SimpleNamespace(kubernetes_namespace=NS), installation=INSTALLATION, store=s3,
                               api_client=kubernetes.client.ApiClient(configuration))
    with pytest.raises(TargetError, match="unreachable"):
        await call(target.start, spec())
    with pytest.raises(TargetError, match="unreachable"):
        await call(target.owned)
    assert await call(target.logs, f"{NS}/{NAME}") == ""  # logs never fail a caller
    nowhere = KubernetesServing(SimpleNamespace(kubernetes_kubeconfig=str(tmp_path / "missing")),
                                installation=INSTALLATION, store=s3)
    with pytest.raises(TargetError, match="has no cluster"):
        await call(nowhere.owned)


async def test_the_local_object_store_cannot_serve_on_kubernetes(fake_k8s: Any, tmp_path: Path) -> None:
    target = make_target(fake_k8s, LocalObjectStore(tmp_path))
    with pytest.raises(TargetError, match="REPROLAB_OBJECT_STORE=s3"):
        await call(target.start, spec())
    with pytest.raises(TargetError, match="object key and sha256"):
        await call(target.start, spec(artifact_key=""))
    assert live(fake_k8s) == set()


async def test_renew_resigns_urls_and_pull_grants_before_they_expire(
        fake_k8s: Any, s3: S3ObjectStore, tmp_path: Path) -> None:
    """A new pod (reschedule, eviction, scale-up) fetches the artifact again, with the Secret's URL of
    that moment: the runner re-signs it (and the kubelet's one-image pull grant) at half its life."""
    auth = tmp_path / "runner-auth.json"
    auth.write_text(rt.auth_json("registry.example.org", rt.RUNNER, "runner-pw"))
    now = [1_000_000.0]
    target = make_target(fake_k8s, s3, registry_auth_file=auth, kubernetes_model_url_seconds=7200)
    target.clock = lambda: now[0]
    await call(target.start, spec())
    pull = fake_k8s.objects[SECRETS, NS, f"{NAME}-pull"].raw
    kubernetes_validate.validate(dict(pull), K8S_VERSION, strict=True)
    dep = fake_k8s.objects[DEPLOYMENTS, NS, NAME].raw
    assert dep["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": f"{NAME}-pull"}]
    assert dep["metadata"]["annotations"][EXPIRES_ANNOTATION] == str(1_000_000 + 7200)

    def grant_repo() -> str | None:
        data = fake_k8s.objects[SECRETS, NS, f"{NAME}-pull"]["data"]
        config = json.loads(base64.b64decode(data[".dockerconfigjson"]))
        auth_b64 = config["auths"]["registry.example.org"]["auth"]
        user, _, grant = base64.b64decode(auth_b64).decode().partition(":")
        assert user == rt.GRANT_USER and "runner-pw" not in json.dumps(config)
        return rt.check_grant("runner-pw", grant, now=now[0])

    assert grant_repo() == "ws/env"
    now[0] += 3000  # more than half of the life left: nothing to do
    assert await call(target.renew) == 0 and not requests_to(fake_k8s, "patch", SECRETS)
    now[0] += 1000
    assert await call(target.renew) == 1
    assert {r.name for r in requests_to(fake_k8s, "patch", SECRETS)} == {f"{NAME}-artifact", f"{NAME}-pull"}
    annotations = fake_k8s.objects[DEPLOYMENTS, NS, NAME]["metadata"]["annotations"]
    assert annotations[EXPIRES_ANNOTATION] == str(1_004_000 + 7200)
    now[0] += 7000  # past the first grant's expiry: the renewed one still pulls
    assert grant_repo() == "ws/env"
    url = fake_k8s.objects[SECRETS, NS, f"{NAME}-artifact"]["stringData"]["url"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == SCORE
    assert await call(target.renew) == 1  # and again at half of the new life


async def test_the_charts_models_role_grants_exactly_what_the_target_uses(
        fake_k8s: Any, s3: S3ObjectStore) -> None:
    """Every request of the target's whole life cycle (start, a repeated start, readiness, liveness with
    failing pods, logs, owned, renew, stop) is allowed by the chart's models Role, which allows nothing more;
    and the runner gets the setting that chooses the target."""
    from tests.chart.chartlib import documents, load_values, render, role_grants, used_verbs

    target = make_target(fake_k8s, s3, kubernetes_model_url_seconds=600)
    now = [1_000_000.0]
    target.clock = lambda: now[0]
    started = await call(target.start, spec())
    await call(target.start, spec())
    with httpx.Client() as http:
        await call(target.ready, started, http)
    add_pod(fake_k8s, NAME, crash_looping_init())
    await call(target.alive, started.handle)
    await call(target.logs, started.handle)
    await call(target.owned)
    now[0] += 400
    assert await call(target.renew) == 1
    await call(target.stop, started.handle)

    docs = documents(render(load_values("required.yaml")))
    used = used_verbs(fake_k8s)
    assert ("apps", "deployments", "create") in used and ("", "pods/log", "get") in used
    assert ("autoscaling", "horizontalpodautoscalers", "delete") in used and ("", "secrets", "patch") in used
    assert role_grants(docs, "rl-reprolab-runner-models") == used
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "rl-reprolab-runner-models"]
    assert role["metadata"]["namespace"] == "reprolab-runs"
    (runner,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rl-reprolab-runner"]
    env = {e["name"]: e.get("value") for e in runner["spec"]["template"]["spec"]["containers"][0]["env"]}
    settings = RunnerSettings.model_validate({
        "model_target": env["REPROLAB_RUNNER_MODEL_TARGET"],
        "kubernetes_model_max_replicas": env["REPROLAB_RUNNER_KUBERNETES_MODEL_MAX_REPLICAS"]})
    assert (settings.model_target, settings.kubernetes_model_max_replicas) == ("kubernetes", 4)
    # local serving has no Role
    values = load_values("required.yaml")
    values.setdefault("runner", {})["modelTarget"] = "local"
    assert not [d for d in documents(render(values)) if d["metadata"]["name"].endswith("-models")]


# -- the Deployer on the kubernetes target ------------------------------------------------------------

BOB = common_pb2.Actor(user_id="u-bob", username="bob")


@pytest.fixture
def world(database_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, fake_k8s: Any,
          s3: S3ObjectStore, tmp_path: Path) -> Iterator[SimpleNamespace]:
    for key, value in database_env.items():
        monkeypatch.setenv(key, value)
    common = CommonSettings()
    engine = make_engine(common, "runner")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    settings = RunnerSettings(common=common, model_target="kubernetes", kubernetes_namespace=NS,
                              installation=INSTALLATION, kubernetes_model_ready_seconds=20)
    target = KubernetesServing(settings, installation=INSTALLATION, store=s3, api_client=api_client(fake_k8s))
    target.poll_seconds = 0.05
    deployer = Deployer(settings=settings, sessions=sessions, store=s3, wake_outbox=lambda: None, target=target)
    api = ModelApi(settings=settings, sessions=sessions, deployer=deployer, wake_outbox=lambda: None,
                   monitoring=Monitor(settings=settings, sessions=sessions, store=s3, wake_outbox=lambda: None))
    yield SimpleNamespace(api=api, sessions=sessions, store=s3, target=target, settings=settings)
    engine.dispose()


def add_run(w: SimpleNamespace, score: bytes = SCORE) -> str:
    run_id = str(uuid.uuid4())
    key = f"runs/{run_id}/outputs/score.py"
    w.store.put_bytes(key, score)

    def _add(s):  # noqa: ANN001, ANN202
        s.add(Run(id=run_id, workspace="ws", environment="py", version=1, image=IMAGE, code_digest="sha256:x",
                  code_object_key="c", command_json="[]", target="kubernetes", cpu_millis=1000,
                  memory_bytes=1 << 30, pids=64, timeout_seconds=60, status="succeeded", requested_by="bob",
                  requested_by_id="u-bob", datasets_json="[]"))
        s.flush()
        s.add(Output(run_id=run_id, name="score.py", size=len(score), sha256=hashlib.sha256(score).hexdigest(),
                     object_key=key))
    in_transaction(w.sessions, _add)
    return run_id


async def deployment_created(kmock: Any, version: int) -> str:
    name = m.name_for(spec(version, model_id=f"ws/iris/{version}"))
    for _ in range(200):
        if (DEPLOYMENTS, NS, name) in kmock.objects and not kmock.objects[DEPLOYMENTS, NS, name].deleted:
            return name
        await asyncio.sleep(0.05)
    raise AssertionError(f"the deployer created no Deployment {name}")


async def test_the_deployer_serves_on_kubernetes_once_the_deployment_is_available(
        world: SimpleNamespace, fake_k8s: Any) -> None:
    v = await world.api.deploy(serving_pb2.DeployModelRequest(actor=BOB, workspace="ws", name="iris",
                                                              run_id=add_run(world), artifact="score.py"))
    assert (v.state, v.target) == ("deploying", "kubernetes")
    name = await deployment_created(fake_k8s, v.version)
    await asyncio.sleep(0.3)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=v.version))
    assert got.state == "deploying"  # created, not available yet
    available(fake_k8s, name)
    await asyncio.gather(*world.api.deployer.tasks)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=v.version))
    assert got.state == "serving", got.error
    route = await world.api.route(serving_pb2.RouteModelRequest(workspace="ws", name="iris"))
    assert route.upstream_url == f"http://{name}.{NS}.svc:80"
    # nothing was copied to the runner's host
    assert not (world.settings.common.data_dir / "models").exists()
    assert await call(world.target.owned) == {f"ws/iris/{v.version}": f"{NS}/{name}"}
    stopped = await world.api.stop(serving_pb2.StopModelRequest(actor=BOB, workspace="ws", name="iris",
                                                                 version=v.version))
    assert stopped.state == "stopped" and live(fake_k8s) == set()


async def test_the_deployer_fails_with_the_pods_reason_and_cleans_up(world: SimpleNamespace, fake_k8s: Any) -> None:
    v = await world.api.deploy(serving_pb2.DeployModelRequest(actor=BOB, workspace="ws", name="iris",
                                                              run_id=add_run(world), artifact="score.py"))
    name = await deployment_created(fake_k8s, v.version)
    add_pod(fake_k8s, name, crash_looping_init("artifact digest mismatch: 1234"))
    await asyncio.gather(*world.api.deployer.tasks)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=v.version))
    assert got.state == "failed"
    assert "init container fetch-artifact CrashLoopBackOff" in got.error
    assert "artifact digest mismatch: 1234" in got.error
    assert "its last output: fetching score.py" in got.error  # the init container's log
    assert {k for k, _ in live(fake_k8s)} == {"Pod"}  # the fake has no garbage collector for the pod


def test_the_model_target_setting_picks_the_target(s3: S3ObjectStore, tmp_path: Path) -> None:
    common = CommonSettings(data_dir=tmp_path)
    k8s = serving_target("kubernetes", RunnerSettings(common=common, model_target="kubernetes"), s3)
    assert isinstance(k8s, KubernetesServing) and (k8s.name, k8s.remote, k8s.namespace) == (
        "kubernetes", True, "reprolab-runs")
    with pytest.raises(ValueError, match="unknown model target 'cloud'"):
        serving_target("cloud", RunnerSettings(common=common), s3)
    assert RunnerSettings(common=common).model_target == "local"
