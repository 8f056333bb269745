"""The chart's pods, executed for real with `podman kube play` from the services image: the migration
Job's pod, then all five service pods with the rendered configuration against the real PostgreSQL,
a NATS with per-service credentials and moto S3, until the gateway's /readyz (which needs every
other service to answer on the bus) says ready. Security contexts run exactly as rendered."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest
from reprolab_common.auditlog import Signer
from reprolab_common.buspermissions import IDENTITIES, SERVICES
from reprolab_common.natsserver import NatsServer, free_port

from ..chart.chartlib import documents, load_values, render
from ..conftest import drop_schemas
from . import kubeplay

pytestmark = pytest.mark.timeout(1800)  # the first session builds the platform images


def _values(images: dict[str, str], *, pg_url: str, prefix: str, nats: NatsServer, creds: dict[str, str],
            moto_url: str, bucket: str, audit_secret: str) -> dict[str, Any]:
    repo, tag = images["services"].rsplit(":", 1)
    values = load_values("required.yaml")
    values["image"] = {"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"}
    values["postgresql"] = {"url": pg_url, "schemaPrefix": prefix}
    # One nats-server here: streams get one replica (a value; the chart's default 3 is for a JetStream cluster).
    values["nats"] = {"url": nats.url, "tls": {"enabled": False}, "streamReplicas": 1,
                      "auth": {s: {"user": s, "password": creds[s]} for s in SERVICES}}
    values["objectStore"] = {"bucket": bucket, "endpointUrl": moto_url, "accessKeyId": "testing",
                             "secretAccessKey": "testing"}
    values["audit"] = {"signingKeySecret": audit_secret}
    return values


@pytest.fixture(scope="module")
def service_pods(platform_images: dict[str, str], pg_url: str, moto_url: str,
                 tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("kubeplay")
    release = f"k{uuid.uuid4().hex[:6]}"
    prefix = f"{release}_"
    creds = {name: secrets.token_urlsafe(18) for name in IDENTITIES}
    nats = NatsServer(work / "js", log_file=work / "nats.log", credentials=creds).start()
    bucket = f"{release}-bucket"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    audit_secret = f"{release}-audit-key"
    values = _values(platform_images, pg_url=pg_url, prefix=prefix, nats=nats, creds=creds, moto_url=moto_url,
                     bucket=bucket, audit_secret=audit_secret)
    docs = documents(render(values, name=release))
    secret_docs = {d["metadata"]["name"]: kubeplay.secret_values(d) for d in docs if d["kind"] == "Secret"}
    secret_docs[audit_secret] = {"signing-key": Signer.generate().private_pem().decode()}
    names = kubeplay.create_secrets(secret_docs, work)
    port = free_port()
    pods: dict[str, str] = {}
    try:
        (job,) = [d for d in docs if d["kind"] == "Job"]
        pod = kubeplay.for_podman(kubeplay.pod_from(job, job["metadata"]["name"]), secrets=secret_docs)
        pods["migrations"] = kubeplay.play(pod, work)
        st = kubeplay.wait_exited(pods["migrations"], "migrations", 240)
        assert st["ExitCode"] == 0, kubeplay.logs(pods["migrations"], "migrations")
        for d in docs:
            if d["kind"] != "Deployment":
                continue
            component = d["metadata"]["labels"]["app.kubernetes.io/component"]
            pod = kubeplay.for_podman(kubeplay.pod_from(d, d["metadata"]["name"]), secrets=secret_docs,
                                      env={"REPROLAB_GATEWAY_PORT": str(port)})
            pods[component] = kubeplay.play(pod, work)
        yield {"pods": pods, "port": port, "docs": docs, "work": work}
    finally:
        for name in pods.values():
            kubeplay.down(name)
        kubeplay.remove_secrets(names)
        nats.stop()
        drop_schemas(pg_url, prefix)


def test_every_service_pod_runs_as_rendered_and_the_gateway_is_ready(service_pods) -> None:
    pods, port = service_pods["pods"], service_pods["port"]
    deadline = time.monotonic() + 150
    last: Any = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            last = (r.status_code, r.text)
            if r.status_code == 200:
                break
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(2)
    tails = {c: kubeplay.logs(p, c, 15) for c, p in pods.items() if c != "migrations"}
    assert last and last[0] == 200, f"/readyz never answered 200: {last}\n{json.dumps(tails, indent=1)}"
    assert json.loads(last[1])["status"] == "ready"
    # Each service container really ran under the rendered securityContext.
    for component, pod in pods.items():
        info = json.loads(subprocess.run(["podman", "inspect", f"{pod}-{component}"], capture_output=True,
                                         text=True, check=True).stdout)[0]
        assert info["Config"]["User"] == "10001:10001", (component, info["Config"]["User"])
        assert info["HostConfig"]["ReadonlyRootfs"] is True, component
        assert info["EffectiveCaps"] in (None, []), (component, info["EffectiveCaps"])
        if component != "migrations":
            assert info["State"]["Status"] == "running", (component, kubeplay.logs(pod, component))


def test_rendered_root_filesystem_is_read_only_inside_the_pod(service_pods) -> None:
    pod = service_pods["pods"]["gateway"]
    proc = subprocess.run(["podman", "exec", f"{pod}-gateway", "sh", "-c",
                           "id -u; touch /opt/reprolab/x 2>&1; touch /tmp/x && echo tmp-ok"],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[0] == "10001"
    assert "Read-only file system" in proc.stdout
    assert lines[-1] == "tmp-ok"  # the emptyDir mounted at /tmp is writable

