"""The runner's worker driving remote targets end to end: a run submitted through the runner's API
goes to Kubernetes, Azure or OpenStack and comes back with its outputs, and the reconciler removes
leftover Jobs and VMs.

Real parts: NATS JetStream (the worker's own fetch loop), SQLite, the credential store, the object
store on moto's S3 (a FAKE of AWS over real HTTP) with real presigned URLs. Fakes, over real HTTP
with the real SDKs: the Kubernetes API server (kmock's emulator, FAKE), Azure and OpenStack (the
FAKE clouds in ``fakes/``). Nothing boots a VM or a pod, so the tests play them: for Kubernetes the
Job's real fetch and upload shell steps run on this host against the presigned URLs in the Job
(the student's step is played by writing its outputs); for a VM, the agent's uploads are PUT to the
very URLs found in the VM's user-data (the agent itself runs for real in test_run_agent.py and in
tests/integration/test_remote_runs.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import kmock as kmocklib
import kubernetes_validate
import nats
import pytest
from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.errors import Invalid
from reprolab_common.nats import ensure_streams
from reprolab_common.objectstore import S3ObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_runner import credstore, service
from reprolab_runner import targets as _targets  # noqa: F401  (registers the targets)
from reprolab_runner.api import Api
from reprolab_runner.config import RunnerSettings
from reprolab_runner.models import MIGRATIONS, Output, Run, Status
from reprolab_runner.targets import k8s_manifests as m
from reprolab_runner.targets.base import INSTALLATION_LABEL, LABEL, Input, Limits, RunRequest, transfer_key
from reprolab_runner.targets.vm import JOB_PATH, decode_cloud_init
from reprolab_runner.worker import Worker
from sqlalchemy import select

FAKES = Path(__file__).parent / "fakes"
sys.path.insert(0, str(FAKES))
import fake_azure  # noqa: E402
import fake_openstack  # noqa: E402

JOBS = kmocklib.resource("batch/v1/jobs")
PODS = kmocklib.resource("v1/pods")
POLICIES = kmocklib.resource("networking.k8s.io/v1/networkpolicies")
ACTOR = common_pb2.Actor(user_id="u-ada", username="ada")
WS = "ml101"
CODE = b"code archive bytes"
DATA = b"1,2,3\n"
POD_LOG = b"epoch 1\nepoch 2\n"


# -- the runner, for real, minus the service process -----------------------------------------------

class Runner:
    def __init__(self, settings: RunnerSettings, sessions: Any, worker: Worker, api: Api, store: S3ObjectStore):
        self.settings, self.sessions, self.worker, self.api, self.store = settings, sessions, worker, api, store

    async def submit(self, target: str, command: list[str] | None = None) -> str:
        run = await self.api.submit(runner_pb2.SubmitRunRequest(
            actor=ACTOR, workspace=WS, environment="py", version=1,
            image="registry.example.org/ml101/py@sha256:" + "ab" * 32,
            code_digest="sha256:" + hashlib.sha256(CODE).hexdigest(), code_object_key=f"code/{WS}/c.tar.gz",
            datasets=[runner_pb2.DatasetMount(digest="sha256:" + hashlib.sha256(DATA).hexdigest(), name="d.csv",
                                              mount="/data/d.csv", object_key=f"data/{WS}/d.csv")],
            command=command or ["python3", "main.py"], target=target,
            resources=runner_pb2.RunResources(timeout_seconds=120)))
        return run.id

    def run(self, run_id: str) -> Run:
        return in_transaction(self.sessions, lambda s: s.get(Run, run_id))

    def outputs(self, run_id: str) -> dict[str, bytes]:
        rows = in_transaction(self.sessions, lambda s: list(s.execute(
            select(Output).where(Output.run_id == run_id)).scalars()))
        return {o.name: self.store.read_bytes(o.object_key) for o in rows}

    async def wait(self, run_id: str, predicate, timeout: float = 60) -> Run:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            run = await asyncio.to_thread(self.run, run_id)
            if predicate(run):
                return run
            assert asyncio.get_running_loop().time() < deadline, (run.status, run.handle, run.error)
            await asyncio.sleep(0.1)

    async def finished(self, run_id: str) -> Run:
        return await self.wait(run_id, lambda r: r.status in ("succeeded", "failed", "cancelled", "timed_out"))

    async def started(self, run_id: str) -> Run:
        return await self.wait(run_id, lambda r: bool(r.handle) or r.status == "failed")

    def put_credential(self, vendor: str, secret: dict, options: dict) -> None:
        keyring = credstore.keyring_for(self.settings)
        in_transaction(self.sessions, lambda s: credstore.put(s, keyring, actor=ACTOR, workspace=WS, vendor=vendor,
                                                              secret=secret, options=options))


@pytest.fixture(scope="module")
def aws_env():
    mp = pytest.MonkeyPatch()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        mp.setenv(key, "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    mp.undo()


@pytest.fixture
async def make_runner(nats_server, moto_url, aws_env, tmp_path: Path):
    stops: list[tuple[asyncio.Event, asyncio.Task, Any, Worker]] = []
    engines = []

    async def make(targets: list[str], **overrides: Any) -> Runner:
        common = CommonSettings(data_dir=tmp_path / f"d{len(engines)}", object_store="s3", s3_endpoint_url=moto_url,
                                s3_bucket=f"rw-{uuid.uuid4().hex[:10]}", nats_url=nats_server.url)
        settings = RunnerSettings(common=common, enabled_targets=targets, poll_seconds=0.1,
                                  durable=f"runner-{uuid.uuid4().hex[:8]}", **overrides)
        engine = make_engine(common, "runner")
        migrate(engine, MIGRATIONS)
        engines.append(engine)
        sessions = session_factory(engine)
        store = S3ObjectStore(common.s3_bucket, endpoint_url=moto_url, region="us-east-1")
        store.put_bytes(f"code/{WS}/c.tar.gz", CODE)
        store.put_bytes(f"data/{WS}/d.csv", DATA)
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure_streams(js)
        worker = Worker(settings=settings, sessions=sessions, js=js, store=store, wake_outbox=lambda: None, nc=nc)
        stop = asyncio.Event()
        stops.append((stop, asyncio.create_task(worker.run(stop)), nc, worker))
        api = Api(settings=settings, sessions=sessions, enqueue=worker.enqueue, wake_outbox=lambda: None)
        return Runner(settings, sessions, worker, api, store)

    yield make
    for stop, task, nc, worker in stops:
        stop.set()
        await asyncio.wait_for(task, 10)
        for inflight in list(worker.tasks):  # runs a test left waiting (as a killed runner would)
            inflight.cancel()
        await asyncio.gather(*worker.tasks, return_exceptions=True)
        # JOBS is a work queue (one consumer per subject): the next test's runner needs the place
        await nc.jetstream().delete_consumer("JOBS", worker.settings.durable)
        await nc.close()
    for engine in engines:
        engine.dispose()


async def eventually(check, timeout: float = 20) -> None:
    """The run's record is written before its leftovers are removed: wait for the removal."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, "not removed in time"
        await asyncio.sleep(0.1)


def insert_run(runner: Runner, target: str, status: Status = Status.QUEUED) -> str:
    """A run straight into the runner's database (no submit-time checks), ended with ``status``."""
    def _make(s):
        run = service.create_run(session=s, request=runner_pb2.SubmitRunRequest(
            actor=ACTOR, workspace=WS, environment="py", version=1, image="i@sha256:" + "a" * 64,
            code_digest="sha256:" + hashlib.sha256(CODE).hexdigest(), code_object_key=f"code/{WS}/c.tar.gz",
            command=["true"], target=target), resources=runner_pb2.RunResources(
                cpu_millis=1000, memory_bytes=1 << 30, pids=64, timeout_seconds=60))
        if status != Status.QUEUED:
            service.finish(session=s, run=run, status=status, error="over")
        return run.id
    return in_transaction(runner.sessions, _make)


def transfer_keys(store: S3ObjectStore, run_id: str) -> list[str]:
    found = store.client.list_objects_v2(Bucket=store.bucket, Prefix=transfer_key(run_id))
    return [o["Key"] for o in found.get("Contents", [])]


# -- Kubernetes (FAKE API server) -------------------------------------------------------------------

CLAIMS = kmocklib.resource("v1/persistentvolumeclaims")
COMPLETE = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}


@pytest.fixture
def fake_k8s(kmock: Any, tmp_path: Path) -> tuple[Any, Path]:
    """kmock's FAKE API server, and a kubeconfig file naming it (the runner's real setting). Like a
    real API server (and unlike the bare emulator) it gives every created object a uid: the run Job's
    uid goes into the ownerReferences of the rest of the run."""
    kmock.resources["batch/v1/jobs"] = {"namespaced": True, "kind": "Job",
                                        "verbs": {"create", "get", "list", "patch", "delete"}}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": {"list", "get"},
                                  "subresources": {"log"}}
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = {"namespaced": True, "kind": "NetworkPolicy",
                                                               "verbs": {"create", "get", "delete"}}
    kmock.resources["v1/persistentvolumeclaims"] = {"namespaced": True, "kind": "PersistentVolumeClaim",
                                                    "verbs": {"create", "delete"}}
    kmock.resources["v1/secrets"] = {"namespaced": True, "kind": "Secret", "verbs": {"create", "delete"}}
    kmock["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << POD_LOG

    def with_uid(request: Any) -> Any:
        meta = request.data.get("metadata", {})
        obj = kmock.objects[request.resource, request.namespace or meta.get("namespace"), meta["name"]]
        if not (obj.get("metadata") or {}).get("uid"):
            obj.patch({"metadata": {"uid": str(uuid.uuid4())}})
        return dict(obj.raw)

    kmock["post"] << with_uid
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    return kmock, config


def _rooted(script: str, root: Path, dirs: list[str]) -> str:
    for d in dirs:
        script = re.sub(rf"(?<![\w.$/-]){re.escape(d)}(?![\w.-])", lambda mt: f"{root}{mt.group(0)}", script)
    return script


def step_job(kmock: Any, handle: str, step: str) -> Any:
    namespace, name = handle.split("/")
    return kmock.objects[JOBS, namespace, name if step == m.RUN_STEP else f"{name}-{step}"]


def _env(container: dict) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin"} | {e["name"]: e["value"] for e in container.get("env", [])}


def play_fetch(kmock: Any, handle: str, root: Path) -> None:
    """The fetch pod's own script (sh, curl, sha256sum on this host, rooted under ``root``) against the
    presigned URLs in its Job."""
    (fetch,) = step_job(kmock, handle, m.FETCH_STEP).raw["spec"]["template"]["spec"]["containers"]
    for d in ("work", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    # the code archive here is not a real tarball: check its download and digest, skip the unpack
    script = fetch["command"][-1].replace("tar -xzf", "true")
    subprocess.run(["sh", "-c", _rooted(script, root, ["/work", "/data"])], env=_env(fetch), check=True)
    assert (root / "data" / "d.csv").read_bytes() == DATA


def play_run(root: Path, exit_code: int, outputs: dict[str, bytes]) -> None:
    """The student's step, played: its outputs, and the status its wrapper writes on the claim."""
    for d in ("outputs", ".reprolab"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        (root / "outputs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "outputs" / name).write_bytes(data)
    (root / ".reprolab" / "status.json").write_text(json.dumps({"exit_code": exit_code, "timed_out": False,
                                                               "error": ""}))


def play_upload(kmock: Any, handle: str, root: Path) -> None:
    """The upload pod's own script, rooted under ``root``, PUTting to the presigned URLs in its Job."""
    (upload,) = step_job(kmock, handle, m.UPLOAD_STEP).raw["spec"]["template"]["spec"]["containers"]
    (root / "upload").mkdir(parents=True, exist_ok=True)
    subprocess.run(["sh", "-c", _rooted(upload["command"][-1], root, ["/outputs", "/.reprolab", "/upload"])],
                   env=_env(upload), check=True)


def _terminated(name: str, code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {"name": name, "image": "img", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}


async def settle(kmock: Any, handle: str, step: str, pod_status: dict, job_status: dict) -> None:
    """Play the FAKE's Job controller and kubelet for one step: once the runner has resumed the step's
    Job (the fetch Job starts unsuspended), its pod and the Job's final status."""
    obj = step_job(kmock, handle, step)
    await eventually(lambda: not (obj.get("spec") or {}).get("suspend"))
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    template = obj.raw["spec"]["template"]
    kmock.objects[PODS, namespace, f"{name}-x7k2p"] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-x7k2p", "namespace": namespace, "labels": template["metadata"]["labels"],
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": template["spec"], "status": pod_status}
    obj.patch({"status": job_status})


def succeeded(container: str, message: str = "") -> dict:
    return {"phase": "Succeeded", "containerStatuses": [_terminated(container, 0, "Completed", message)]}


async def play_run_through(kmock: Any, handle: str, root: Path, exit_code: int, outputs: dict[str, bytes]) -> None:
    """All three pods of a run, in the order the runner releases them."""
    await asyncio.to_thread(play_fetch, kmock, handle, root)
    await settle(kmock, handle, m.FETCH_STEP, succeeded(m.FETCH_CONTAINER), COMPLETE)
    play_run(root, exit_code, outputs)
    await settle(kmock, handle, m.RUN_STEP, succeeded(m.RUN_CONTAINER, str(exit_code)), COMPLETE)
    await asyncio.to_thread(play_upload, kmock, handle, root)
    await settle(kmock, handle, m.UPLOAD_STEP, succeeded(m.UPLOAD_CONTAINER), COMPLETE)


def run_objects(kmock: Any, run_id: str) -> set[tuple[str, str]]:
    """(kind, name) of the run's objects still in the FAKE."""
    return {(o.get("kind"), o["metadata"]["name"]) for o in kmock.objects.values()
            if not o.deleted and (o.get("metadata", {}).get("annotations") or {}).get(m.RUN_ID_ANNOTATION) == run_id}


async def test_kubernetes_run_goes_to_a_job_and_comes_back_with_outputs(make_runner, fake_k8s, tmp_path) -> None:
    kmock, config = fake_k8s
    runner = await make_runner(["local", "kubernetes"], kubernetes_kubeconfig=str(config),
                               kubernetes_namespace="runs")
    run_id = await runner.submit("kubernetes")
    run = await runner.started(run_id)
    assert run.handle, (run.status, run.error)
    namespace, name = run.handle.split("/")
    assert (namespace, name) == ("runs", m.job_name(run_id))
    for step in (m.FETCH_STEP, m.RUN_STEP, m.UPLOAD_STEP):
        job = step_job(kmock, run.handle, step).raw
        kubernetes_validate.validate(dict(job), kubernetes_validate.latest_version(), strict=True)
        labels = job["metadata"]["labels"]
        assert labels[m.RUN_ID_LABEL] == run_id
        assert labels["reprolab.org/installation"] == runner.settings.installation_id()
    # presigned URLs only: a GET per input, a PUT per output into the run's transfer area
    (upload,) = step_job(kmock, run.handle, m.UPLOAD_STEP).raw["spec"]["template"]["spec"]["containers"]
    upload_env = _env(upload)
    assert f"/{transfer_key(run_id, 'status.json')}?" in upload_env["STATUS_URL"]
    assert "Signature=" in upload_env["STATUS_URL"]
    assert {(POLICIES, f"{name}-store"), (POLICIES, f"{name}-run")} <= {
        (k[0], k[2]) for k in kmock.objects.keys() if k[1] == namespace}

    metrics = json.dumps({"accuracy": 0.93}).encode()
    await play_run_through(kmock, run.handle, tmp_path / "pod", 0, {"metrics.json": metrics, "model/w.txt": b"w"})
    done = await runner.finished(run_id)
    assert (done.status, done.exit_code, done.error) == ("succeeded", 0, "")
    assert json.loads(done.metrics_json) == {"accuracy": 0.93}
    outs = runner.outputs(run_id)
    assert outs["metrics.json"] == metrics and outs["model/w.txt"] == b"w"
    assert outs["logs.txt"] == POD_LOG  # the run step's log, read from the run pod
    # nothing of the run is left in the cluster, and the transfer area is gone (the kept outputs are not)
    await eventually(lambda: run_objects(kmock, run_id) == set())
    await eventually(lambda: transfer_keys(runner.store, run_id) == [])


async def test_kubernetes_exit_code_and_failed_job(make_runner, fake_k8s, tmp_path) -> None:
    kmock, config = fake_k8s
    runner = await make_runner(["kubernetes"], kubernetes_kubeconfig=str(config), kubernetes_namespace="runs")
    code3 = await runner.submit("kubernetes")
    run = await runner.started(code3)
    await play_run_through(kmock, run.handle, tmp_path / "p3", 3, {})
    done = await runner.finished(code3)
    assert (done.status, done.exit_code) == ("failed", 3) and "exited with code 3" in done.error

    broken = await runner.submit("kubernetes")
    run = await runner.started(broken)
    await settle(kmock, run.handle, m.FETCH_STEP,
                 {"phase": "Failed", "containerStatuses": [
                     _terminated(m.FETCH_CONTAINER, 22, "Error", "curl: (22) The requested URL returned error: 403")]},
                 {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                               "message": "Job has reached the specified backoff limit"}]})
    done = await runner.finished(broken)
    assert done.status == "failed"
    assert "fetch-inputs exited 22 (Error): curl: (22) The requested URL returned error: 403" in done.error
    # the student's step never started: its Job is still suspended until the run is cleaned up
    await eventually(lambda: run_objects(kmock, broken) == set())


async def test_remote_outputs_are_capped_like_local_ones(make_runner, fake_k8s, tmp_path) -> None:
    kmock, config = fake_k8s
    runner = await make_runner(["kubernetes"], kubernetes_kubeconfig=str(config), kubernetes_namespace="runs",
                               max_output_bytes=1000)
    run_id = await runner.submit("kubernetes")
    run = await runner.started(run_id)
    big = {"a.bin": b"a" * 600, "b.bin": b"b" * 600}
    await play_run_through(kmock, run.handle, tmp_path / "pod", 0, big)
    done = await runner.finished(run_id)
    assert "outputs exceed 1000 bytes; the rest were dropped" in done.error
    assert set(runner.outputs(run_id)) <= {"a.bin", "logs.txt"} and "b.bin" not in runner.outputs(run_id)


async def test_reconciler_removes_jobs_of_finished_and_unknown_runs(make_runner, fake_k8s) -> None:
    kmock, config = fake_k8s
    runner = await make_runner(["local", "kubernetes"], kubernetes_kubeconfig=str(config),
                               kubernetes_namespace="runs")
    target = runner.worker.target("kubernetes")
    urls = {n: f"http://127.0.0.1:9/{n}" for n in ("status.json", "outputs.tar.gz")}

    def job_for(run_id: str) -> str:
        return target.submit(RunRequest(run_id=run_id, image="i@sha256:" + "a" * 64, command=["true"],
                                        code=Input(mount="/work", url="http://127.0.0.1:9/c"),
                                        limits=Limits(timeout_seconds=60), output_urls=urls))

    finished, live = insert_run(runner, "kubernetes", Status.FAILED), insert_run(runner, "kubernetes")
    unknown = str(uuid.uuid4())
    handles = {rid: await asyncio.to_thread(job_for, rid) for rid in (finished, live, unknown)}
    # a Job of another installation in the same namespace: never ours to remove
    other = kmock.objects[JOBS, "runs", handles[live].split("/")[1]].raw
    kmock.objects[JOBS, "runs", "someone-elses"] = {
        **other, "metadata": {**other["metadata"], "name": "someone-elses",
                              "labels": {**other["metadata"]["labels"], "reprolab.org/installation": "other"}}}

    assert await runner.worker.reconcile() == 2
    gone = {rid for rid, h in handles.items() if kmock.objects[JOBS, *h.split("/")].deleted}
    assert gone == {finished, unknown}
    # each removed run goes whole: its step Jobs, policies and claim too; the live run keeps all of its
    assert run_objects(kmock, finished) == set() and run_objects(kmock, unknown) == set()
    # run, fetch and upload Jobs, two policies, the claim (and the other installation's copy, untouched)
    assert len(run_objects(kmock, live) - {("Job", "someone-elses")}) == 6
    assert not kmock.objects[JOBS, "runs", "someone-elses"].deleted
    assert await runner.worker.reconcile() == 0


# -- Azure (FAKE) -------------------------------------------------------------------------------------

SUB, RG = "00000000-0000-0000-0000-000000000001", "reprolab-runs"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
AZ_SECRET = "fake-azure-secret-value-9f8e7d"


@pytest.fixture(scope="module")
def azure_fake(tmp_path_factory):
    fake = fake_azure.FakeAzure(tmp_path_factory.mktemp("azure"), tenant_id="tenant-1", client_id="app-1",
                                client_secret=AZ_SECRET)
    yield fake
    fake.close()


def azure_credential(fake, secret: str = AZ_SECRET) -> tuple[dict, dict]:
    return ({"client_id": "app-1", "client_secret": secret},
            {"tenant_id": "tenant-1", "subscription_id": SUB, "resource_group": RG, "location": "westeurope",
             "authority_host": fake.url, "arm_endpoint": fake.url, "ca_bundle": str(fake.ca_file),
             "subnet_id": SUBNET})


def vm_job(user_data_b64: str) -> dict:
    return json.loads(decode_cloud_init(base64.b64decode(user_data_b64).decode())[JOB_PATH])


def play_agent(job: dict, exit_code: int | None, *, error: str = "") -> None:
    """Upload what the run agent uploads, through the presigned URLs of the job (no credentials)."""
    if exit_code is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in {"metrics.json": b'{"acc": 0.9}', "figs/a.txt": b"plot"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        for name, data in {"stdout.log": b"epoch 1\n", "stderr.log": b"warn\n", "metrics.json": b'{"acc": 0.9}',
                           "outputs.tar.gz": buf.getvalue()}.items():
            httpx.put(job["outputs"][name], content=data).raise_for_status()
    status = {"exit_code": exit_code, "timed_out": False, "error": error}
    httpx.put(job["outputs"]["status.json"], content=json.dumps(status).encode()).raise_for_status()


async def test_azure_run_boots_a_tagged_vm_and_comes_back_with_outputs(make_runner, azure_fake) -> None:
    runner = await make_runner(["local", "azure"])
    runner.put_credential("azure", *azure_credential(azure_fake))
    run_id = await runner.submit("azure")
    run = await runner.started(run_id)
    vm_name = run.handle.split("/")[1]
    vm = next(v for v in azure_fake.vms() if v["name"] == vm_name)
    assert vm["tags"] == {LABEL: run_id, INSTALLATION_LABEL: runner.settings.installation_id()}
    job = vm_job(vm["properties"]["osProfile"]["customData"])
    assert job["run_id"] == run_id and job["command"] == ["python3", "main.py"]
    assert set(job["outputs"]) == {"status.json", "stdout.log", "stderr.log", "metrics.json", "outputs.tar.gz"}
    # the VM fetches its inputs by presigned URL: the URL really serves the dataset
    assert (await asyncio.to_thread(httpx.get, job["datasets"][0]["url"])).content == DATA
    assert job["datasets"][0]["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert AZ_SECRET not in json.dumps(job)

    await asyncio.to_thread(play_agent, job, 0)
    done = await runner.finished(run_id)
    assert (done.status, done.exit_code, done.error) == ("succeeded", 0, "")
    assert json.loads(done.metrics_json) == {"acc": 0.9}
    outs = runner.outputs(run_id)
    assert outs["figs/a.txt"] == b"plot" and outs["logs.txt"] == b"epoch 1\nwarn\n"
    await eventually(lambda: transfer_keys(runner.store, run_id) == [])
    assert not [r for r in azure_fake.resources.values() if vm_name in r["name"]]  # VM and NIC deleted


async def test_azure_quota_exceeded_and_bad_credentials_fail_the_run(make_runner, azure_fake) -> None:
    runner = await make_runner(["azure"])
    runner.put_credential("azure", *azure_credential(azure_fake))
    azure_fake.quota_exceeded = True
    try:
        run_id = await runner.submit("azure")
        done = await runner.finished(run_id)
    finally:
        azure_fake.quota_exceeded = False
    assert done.status == "failed" and "the run could not start" in done.error
    assert "Azure quota exceeded while creating the VM" in done.error and "Cores quota" in done.error

    wrong = "wrong-secret-" + uuid.uuid4().hex
    runner.put_credential("azure", *azure_credential(azure_fake, wrong))
    done = await runner.finished(await runner.submit("azure"))
    assert done.status == "failed" and "Azure rejected the credentials" in done.error
    assert wrong not in done.error and AZ_SECRET not in done.error


async def test_missing_credentials_fail_the_run_with_how_to_fix(make_runner) -> None:
    runner = await make_runner(["azure"])
    how_to = ("no azure credentials for you in workspace 'ml101'; set them with "
              "`reprolab credentials set azure --workspace ml101")
    with pytest.raises(Invalid, match=re.escape(how_to)):
        await runner.submit("azure")  # refused at submit time
    # credentials gone between submit and start: the worker fails the run with the same message
    run_id = insert_run(runner, "azure")
    await runner.worker.enqueue(runner.run(run_id))
    done = await runner.finished(run_id)
    assert done.status == "failed" and done.error.startswith("the run could not start: " + how_to)


# -- OpenStack (FAKE) ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def os_fake():
    fake = fake_openstack.FakeOpenStack(username="ada", password="os-pw-123456", project="ml101")
    yield fake
    fake.close()


def os_credential(fake) -> tuple[dict, dict]:
    return ({"username": "ada", "password": "os-pw-123456"},
            {"auth_url": fake.auth_url, "project": "ml101", "region": "RegionOne", "image_id": "img-debian12",
             "flavor_id": "m1.small", "network_id": "net-1"})


async def test_openstack_instance_failed_and_nonzero_exit(make_runner, os_fake) -> None:
    runner = await make_runner(["openstack"])
    runner.put_credential("openstack", *os_credential(os_fake))
    run_id = await runner.submit("openstack")
    run = await runner.started(run_id)
    server = os_fake.servers[run.handle.split("/")[1]]
    assert server["metadata"] == {LABEL: run_id, INSTALLATION_LABEL: runner.settings.installation_id()}
    server |= {"status": "ERROR", "fault": {"code": 500, "message": "No valid host was found"}}
    done = await runner.finished(run_id)
    assert done.status == "failed" and "the instance failed (status ERROR: No valid host was found)" in done.error
    await eventually(lambda: run.handle.split("/")[1] not in os_fake.servers)  # deleted on completion

    run_id = await runner.submit("openstack")
    run = await runner.started(run_id)
    job = vm_job(os_fake.servers[run.handle.split("/")[1]]["user_data"])
    await asyncio.to_thread(play_agent, job, 3)
    done = await runner.finished(run_id)
    assert (done.status, done.exit_code) == ("failed", 3) and "exited with code 3" in done.error
    assert "figs/a.txt" in runner.outputs(run_id)  # a failed run's outputs are kept too

    run_id = await runner.submit("openstack")
    run = await runner.started(run_id)
    job = vm_job(os_fake.servers[run.handle.split("/")[1]]["user_data"])
    await asyncio.to_thread(play_agent, job, None, error="could not pull image x: manifest unknown")
    done = await runner.finished(run_id)
    assert done.status == "failed" and "the run agent failed: could not pull image x" in done.error


async def test_openstack_quota_exceeded(make_runner, os_fake) -> None:
    runner = await make_runner(["openstack"])
    runner.put_credential("openstack", *os_credential(os_fake))
    os_fake.quota_exceeded = True
    try:
        done = await runner.finished(await runner.submit("openstack"))
    finally:
        os_fake.quota_exceeded = False
    assert done.status == "failed" and "OpenStack quota exceeded while creating the server" in done.error


async def test_reconciler_removes_vms_of_finished_and_unknown_runs(make_runner, os_fake) -> None:
    runner = await make_runner(["openstack"])
    runner.put_credential("openstack", *os_credential(os_fake))
    run_id = await runner.submit("openstack")
    run = await runner.started(run_id)
    vm = run.handle.split("/")[1]
    # the run ends while its VM stays behind (a runner killed between recording and deleting)
    in_transaction(runner.sessions, lambda s: service.finish(session=s, run=s.get(Run, run_id),
                                                             status=Status.FAILED, error="runner died"))
    live = await runner.submit("openstack")
    live_vm = (await runner.started(live)).handle.split("/")[1]
    ours = runner.worker.target("openstack", run)
    secret, options = os_credential(os_fake)
    theirs = type(ours)(credentials=secret | options, options=options, store=runner.store,
                        installation="another-installation")

    def boot(target, rid: str) -> str:
        return target.submit(RunRequest(run_id=rid, image="i", command=["true"],
                                        code=Input(mount="/work", url="http://127.0.0.1:9/c"))).split("/")[1]

    unknown = await asyncio.to_thread(boot, ours, str(uuid.uuid4()))  # e.g. its run's row was lost
    other = await asyncio.to_thread(boot, theirs, str(uuid.uuid4()))  # another platform, same project
    assert await runner.worker.reconcile() == 2
    assert vm not in os_fake.servers and unknown not in os_fake.servers
    assert live_vm in os_fake.servers and other in os_fake.servers
    assert await runner.worker.reconcile() == 0
    await asyncio.to_thread(theirs._delete, other)


# -- refused up front --------------------------------------------------------------------------------

async def test_disabled_target_and_local_store_are_refused_with_what_to_set(tmp_path, aws_env) -> None:
    common = CommonSettings(data_dir=tmp_path)
    settings = RunnerSettings(common=common, enabled_targets=["local", "kubernetes"])
    engine = make_engine(common, "runner")
    migrate(engine, MIGRATIONS)

    async def never(run):
        raise AssertionError("must not be enqueued")

    api = Api(settings=settings, sessions=session_factory(engine), enqueue=never, wake_outbox=lambda: None)
    request = runner_pb2.SubmitRunRequest(actor=ACTOR, workspace=WS, environment="py", version=1, image="i",
                                          code_digest="sha256:x", code_object_key="k", command=["true"])
    # a member is told whom to ask; the platform's admin is told the operator's setting
    with pytest.raises(Invalid, match="ask the platform's administrator to enable it") as info:
        await api.submit(runner_pb2.SubmitRunRequest(**{**_fields(request), "target": "aws"}))
    assert "REPROLAB_RUNNER_ENABLED_TARGETS" not in str(info.value)
    admin = common_pb2.Actor(user_id="u-root", username="root", platform_admin=True)
    with pytest.raises(Invalid, match=r"""REPROLAB_RUNNER_ENABLED_TARGETS='\["local","kubernetes","aws"\]'"""):
        await api.submit(runner_pb2.SubmitRunRequest(**{**_fields(request), "target": "aws", "actor": admin}))
    with pytest.raises(Invalid, match="REPROLAB_OBJECT_STORE=s3"):
        await api.submit(runner_pb2.SubmitRunRequest(**{**_fields(request), "target": "kubernetes"}))
    engine.dispose()


def _fields(msg) -> dict:
    return {f.name: v for f, v in msg.ListFields()}
