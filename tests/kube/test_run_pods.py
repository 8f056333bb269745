"""The kubernetes run target's three pods, executed for real with `podman kube play`, one after the
other as the runner moves a run on: the fetch pod (the platform's fetcher image from `make images`)
downloads the code and a dataset through presigned GET URLs from moto S3 (a named fake of AWS, real
HTTP) into the run's claim; the run pod runs the student's code from the claim under its own
securityContext; the upload pod PUTs the outputs' archive and the exit status through presigned PUT
URLs, which are then read back from moto.

podman does not enforce NetworkPolicy. The run policy (deny all ingress and egress) is stood in for by
playing the run pod with `--network none`, which is what that policy gives the student's code on a
cluster whose CNI enforces it; the fetch and upload pods get the host's network (where moto listens),
standing in for their "object store only" policy. The student's code proves it cannot reach the object
store (nor resolve a name) while the fetch pod just did, from the same machine. What podman cannot show
(a CNI enforcing the policies' selectors and ipBlocks) is listed in docs/operations.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from reprolab_runner.targets import k8s_manifests as m
from reprolab_runner.targets.base import Limits

from . import kubeplay

pytestmark = pytest.mark.timeout(1800)  # the first session builds the platform images

STUDENT_IMAGE = "localhost/reprolab/bookworm-python:latest"  # what environment images are built from

MAIN = """\
import json, os, pathlib, socket, sys, urllib.request
rows = pathlib.Path("/data/iris/iris.csv").read_text().splitlines()
probe = {}
try:  # the object store the fetch pod just downloaded from
    urllib.request.urlopen(os.environ["STORE_URL"], timeout=5)
    probe["store"] = "reached"
except Exception as exc:
    probe["store"] = f"unreachable: {type(exc).__name__}: {exc}"
try:
    socket.getaddrinfo("s3.amazonaws.com", 443)
    probe["dns"] = "resolved"
except OSError as exc:
    probe["dns"] = f"unresolved: {exc}"
try:
    open("/data/iris/new.csv", "w")
    probe["data"] = "writable"
except OSError as exc:
    probe["data"] = f"read-only: {exc.strerror}"
probe["interfaces"] = sorted(name for _, name in socket.if_nameindex())
out = pathlib.Path("/outputs/sub")
out.mkdir(parents=True)
(out / "result.json").write_text(json.dumps({"rows": len(rows), "argv": sys.argv[1:], "uid": os.getuid(),
                                             "probe": probe}))
pathlib.Path("/tmp/scratch").write_text("x")  # /tmp is writable (a tmpfs), the root file system is not
print("rows", len(rows))
sys.exit(3)
"""


@pytest.fixture(scope="module")
def store(moto_url: str) -> dict[str, Any]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    bucket = f"runpods-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return {"s3": s3, "bucket": bucket, "url": moto_url}


def _put(store: dict[str, Any], key: str, body: bytes) -> tuple[str, str]:
    store["s3"].put_object(Bucket=store["bucket"], Key=key, Body=body)
    url = store["s3"].generate_presigned_url("get_object", Params={"Bucket": store["bucket"], "Key": key},
                                             ExpiresIn=900)
    return url, hashlib.sha256(body).hexdigest()


def _code() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("main.py")
        info.size = len(MAIN.encode())
        tar.addfile(info, io.BytesIO(MAIN.encode()))
    return buf.getvalue()


def _play_step(job: dict[str, Any], container: str, work: Path, volumes: list[str], *, network: str,
               termination_log: bool = False) -> tuple[dict[str, Any], str, str]:
    """Play one step's pod to its end: (container state, log, termination message)."""
    name = job["metadata"]["name"]
    pod = kubeplay.for_podman(kubeplay.pod_from(job, name), secrets={})
    volumes += [v for v in kubeplay.claims_by_subpath(pod) if v not in volumes]
    log_file = kubeplay.with_termination_log(pod, container, work) if termination_log else None
    try:
        kubeplay.play(pod, work, args=("--network", network))
        state = kubeplay.wait_exited(name, container, 300)
        return state, kubeplay.logs(name, container), log_file.read_text() if log_file else ""
    finally:
        kubeplay.down(name)


def test_fetch_run_and_upload_pods_run_a_students_code_without_network(
        platform_images: dict[str, str], store: dict[str, Any], tmp_path: Path) -> None:
    run_id = f"kplay-{uuid.uuid4().hex[:10]}"
    code_url, code_sha = _put(store, f"runs/{run_id}/code.tar.gz", _code())
    data_url, data_sha = _put(store, f"runs/{run_id}/iris.csv", b"a,b\n1,2\n3,4\n")
    s3 = store["s3"]
    outputs = {name: s3.generate_presigned_url("put_object", Params={"Bucket": store["bucket"],
                                                                    "Key": f"runs/{run_id}/transfer/{name}"},
                                               ExpiresIn=900)
               for name in ("outputs.tar.gz", "status.json")}
    run = m.make_run_manifests(
        run_id=run_id, namespace="reprolab-runs", image=STUDENT_IMAGE, command=["python3", "main.py", "two words"],
        inputs=[(code_url, "/work", code_sha), (data_url, "iris/iris.csv", data_sha)], outputs=outputs,
        limits=Limits(cpu_millis=500, memory_bytes=256 << 20, timeout_seconds=120),
        fetcher_image=platform_images["fetcher"], env={"STORE_URL": code_url},
        owner_uid=str(uuid.uuid4()), storage="1Gi")
    volumes: list[str] = []
    try:
        # 1. fetch: the platform's fetcher image, the store's network only
        state, log, _ = _play_step(run.fetch, m.FETCH_CONTAINER, tmp_path, volumes, network="host")
        assert state["ExitCode"] == 0, log
        assert kubeplay.process_user(run.fetch["metadata"]["name"], m.FETCH_CONTAINER) in ("", "1000:1000")

        # 2. run: the student's image, no network at all
        state, log, message = _play_step(run.job, m.RUN_CONTAINER, tmp_path, volumes, network="none",
                                         termination_log=True)
        assert state["ExitCode"] == 0, log  # the wrapper exits 0 so the upload still happens...
        assert message == "3", (message, log)  # ...and the student's exit code is the termination message
        assert "rows 3" in log

        # 3. upload: the outputs' archive, then the status, each to its presigned PUT URL
        state, log, _ = _play_step(run.upload, m.UPLOAD_CONTAINER, tmp_path, volumes, network="host")
        assert state["ExitCode"] == 0, log
    finally:
        kubeplay.remove_volumes(volumes)
    assert sorted(volumes) == sorted(f"{m.job_name(run_id)}-{d}" for d in ("work", "data", "outputs", "status"))

    def fetched(name: str) -> bytes:
        return s3.get_object(Bucket=store["bucket"], Key=f"runs/{run_id}/transfer/{name}")["Body"].read()

    assert json.loads(fetched("status.json")) == {"exit_code": 3, "timed_out": False, "error": ""}
    with tarfile.open(fileobj=io.BytesIO(fetched("outputs.tar.gz"))) as tar:
        result = json.loads(tar.extractfile("./sub/result.json").read())
    assert result["rows"] == 3 and result["argv"] == ["two words"] and result["uid"] == m.RUN_AS_USER
    probe = result["probe"]
    assert probe["store"].startswith("unreachable"), probe  # the object store the fetch pod used
    assert probe["dns"].startswith("unresolved"), probe
    assert probe["interfaces"] == ["lo"], probe  # no interface but loopback
    assert probe["data"].startswith("read-only"), probe  # datasets are read-only for the run


def test_a_failing_fetch_stops_the_run_before_it_starts(platform_images: dict[str, str], store: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """A code archive whose sha256 does not match: the fetch pod fails (the runner then never resumes the
    run Job, tests/runner/test_k8s_target.py), and says why."""
    run_id = f"kplay-{uuid.uuid4().hex[:10]}"
    code_url, _ = _put(store, f"runs/{run_id}/code.tar.gz", _code())
    fetch = m.make_fetch_job(run_id=run_id, namespace="reprolab-runs", inputs=[(code_url, "/work", "00" * 32)],
                             fetcher_image=platform_images["fetcher"])
    volumes: list[str] = []
    try:
        state, log, _ = _play_step(fetch, m.FETCH_CONTAINER, tmp_path, volumes, network="host")
    finally:
        kubeplay.remove_volumes(volumes)
    assert state["ExitCode"] != 0 and "sha256 mismatch: /work/.reprolab-code" in log, log
