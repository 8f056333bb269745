"""charts/reprolab rendered with Helm's own engine (helm-python-sdk), checked as data: resources,
required configuration, schema, existingSecret forms, Pod Security and OpenAPI validity."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from reprolab_builder import k8s_manifests as build_manifests
from reprolab_runner.targets import k8s_manifests as run_manifests
from reprolab_runner.targets.base import Limits

from .chartlib import CHART, documents, load_values, pod_specs, render
from .podsecurity import baseline_violations, restricted_violations

K8S_VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]
# Gateway API is a CRD: kubernetes-validate knows only the core API, so HTTPRoute is checked by shape below.
CRD_KINDS = {"HTTPRoute"}


def kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((d["kind"], d["metadata"]["name"]) for d in docs)


def _schema_module() -> Any:
    spec = importlib.util.spec_from_file_location("reprolab_chart_values", CHART / "schema" / "values_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' postponed annotations through it
    spec.loader.exec_module(module)
    return module


# -- the schema ------------------------------------------------------------------------------------

def test_values_schema_json_is_generated_from_the_documented_models() -> None:
    """Drift check: edit schema/values_model.py, then run it to regenerate values.schema.json."""
    assert (CHART / "values.schema.json").read_text() == _schema_module().generate()


def test_values_yaml_satisfies_the_models() -> None:
    import yaml

    values = _schema_module().Values.model_validate(yaml.safe_load((CHART / "values.yaml").read_text()))
    assert values.builder.jobNamespace == "reprolab-builds" and values.nats.tls.enabled


def test_every_schema_property_is_documented() -> None:
    def walk(node: dict[str, Any], path: str) -> list[str]:
        missing = []
        for key, prop in node.get("properties", {}).items():
            if key != "global" and not prop.get("description"):
                missing.append(f"{path}.{key}")
        return missing

    schema = json.loads((CHART / "values.schema.json").read_text())
    missing = walk(schema, "") + [m for name, d in schema["$defs"].items() for m in walk(d, name)]
    assert not missing, missing


@pytest.mark.parametrize(("override", "message"), [
    ({"gateway": {"replicas": "two"}}, "replicas"),
    ({"gateway": {"replica": 2}}, "replica"),  # unknown keys are refused: a typo does not pass silently
    ({"image": {"digest": "sha256:nothex"}}, "digest"),
    ({"audit": {"origin": "has space"}}, "origin"),
])
def test_schema_refuses_bad_values_through_render(override: dict[str, Any], message: str) -> None:
    values = load_values("required.yaml")
    for key, sub in override.items():
        values.setdefault(key, {}).update(sub)
    with pytest.raises(helm.HelmError, match=message):
        render(values)


# -- required configuration (fail/required are only seen by render, not lint) ----------------------

def _without(path: str) -> dict[str, Any]:
    values = copy.deepcopy(load_values("required.yaml"))
    node = values
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    del node[last]
    return values


@pytest.mark.parametrize(("missing", "message"), [
    ("postgresql.url", "postgresql.url or postgresql.existingSecret is required"),
    ("nats.url", "nats.url is required"),
    ("nats.tls.caSecret", "nats.tls.caSecret is required"),
    ("nats.auth.runner", "nats.auth.runner needs user and password, or existingSecret"),
    ("objectStore.bucket", "objectStore.bucket is required"),
    ("objectStore.secretAccessKey", "objectStore.existingSecret, are required"),
    ("ociRegistry.host", "ociRegistry.host is required"),
    ("ociRegistry.password", "ociRegistry.existingSecret .key auth.json., are required"),
    ("audit.signingKeySecret", "every audit replica must sign with the same key"),
])
def test_render_fails_on_missing_required_config(missing: str, message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(_without(missing))


def test_render_fails_with_nothing_set() -> None:
    with pytest.raises(helm.HelmError, match="is required"):
        render(None)


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000"])
def test_a_loopback_registry_is_refused(host: str) -> None:
    values = load_values("required.yaml")
    values["ociRegistry"]["host"] = host
    with pytest.raises(helm.HelmError, match="must not be a loopback address"):
        render(values)


def test_notes_name_the_job_namespaces() -> None:
    notes = render(load_values("required.yaml"))["reprolab/templates/NOTES.txt"]
    assert "Builds run as Jobs in reprolab-builds, runs in reprolab-runs." in notes


def test_lint_is_clean() -> None:
    result = helm.lint(str(CHART), values=load_values("required.yaml"), strict=True)
    # Severity 1 is INFO ("icon is recommended"); warnings (2) and errors (4) fail.
    assert not result["errors"] and not [m for m in result["messages"] if m["severity"] > 1], result


# -- what is rendered ------------------------------------------------------------------------------

SERVICES = ("gateway", "registry", "builder", "runner", "audit")


def test_default_resources(default_docs: list[dict[str, Any]]) -> None:
    expected = {("Deployment", f"rl-reprolab-{s}") for s in SERVICES}
    expected |= {("ServiceAccount", f"rl-reprolab-{s}") for s in SERVICES}
    expected |= {("Secret", f"rl-reprolab-{s}-nats") for s in SERVICES}
    expected |= {("PodDisruptionBudget", f"rl-reprolab-{s}") for s in SERVICES}
    expected |= {("NetworkPolicy", f"rl-reprolab-{s}") for s in SERVICES}
    expected |= {("NetworkPolicy", "rl-reprolab-default-deny"), ("NetworkPolicy", "rl-reprolab-builds")}
    expected |= {("Role", "rl-reprolab-builder"), ("RoleBinding", "rl-reprolab-builder"),
                 ("Role", "rl-reprolab-runner"), ("RoleBinding", "rl-reprolab-runner"),
                 ("Role", "rl-reprolab-runner-models"), ("RoleBinding", "rl-reprolab-runner-models"),
                 ("Role", "rl-reprolab-runner-sessions"), ("RoleBinding", "rl-reprolab-runner-sessions"),
                 ("Service", "rl-reprolab-gateway"), ("Job", "rl-reprolab-migrations"),
                 ("Secret", "rl-reprolab-migrations"), ("Secret", "rl-reprolab-postgresql"),
                 ("Secret", "rl-reprolab-s3"), ("Secret", "rl-reprolab-registry-auth")}
    assert set(kinds(default_docs)) == expected
    assert len(kinds(default_docs)) == len(expected)


def test_everything_on_adds_ingress_route_hpa_and_drops_inline_secrets(full_docs: list[dict[str, Any]]) -> None:
    names = set(kinds(full_docs))
    assert {("Ingress", "rl-reprolab-gateway"), ("HTTPRoute", "rl-reprolab-gateway"),
            ("HorizontalPodAutoscaler", "rl-reprolab-gateway")} <= names
    # existingSecret everywhere: the chart creates no Secret at all.
    assert not [n for k, n in names if k == "Secret"]
    (gateway,) = [d for d in full_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rl-reprolab-gateway"]
    assert "replicas" not in gateway["spec"]  # the HPA owns it
    pod = gateway["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}] and pod["nodeSelector"] == {"node-role": "web"}
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.edu/reprolab/services@sha256:" + "1" * 64
    env = {e["name"]: e for e in container["env"]}
    assert env["REPROLAB_NATS_USER"]["valueFrom"]["secretKeyRef"] == {"name": "gw-bus", "key": "nats-user"}
    assert env["REPROLAB_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "gw-bus", "key": "nats-password"}
    assert env["REPROLAB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "reprolab-db", "key": "dsn"}
    assert env["REPROLAB_NATS_TLS_CA_FILE"]["value"] == "/etc/reprolab/nats-ca/ca.pem"
    assert env["REPROLAB_LOG_LEVEL"]["value"] == "DEBUG"
    # Behind the Ingress, X-Forwarded-For is believed from the ingress controller only (uvicorn's setting).
    assert env["FORWARDED_ALLOW_IPS"]["value"] == "10.42.0.0/16,10.43.0.10"
    (route,) = [d for d in full_docs if d["kind"] == "HTTPRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "rl-reprolab-gateway", "port": 80}]


def test_each_service_has_its_own_bus_identity(default_docs: list[dict[str, Any]]) -> None:
    (gateway,) = [d for d in default_docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("gateway")]
    assert "FORWARDED_ALLOW_IPS" not in {e["name"] for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    for service in SERVICES:
        (dep,) = [d for d in default_docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(service)]
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["REPROLAB_NATS_USER"]["valueFrom"]["secretKeyRef"]["name"] == f"rl-reprolab-{service}-nats"
        assert dep["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-m", f"reprolab_{service}"]
    secrets = {d["metadata"]["name"]: d for d in default_docs if d["kind"] == "Secret"}
    assert secrets["rl-reprolab-runner-nats"]["stringData"] == {"nats-user": "runner", "nats-password": "r-pw"}


def test_builder_uses_the_kubernetes_backend_and_a_real_registry(default_docs: list[dict[str, Any]]) -> None:
    (dep,) = [d for d in default_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rl-reprolab-builder"]
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REPROLAB_BUILDER_BACKEND"] == "kubernetes"
    assert env["REPROLAB_BUILDER_REGISTRY"] == "registry.example.edu"
    assert env["REPROLAB_BUILDER_KUBERNETES_NAMESPACE"] == "reprolab-builds"
    # The Secret build pods mount exists, in the build namespace, and holds a containers-auth.json.
    assert env["REPROLAB_BUILDER_KUBERNETES_REGISTRY_SECRET"] == "rl-reprolab-registry-auth"
    (auth,) = [d for d in default_docs if d["metadata"]["name"] == "rl-reprolab-registry-auth"]
    assert auth["metadata"]["namespace"] == "reprolab-builds"
    import base64
    auths = json.loads(auth["stringData"]["auth.json"])["auths"]
    assert base64.b64decode(auths["registry.example.edu"]["auth"]) == b"reprolab:registry-pw"


def test_the_gateway_issues_registry_tokens_only_with_the_issuer_secret(
        default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]) -> None:
    def gateway(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("gateway")]
        pod = dep["spec"]["template"]["spec"]
        return {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}, pod

    env, pod = gateway(full_docs)
    where = "/etc/reprolab/registry-token"
    assert env["REPROLAB_GATEWAY_REGISTRY_TOKEN_KEY_FILE"] == f"{where}/token-key.pem"
    assert env["REPROLAB_GATEWAY_REGISTRY_TOKEN_CERT_FILE"] == f"{where}/token-cert.pem"
    assert env["REPROLAB_GATEWAY_REGISTRY_CREDENTIALS_FILE"] == f"{where}/service-credentials.json"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "registry-token"]
    assert volume["secret"] == {"secretName": "reprolab-registry-token", "defaultMode": 0o400}
    assert {"name": "registry-token", "mountPath": where, "readOnly": True} in pod["containers"][0]["volumeMounts"]
    env, pod = gateway(default_docs)
    assert not any(k.startswith("REPROLAB_GATEWAY_REGISTRY_") for k in env)
    assert all(v["name"] != "registry-token" for v in pod["volumes"])
    # the runner gets only its own credentials (it mints each run's one-image pull grant)
    (runner,) = [d for d in full_docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("runner")]
    pod = runner["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["REPROLAB_RUNNER_REGISTRY_AUTH_FILE"] == "/etc/reprolab/registry-auth/auth.json"
    assert {"name": "registry-auth", "secret": {"secretName": "reprolab-runner-registry-auth", "defaultMode": 0o400}
            } in pod["volumes"]
    assert all(v["name"] != "registry-token" for v in pod["volumes"])


def test_runner_offers_the_kubernetes_target(default_docs: list[dict[str, Any]]) -> None:
    (dep,) = [d for d in default_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rl-reprolab-runner"]
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["REPROLAB_RUNNER_ENABLED_TARGETS"]) == ["kubernetes"]
    assert env["REPROLAB_RUNNER_KUBERNETES_NAMESPACE"] == "reprolab-runs"


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(default_docs: list[dict[str, Any]]) -> None:
    hooks = {d["kind"]: d["metadata"]["annotations"] for d in default_docs
             if d["metadata"]["name"] == "rl-reprolab-migrations"}
    assert hooks["Job"]["helm.sh/hook"] == hooks["Secret"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # The Secret it reads is created before it (lower weight).
    assert int(hooks["Secret"]["helm.sh/hook-weight"]) < int(hooks["Job"]["helm.sh/hook-weight"])


def test_network_policies_default_deny_and_allow_only_dependencies(full_docs: list[dict[str, Any]]) -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in full_docs if d["kind"] == "NetworkPolicy"}
    assert policies["rl-reprolab-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for service in SERVICES:
        spec = policies[f"rl-reprolab-{service}"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        # Only the gateway accepts connections, and only from the ingress controller's namespace.
        if service == "gateway":
            (rule,) = spec["ingress"]
            nginx = {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
            assert rule["from"] == [{"namespaceSelector": nginx}]
        else:
            assert "ingress" not in spec
        api_server = [r for r in spec["egress"] if {"ipBlock": {"cidr": "10.96.0.1/32"}} in r.get("to", [])]
        assert bool(api_server) == (service in ("builder", "runner")), service
        # the gateway's /serve reaches the model servers (and only them) in the runner's job namespace
        models = [r for r in spec["egress"] if any(p.get("podSelector") == {"matchLabels": {
            "app.kubernetes.io/name": "reprolab-model"}} for p in r.get("to", []))]
        assert bool(models) == (service == "gateway"), service
        if models:
            assert models[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
            assert models[0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        # JupyterLab sessions: the gateway proxies to the notebook server, the runner also reads the activity
        # container (chain, capture); nobody else reaches the session pods
        sessions = [r for r in spec["egress"] if any(p.get("podSelector") == {"matchExpressions": [{
            "key": "reprolab.org/session-id", "operator": "Exists"}]} for p in r.get("to", []))]
        ports = {"gateway": [8888], "runner": [8888, 8890]}.get(service)
        assert [[p["port"] for p in r["ports"]] for r in sessions] == ([ports] if ports else []), service


def test_the_sessions_role_is_what_the_session_target_uses(default_docs: list[dict[str, Any]]) -> None:
    from reprolab_runner.sessions import manifests

    named = {(d["kind"], d["metadata"]["name"]): d for d in default_docs}
    role = named[("Role", "rl-reprolab-runner-sessions")]
    (expected,) = manifests.runner_rbac("reprolab-sessions")
    assert role["metadata"]["namespace"] == "reprolab-sessions" and role["rules"] == expected["rules"]
    assert named[("RoleBinding", "rl-reprolab-runner-sessions")]["subjects"][0]["name"] == "rl-reprolab-runner"
    runner = named[("Deployment", "rl-reprolab-runner")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in runner["env"]}
    assert (env["REPROLAB_RUNNER_SESSION_TARGET"], env["REPROLAB_RUNNER_KUBERNETES_SESSION_NAMESPACE"]) == (
        "kubernetes", "reprolab-sessions")


# -- Pod Security and OpenAPI validity ------------------------------------------------------------

def test_the_checker_catches_what_restricted_forbids() -> None:
    good = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False,
                                                             "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]}
    assert restricted_violations(good) == []
    bad = copy.deepcopy(good)
    bad["hostNetwork"] = True
    bad["volumes"].append({"name": "h", "hostPath": {"path": "/"}})
    c = bad["containers"][0]["securityContext"]
    c.update(allowPrivilegeEscalation=True, capabilities={"add": ["SETUID", "SYS_ADMIN"]},
             seccompProfile={"type": "Unconfined"}, runAsUser=0)
    found = restricted_violations(bad)
    for fragment in ("hostNetwork", "hostPath", "allowPrivilegeEscalation", "SYS_ADMIN", "Unconfined",
                     "runAsUser 0", "drop ALL"):
        assert any(fragment in f for f in found), (fragment, found)
    assert any("SYS_ADMIN" in f for f in baseline_violations(bad))
    assert not any("SETUID" in f for f in baseline_violations(bad))  # SETUID is baseline, not restricted


@pytest.mark.parametrize("values_file", ["required.yaml", "everything-on.yaml"])
def test_every_chart_pod_is_restricted(values_file: str) -> None:
    pods = pod_specs(documents(render(load_values(values_file))))
    assert len(pods) == 6  # five services and the migration Job
    for name, pod in pods:
        assert restricted_violations(pod) == [], name
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert "ephemeral-storage" in c["resources"]["limits"], name
        assert all(v["emptyDir"].get("sizeLimit") for v in pod["volumes"] if "emptyDir" in v), name


def _run_objects(network: bool) -> list[dict[str, Any]]:
    """Everything the runner creates for one run: three Jobs, the claim, two NetworkPolicies."""
    run = run_manifests.make_run_manifests(
        run_id="0b9c2a1e-5f7d-4c1e-9a53-2d8e6f1b7c40", namespace="reprolab-runs",
        image="registry.example.edu/ws/env@sha256:" + "ab" * 32, command=["python", "main.py"],
        inputs=[("https://s3.example.edu/code.tar.gz?sig=1", "/work", "cd" * 32)],
        outputs={"outputs.tar.gz": "https://s3.example.edu/o?sig=2", "status.json": "https://s3.example.edu/s?sig=3"},
        limits=Limits(timeout_seconds=60, network=network), owner_uid="5c0f1e52-7d4b-4a39-9d3e-1f0a2b3c4d5e")
    return [run.job, *run.owned()]


def test_every_run_job_pod_is_restricted() -> None:
    for network in (False, True):
        jobs = [d for d in _run_objects(network) if d["kind"] == "Job"]
        assert len(jobs) == 3  # fetch, run, upload
        for job in jobs:
            assert restricted_violations(job["spec"]["template"]["spec"]) == [], job["metadata"]["name"]


def test_build_job_pod_is_checked_too() -> None:
    job = build_manifests.make_build_job(
        name="reprolab-build-abc", namespace="reprolab-builds", builder_image="localhost/reprolab/build-job:0.1.0",
        context_url="https://s3.example.edu/ctx.tar?sig=1", image_ref="registry.example.edu/ws/env:v1",
        registry_secret="rl-reprolab-registry-auth", labels=build_manifests.build_labels("abc"),
        resources={"requests": {"cpu": "1"}}, active_deadline_seconds=600, insecure_registry=False)
    # Builds need user namespaces (see docs/operations.md): the build namespace is at most "baseline".
    assert baseline_violations(job["spec"]["template"]["spec"]) == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_is_valid_openapi(version: str, default_docs: list[dict[str, Any]],
                                         full_docs: list[dict[str, Any]]) -> None:
    checked = 0
    run_docs = _run_objects(False) + _run_objects(True)
    for doc in default_docs + full_docs + run_docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked == len(default_docs) + len(full_docs) + len(run_docs) - 1


def test_build_pods_reach_only_the_outside_and_dns() -> None:
    """The build namespace's policy selects the builder's build pods (their labels come from the builder's
    own manifests) and lets them reach DNS and the outside of the cluster, never its CIDRs or metadata."""
    import ipaddress

    docs = documents(render(load_values("required.yaml")))
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "rl-reprolab-builds"]
    assert policy["metadata"]["namespace"] == "reprolab-builds"
    labels = build_manifests.build_labels("abc")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    dns, outside = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert {p["port"] for p in outside["ports"]} == {443, 80}
    for address in ("169.254.169.254", "10.96.0.1", "fd00:ec2::254"):
        ip = ipaddress.ip_address(address)
        (peer,) = [p["ipBlock"] for p in outside["to"]
                   if ipaddress.ip_network(p["ipBlock"]["cidr"]).version == ip.version]
        assert any(ip in ipaddress.ip_network(ex) for ex in peer["except"]), address
    values = load_values("required.yaml")
    values.setdefault("networkPolicy", {})["buildEgressCidrs"] = ["192.0.2.0/24"]
    (policy,) = [d for d in documents(render(values)) if d["metadata"]["name"] == "rl-reprolab-builds"]
    assert policy["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]


def test_job_images_are_pinned_by_digest_when_given() -> None:
    digest = "sha256:" + "0a" * 32
    values = load_values("required.yaml")
    values.setdefault("builder", {})["jobImageDigest"] = digest
    values.setdefault("runner", {})["fetcherImageDigest"] = digest
    docs = documents(render(values))

    def env(component: str) -> dict[str, str]:
        (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"rl-reprolab-{component}"]
        return {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert env("builder")["REPROLAB_BUILDER_KUBERNETES_BUILDER_IMAGE"] == f"localhost/reprolab/build-job@{digest}"
    runner = env("runner")
    assert runner["REPROLAB_RUNNER_KUBERNETES_FETCHER_IMAGE"] == f"localhost/reprolab/fetcher@{digest}"
    # the run network settings reach the runner as its settings read them (JSON lists)
    from reprolab_runner.config import RunnerSettings

    settings = RunnerSettings.model_validate({
        "kubernetes_cluster_cidrs": json.loads(runner["REPROLAB_RUNNER_KUBERNETES_CLUSTER_CIDRS"]),
        "kubernetes_store_ports": json.loads(runner["REPROLAB_RUNNER_KUBERNETES_STORE_PORTS"]),
        "kubernetes_egress_cidrs": json.loads(runner["REPROLAB_RUNNER_KUBERNETES_EGRESS_CIDRS"])})
    assert "10.0.0.0/8" in settings.kubernetes_cluster_cidrs and settings.kubernetes_store_ports == [443]
    assert runner["REPROLAB_RUNNER_KUBERNETES_RUN_STORAGE"] == "10Gi"
    assert env("builder")["REPROLAB_BUILDER_KUBERNETES_BUILDER_IMAGE"] != "localhost/reprolab/build-job:0.1.0"
    plain = documents(render(load_values("required.yaml")))
    (dep,) = [d for d in plain if d["kind"] == "Deployment" and d["metadata"]["name"] == "rl-reprolab-builder"]
    plain_env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert plain_env["REPROLAB_BUILDER_KUBERNETES_BUILDER_IMAGE"] == "localhost/reprolab/build-job:0.1.0"
