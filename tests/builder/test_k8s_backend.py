"""The kubernetes build backend: its manifests as data, and its control loop against a FAKE
Kubernetes API server (kmock, real HTTP) with the context in a fake S3 (moto, real HTTP).

No Kubernetes API server runs here: the fake only stores objects, and a small fake Job controller
in this file plays the kubelet's part (it fetches the context from the presigned URL like the init
container would and reports a terminated build container).
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import kmock as kmocklib
import kubernetes
import kubernetes_validate
import pytest
from reprolab_builder import k8s_manifests as m
from reprolab_builder.backends import BuildError
from reprolab_builder.backends.kubernetes import KubernetesBackend, deterministic_tar
from reprolab_builder.config import BuilderSettings
from reprolab_common.objectstore import LocalObjectStore, ObjectStoreUnsupported, S3ObjectStore

K8S_VERSION = kubernetes_validate.latest_version()
DIGEST = "sha256:" + "ab" * 32
JOBS = kmocklib.resource("batch/v1/jobs")
PODS = kmocklib.resource("v1/pods")


def job(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        name="reprolab-build-abc", namespace="reprolab", builder_image="quay.io/buildah/stable:v1.37",
        context_url="https://s3.example.org/b/build-contexts/abc.tar?X-Amz-Signature=x",
        image_ref="registry.example.org/ws/env:v1", registry_secret="registry-auth",
        labels=m.build_labels("abc"), resources={"requests": {"cpu": "1", "memory": "1Gi"}},
        active_deadline_seconds=1800, insecure_registry=False,
    )
    return m.make_build_job(**(kwargs | overrides))


# -- manifests as data ---------------------------------------------------------------------------

@pytest.mark.parametrize("manifest", [job(), job(insecure_registry=True), *m.make_builder_rbac(namespace="reprolab")],
                         ids=lambda d: d["kind"])
def test_manifests_validate_against_the_openapi_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_job_is_single_shot_fetches_restricted_and_builds_at_baseline() -> None:
    spec = job()["spec"]
    pod = spec["template"]["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 1800
    assert spec["ttlSecondsAfterFinished"] > 0
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (fetch,) = pod["initContainers"]
    assert fetch["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    # The build needs a user namespace (tests/kube/test_build_pod.py runs it): three baseline
    # capabilities, escalation for newuidmap's file capabilities, the chart's Localhost seccomp profile.
    (build,) = pod["containers"]
    assert build["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": True,
        "capabilities": {"drop": ["ALL"], "add": ["SETUID", "SETGID", "SYS_CHROOT"]},
        "seccompProfile": {"type": "Localhost", "localhostProfile": "reprolab-build.json"}}
    other = job(seccomp_profile="profiles/build.json")["spec"]["template"]["spec"]["containers"][0]
    assert other["securityContext"]["seccompProfile"]["localhostProfile"] == "profiles/build.json"
    for container in pod["initContainers"] + pod["containers"]:
        assert "privileged" not in container["securityContext"]
    assert not any("hostPath" in v for v in pod["volumes"])


def test_job_builds_reproducibly_and_reports_the_digest() -> None:
    pod = job()["spec"]["template"]["spec"]
    (build,) = pod["containers"]
    env = {e["name"]: e["value"] for e in build["env"]}
    assert env["BUILDAH_ISOLATION"] == "chroot" and env["STORAGE_DRIVER"] == "vfs"
    script = build["command"][-1]
    assert "buildah bud --timestamp 0 --identity-label=false" in script
    assert "--tls-verify=true" in script and "--tls-verify=false" not in script
    assert "buildah push --tls-verify=true" in script and "--digestfile /dev/termination-log" in script
    assert build["terminationMessagePath"] == "/dev/termination-log"
    assert "--tls-verify=false" in job(insecure_registry=True)["spec"]["template"]["spec"]["containers"][0][
        "command"][-1]
    # The context arrives through the init container into an emptyDir shared with the build.
    (fetch,) = pod["initContainers"]
    assert {"name": "CONTEXT_URL", "value": job()["spec"]["template"]["spec"]["initContainers"][0]["env"][0][
        "value"]} in fetch["env"]
    assert {"name": "workspace", "emptyDir": {}} in pod["volumes"]
    secret = next(v for v in pod["volumes"] if v["name"] == "registry-auth")["secret"]
    assert secret["secretName"] == "registry-auth" and secret["items"] == [{"key": "auth.json", "path": "auth.json"}]


def test_labels() -> None:
    manifest = job()
    for labels in (manifest["metadata"]["labels"], manifest["spec"]["template"]["metadata"]["labels"]):
        assert labels["reprolab.org/build-id"] == "abc"
        assert labels["app.kubernetes.io/name"] == "reprolab"
        assert labels["app.kubernetes.io/component"] == "image-build"


def test_rbac_is_namespaced_and_minimal() -> None:
    sa, role, binding = m.make_builder_rbac(namespace="reprolab")
    assert {o["metadata"]["namespace"] for o in (sa, role, binding)} == {"reprolab"}
    assert role["kind"] == "Role"  # never a ClusterRole
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("batch", "jobs"), ("", "pods"), ("", "pods/log")}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "reprolab"}]


def test_deterministic_tar(tmp_path: Path) -> None:
    for name in ("a", "b"):
        ctx = tmp_path / name / "ctx"
        (ctx / "sub").mkdir(parents=True)
        (ctx / "Containerfile").write_text("FROM x\n")
        (ctx / "sub" / "run.sh").write_text("#!/bin/sh\n")
        (ctx / "sub" / "run.sh").chmod(0o700 if name == "a" else 0o755)
    deterministic_tar(tmp_path / "a" / "ctx", tmp_path / "a.tar")
    deterministic_tar(tmp_path / "b" / "ctx", tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_local_store_cannot_presign(tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreUnsupported, match="kubernetes build backend needs"):
        LocalObjectStore(tmp_path).presigned_get_url("build-contexts/x.tar", 60)


# -- the control loop against the fake API server --------------------------------------------------

@pytest.fixture
def s3_store(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3ObjectStore:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return S3ObjectStore(f"k8s{tmp_path.name[-20:].lower().replace('_', '-')}x", endpoint_url=moto_url,
                         region="us-east-1")


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    ctx = tmp_path / "context"
    ctx.mkdir()
    (ctx / "Containerfile").write_text("FROM localhost/reprolab/bookworm-python:latest\nCOPY hello.txt /\n")
    (ctx / "hello.txt").write_text("hello\n")
    return ctx


PodOutcome = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def succeeded(job_obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    terminated = {"exitCode": 0, "reason": "Completed", "message": DIGEST + "\n"}
    return ({"phase": "Succeeded", "containerStatuses": [_status(terminated)]},
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})


def failed(job_obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    terminated = {"exitCode": 1, "reason": "Error",
                  "message": 'error building at STEP "RUN pip install nope": exit status 1\n'}
    return ({"phase": "Failed", "containerStatuses": [_status(terminated)]},
            {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                          "message": "Job has reached the specified backoff limit"}]})


def _status(terminated: dict[str, Any]) -> dict[str, Any]:
    return {"name": m.BUILD_CONTAINER, "image": "buildah", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": terminated}}


async def fake_job_controller(kmock: Any, outcome: PodOutcome | None, fetched: dict[str, bytes]) -> None:
    """Plays the Job controller and kubelet of the FAKE API server: for each new Job it fetches the
    context like the init container would, then adds a finished pod and the Job's final status."""
    seen: set[str] = set()
    while True:
        for (resource, namespace, name), obj in list(kmock.objects.items()):
            if resource != JOBS or obj.deleted or name in seen:
                continue
            seen.add(name)
            template = copy.deepcopy(obj.raw)["spec"]["template"]
            url = template["spec"]["initContainers"][0]["env"][0]["value"]
            async with httpx.AsyncClient() as http:  # no credentials: the presigned URL is enough
                resp = await http.get(url)
            fetched[name] = resp.content if resp.status_code == 200 else b""
            if outcome is None:
                continue  # a cluster that never runs the pod
            pod_status, job_status = outcome(obj.raw)
            kmock.objects[PODS, namespace, f"{name}-x7k2p"] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{name}-x7k2p", "namespace": namespace,
                             "labels": template["metadata"]["labels"]},
                "spec": template["spec"], "status": pod_status,
            }
            obj.patch({"status": job_status})
        await asyncio.sleep(0.02)


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the backend uses."""
    kmock.resources["batch/v1/jobs"] = {"namespaced": True, "kind": "Job", "verbs": {"create", "get", "delete"}}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": {"list", "get"},
                                  "subresources": {"log"}}
    kmock["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << b"STEP 1/2: FROM base\nSTEP 2/2: COPY\n"
    return kmock


def make_backend(kmock: Any, store: S3ObjectStore, **kwargs: Any) -> KubernetesBackend:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    return KubernetesBackend(BuilderSettings(backend="kubernetes", kubernetes_namespace="builds"), store,
                             api_client=kubernetes.client.ApiClient(configuration), poll_interval=0.05, **kwargs)


async def run_build(kmock: Any, backend: KubernetesBackend, context: Path, outcome: PodOutcome | None
                    ) -> tuple[Any, list[str], dict[str, bytes]]:
    fetched: dict[str, bytes] = {}
    lines: list[str] = []
    controller = asyncio.create_task(fake_job_controller(kmock, outcome, fetched))
    try:
        result: Any = await asyncio.to_thread(backend.build_and_push, context, "registry.example.org/ws/env:v1",
                                              log=lines.append)
    except BuildError as exc:
        result = exc
    finally:
        controller.cancel()
    return result, lines, fetched


def job_keys(kmock: Any) -> list[tuple[Any, str, str]]:
    return [key for key in kmock.objects if key[0] == JOBS]


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {i.name: tar.extractfile(i).read() for i in tar.getmembers() if i.isfile()}


async def test_successful_build_returns_the_digest(fake_k8s: Any, s3_store: S3ObjectStore, context_dir: Path) -> None:
    result, lines, fetched = await run_build(fake_k8s, make_backend(fake_k8s, s3_store), context_dir, succeeded)

    assert not isinstance(result, BaseException), result
    assert result.digest == DIGEST and result.image_ref == "registry.example.org/ws/env:v1"
    assert "STEP 2/2: COPY" in lines
    (key,) = job_keys(fake_k8s)
    assert key[1] == "builds"
    assert fake_k8s.objects[key].deleted  # the Job is removed once the build is over
    assert fake_k8s["delete"][0].data["propagationPolicy"] == "Background"
    created = fake_k8s.objects[key].history[0]
    kubernetes_validate.validate(dict(created.raw), K8S_VERSION, strict=True)
    # The context really was in S3 at the presigned URL, byte for byte what was tarred ...
    assert untar(fetched[key[2]]) == {"Containerfile": (context_dir / "Containerfile").read_bytes(),
                                      "hello.txt": b"hello\n"}
    # ... and is cleaned up afterwards.
    assert not s3_store.exists(f"build-contexts/{key[2].removeprefix('reprolab-build-')}.tar")


async def test_failed_pod_raises_with_its_message(fake_k8s: Any, s3_store: S3ObjectStore, context_dir: Path) -> None:
    result, _lines, fetched = await run_build(fake_k8s, make_backend(fake_k8s, s3_store), context_dir, failed)

    assert isinstance(result, BuildError)
    assert 'error building at STEP "RUN pip install nope": exit status 1' in str(result)
    assert "BackoffLimitExceeded" in str(result)
    (key,) = job_keys(fake_k8s)
    assert fake_k8s.objects[key].deleted
    assert "Containerfile" in untar(fetched[key[2]])


async def test_deadline_deletes_the_job(fake_k8s: Any, s3_store: S3ObjectStore, context_dir: Path) -> None:
    backend = make_backend(fake_k8s, s3_store, deadline_seconds=1, watch_slack_seconds=0)
    result, _lines, _fetched = await run_build(fake_k8s, backend, context_dir, None)

    assert isinstance(result, BuildError) and "did not finish within 1s" in str(result)
    (key,) = job_keys(fake_k8s)
    assert fake_k8s.objects[key].deleted


async def test_api_server_down(s3_store: S3ObjectStore, context_dir: Path) -> None:
    from reprolab_common.natsserver import free_port

    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    backend = KubernetesBackend(BuilderSettings(backend="kubernetes"), s3_store,
                                api_client=kubernetes.client.ApiClient(configuration))
    with pytest.raises(BuildError, match="Kubernetes API server is unreachable"):
        await asyncio.to_thread(backend.build_and_push, context_dir, "registry.example.org/ws/env:v1",
                                log=lambda _: None)
    assert not list(s3_store.client.list_objects_v2(Bucket=s3_store.bucket).get("Contents", []))


async def test_the_charts_builder_role_grants_exactly_what_the_backend_uses(
        fake_k8s: Any, s3_store: S3ObjectStore, context_dir: Path) -> None:
    """Every request of a succeeding and a failing build is allowed by the chart's Role, and nothing more."""
    from tests.chart.chartlib import documents, load_values, render, role_grants, used_verbs

    await run_build(fake_k8s, make_backend(fake_k8s, s3_store), context_dir, succeeded)
    await run_build(fake_k8s, make_backend(fake_k8s, s3_store), context_dir, failed)

    docs = documents(render(load_values("required.yaml")))
    used = used_verbs(fake_k8s)
    assert ("batch", "jobs", "create") in used and ("", "pods/log", "get") in used
    assert role_grants(docs, "rl-reprolab-builder") == used
