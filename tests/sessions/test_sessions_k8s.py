"""Kubernetes sessions: the manifests as data (strict schemas 1.29-1.37, Pod Security "restricted") and the
control loop against a FAKE Kubernetes API server (kmock's emulator, real HTTP). The pod itself is
executed with `podman kube play` in test_sessions_local.py, which has the built session image."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import kmock as kmocklib
import kubernetes
import kubernetes_validate
import pytest
from reprolab_runner.sessions import manifests
from reprolab_runner.sessions.kube import KubernetesSessions
from reprolab_runner.sessions.targets import SessionSpec, home_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
from podsecurity import restricted_violations  # noqa: E402

K8S_VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]
SID = "0b6a1c3e-5a7e-4f7e-9d2a-3c1f2e4d5b6a"
PODS = kmocklib.resource("v1/pods")
SERVICES = kmocklib.resource("v1/services")
SECRETS = kmocklib.resource("v1/secrets")
CLAIMS = kmocklib.resource("v1/persistentvolumeclaims")
POLICIES = kmocklib.resource("networking.k8s.io/v1/networkpolicies")


def spec(network: str = "index", sid: str = SID) -> SessionSpec:
    return SessionSpec(session_id=sid, workspace="course", owner_id="user-1", token="t0ken" * 8,
                       image="registry.example.org/course/py@sha256:" + "ab" * 32, cpu_millis=1500,
                       memory_bytes=2 << 30, pids=512, network=network)


def everything(network: str = "index") -> list[dict[str, Any]]:
    key = home_key("inst", "course", "user-1")
    common = {"namespace": "sessions", "installation": "inst", "home_key": key}
    return [manifests.home_claim(home_key=key, namespace="sessions", size_bytes=5 << 30, installation="inst"),
            manifests.token_secret(spec(network), **common), manifests.pod(spec(network), **common),
            manifests.service(spec(network), **common),
            manifests.network_policy(spec(network), index_cidrs=["151.101.0.0/16"],
                                     gateway_labels={"app.kubernetes.io/component": "gateway"}, **common),
            *manifests.runner_rbac("sessions")]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("network", ["index", "none"])
def test_manifests_validate_strictly(version: str, network: str) -> None:
    for manifest in everything(network):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_pod_is_restricted_runs_as_the_student_and_keeps_the_entrypoint() -> None:
    pod = manifests.pod(spec(), namespace="sessions", installation="inst", home_key="k")
    assert restricted_violations(pod["spec"]) == []
    (c,) = pod["spec"]["containers"]
    assert "command" not in c and c["args"][:2] == ["python3", "/opt/reprolab/session/server.py"]
    assert f"--ServerApp.base_url=/sessions/{SID}/" in c["args"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000 and pod["spec"]["automountServiceAccountToken"] is False
    assert {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": f"session-{SID}", "key": "token"}}} \
        in c["env"]
    assert "t0ken" not in str(pod)  # the token is in the Secret only
    assert pod["spec"]["volumes"][0] == {"name": "home", "persistentVolumeClaim": {"claimName": "claim-k"}}


def test_network_none_allows_no_egress_and_index_only_the_index() -> None:
    common = {"namespace": "s", "installation": "", "home_key": "k", "gateway_labels": {"a": "b"}}
    none = manifests.network_policy(spec("none"), index_cidrs=["151.101.0.0/16"], **common)
    assert none["spec"]["egress"] == [] and none["spec"]["policyTypes"] == ["Ingress", "Egress"]
    index = manifests.network_policy(spec("index"), index_cidrs=["151.101.0.0/16"], **common)
    assert index["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "151.101.0.0/16"}}]
    assert index["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_homes_are_per_installation_workspace_and_user() -> None:
    keys = {home_key(i, w, u) for i in ("a", "b") for w in ("w1", "w2") for u in ("u1", "u2")}
    assert len(keys) == 8
    claim = manifests.home_claim(home_key=home_key("a", "w1", "u1"), namespace="s", size_bytes=1 << 30)
    assert claim["metadata"]["name"].startswith("claim-") and "u1" not in claim["metadata"]["name"]


# -- the control loop against the FAKE API server ----------------------------------------------------


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the session target uses."""
    verbs = {"create", "get", "list", "delete"}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": verbs}
    kmock.resources["v1/services"] = {"namespaced": True, "kind": "Service", "verbs": verbs}
    kmock.resources["v1/secrets"] = {"namespaced": True, "kind": "Secret", "verbs": verbs}
    kmock.resources["v1/persistentvolumeclaims"] = {"namespaced": True, "kind": "PersistentVolumeClaim",
                                                    "verbs": verbs}
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = {"namespaced": True, "kind": "NetworkPolicy",
                                                               "verbs": verbs}
    return kmock


def make_target(kmock: Any) -> KubernetesSessions:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    return KubernetesSessions(installation="inst", namespace="sessions", index_cidrs=["151.101.0.0/16"],
                              api_client=kubernetes.client.ApiClient(configuration))


async def call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)  # the target is sync; the FAKE serves on this loop


async def test_start_stop_and_restart_keep_the_home_claim(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    started = await call(target.start, spec())
    name = f"session-{SID}"
    assert started.handle == f"sessions/{name}"
    assert started.upstream_url == f"http://{name}.sessions.svc:8888/sessions/{SID}/"
    claim = f"claim-{home_key('inst', 'course', 'user-1')}"
    for resource, obj in ((PODS, name), (SERVICES, name), (SECRETS, name), (POLICIES, name), (CLAIMS, claim)):
        assert (resource, "sessions", obj) in fake_k8s.objects, (resource, obj)
        kubernetes_validate.validate(dict(fake_k8s.objects[resource, "sessions", obj].history[0].raw),
                                     K8S_VERSIONS[-1], strict=True)
    # the policy is in place before the pod exists
    kinds = [r.resource for r in fake_k8s["post"]]
    assert kinds.index(POLICIES) < kinds.index(PODS)
    assert await call(target.owned) == {SID: started.handle}
    assert await call(target.alive, started.handle) == (True, "")

    # the kubelet of the FAKE: the server died
    fake_k8s.objects[PODS, "sessions", name].patch({"status": {"phase": "Failed", "containerStatuses": [
        {"name": "notebook", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}})
    alive, why = await call(target.alive, started.handle)
    assert not alive and "OOMKilled" in why

    await call(target.stop, started.handle)
    for resource in (PODS, SERVICES, SECRETS, POLICIES):
        assert fake_k8s.objects[resource, "sessions", name].deleted, resource
    assert not fake_k8s.objects[CLAIMS, "sessions", claim].deleted  # the home stays
    assert await call(target.alive, started.handle) == (False, "the session's pod no longer exists")
    await call(target.stop, started.handle)  # idempotent

    # a new session of the same user and workspace mounts the same claim (created once: 409 is fine)
    other = "9c1d2e3f-0000-4000-8000-000000000001"
    again = await call(target.start, spec(sid=other))
    pod = fake_k8s.objects[PODS, "sessions", f"session-{other}"].raw
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    await call(target.stop, again.handle)
