"""The shared run agent, executed for real: the exact run_agent.py a VM's cloud-init runs.

It runs on this host (as root, like on a VM) with podman, pulls the base image from a real OCI
registry, fetches inputs through presigned GET URLs from moto's S3 (a named fake of AWS) and
uploads outputs through presigned PUT URLs; the VM power-off is skipped with --no-poweroff.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import boto3
import pytest
from reprolab_runner.agent import agent_source
from reprolab_runner.targets.vm import AGENT_PATH, OUTPUT_NAMES, cloud_init, decode_cloud_init

BUCKET = "agent-test"


@pytest.fixture(scope="module")
def s3(moto_url, monkeypatch_module):
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def pinned_image(oci_registry, base_image) -> str:
    """The base image pushed to the registry, referenced by digest as runs are."""
    ref = f"{oci_registry.address}/agent/{uuid.uuid4().hex[:8]}:v1"
    digest_file = Path(f"/tmp/agent-digest-{uuid.uuid4().hex}")
    subprocess.run(["podman", "push", "-q", "--tls-verify=false", "--digestfile", str(digest_file),
                    base_image, ref], check=True)
    digest = digest_file.read_text().strip()
    digest_file.unlink()
    return ref.rsplit(":", 1)[0] + "@" + digest


def _put(s3, key: str, data: bytes) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=600)
    return {"url": url, "sha256": hashlib.sha256(data).hexdigest()}


def _code_archive(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MAIN = r'''
import json, os, socket, sys
rows = open("/data/numbers.csv").read().split()
total = sum(int(x) for x in rows)
checks = {"uid": os.getuid(), "total": total}
try:
    open("/etc/hostile", "w")
    checks["rootfs_writable"] = True
except OSError:
    checks["rootfs_writable"] = False
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    checks["network"] = True
except OSError:
    checks["network"] = False
try:
    open("/data/numbers.csv", "a")
    checks["data_writable"] = True
except OSError:
    checks["data_writable"] = False
with open("/proc/self/status") as fh:
    checks["capeff"] = [l.split()[1] for l in fh if l.startswith("CapEff")][0]
    fh.seek(0)
    checks["no_new_privs"] = [l.split()[1] for l in fh if l.startswith("NoNewPrivs")][0]
open("/tmp/scratch", "w").write("tmpfs ok")
json.dump({"total": total}, open("/outputs/metrics.json", "w"))
os.makedirs("/outputs/figures", exist_ok=True)
open("/outputs/figures/plot.txt", "w").write("a plot")
print(json.dumps(checks))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
'''


def _job(s3, image: str, command: list[str], *, data: bytes = b"1 2 3 4\n", data_sha: str | None = None,
         timeout: int = 120) -> tuple[dict, str]:
    run_id = f"r{uuid.uuid4().hex[:10]}"
    code = _put(s3, f"in/{run_id}/code.tar.gz", _code_archive({"main.py": MAIN}))
    ds = _put(s3, f"in/{run_id}/numbers.csv", data)
    if data_sha is not None:
        ds["sha256"] = data_sha
    outputs = {name: s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": f"out/{run_id}/{name}"},
                                               ExpiresIn=600) for name in OUTPUT_NAMES}
    job = {"run_id": run_id, "image": image, "command": command, "env": {"REPROLAB_RUN": run_id},
           "limits": {"cpu_millis": 500, "memory_bytes": 256 << 20, "pids": 64, "timeout_seconds": timeout,
                      "network": False},
           "code": {**code, "mount": "/work"}, "datasets": [{**ds, "mount": "/data/numbers.csv"}],
           "outputs": outputs, "registry_tls_verify": False, "user": "65534:65534"}
    return job, run_id


def _run_agent(tmp_path: Path, job: dict) -> subprocess.CompletedProcess:
    """Write exactly what cloud-init writes, then run it as cloud-init's runcmd would."""
    files = decode_cloud_init(cloud_init(job, agent_source()))
    agent = tmp_path / "run_agent.py"
    agent.write_text(files[AGENT_PATH])
    source = Path(__file__).parents[2] / "services/runner/src/reprolab_runner/agent/run_agent.py"
    assert files[AGENT_PATH] == source.read_text()
    job_file = tmp_path / "job.json"
    job_file.write_text(files["/opt/reprolab/job.json"])
    return subprocess.run([sys.executable, str(agent), str(job_file), "--no-poweroff"],
                          capture_output=True, text=True, timeout=120)


def _get(s3, run_id: str, name: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=BUCKET, Key=f"out/{run_id}/{name}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def test_agent_runs_sandboxed_and_uploads_outputs(s3, pinned_image, tmp_path: Path) -> None:
    job, run_id = _job(s3, pinned_image, ["python3", "main.py"])
    proc = _run_agent(tmp_path, job)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(_get(s3, run_id, "status.json"))
    assert status["exit_code"] == 0 and status["timed_out"] is False and status["error"] == ""
    checks = json.loads(_get(s3, run_id, "stdout.log").decode().strip().splitlines()[-1])
    assert checks == {"uid": 65534, "total": 10, "rootfs_writable": False, "network": False,
                      "data_writable": False, "capeff": "0000000000000000", "no_new_privs": "1"}
    assert b"to stderr" in _get(s3, run_id, "stderr.log")
    assert json.loads(_get(s3, run_id, "metrics.json")) == {"total": 10}
    with tarfile.open(fileobj=io.BytesIO(_get(s3, run_id, "outputs.tar.gz"))) as tf:
        assert sorted(tf.getnames()) == ["figures", "figures/plot.txt", "metrics.json"]
    leftover = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label=org.reprolab.run-id={run_id}"],
                              capture_output=True, text=True, check=True).stdout
    assert leftover.strip() == ""


def test_failing_command_reports_its_exit_code(s3, pinned_image, tmp_path: Path) -> None:
    job, run_id = _job(s3, pinned_image, ["python3", "main.py", "3"])
    proc = _run_agent(tmp_path, job)
    assert proc.returncode == 0, proc.stderr  # the agent worked; the student's code failed
    assert json.loads(_get(s3, run_id, "status.json"))["exit_code"] == 3


def test_timeout_kills_the_run(s3, pinned_image, tmp_path: Path) -> None:
    job, run_id = _job(s3, pinned_image, ["sleep", "60"], timeout=2)
    _run_agent(tmp_path, job)
    status = json.loads(_get(s3, run_id, "status.json"))
    assert status["timed_out"] is True and status["exit_code"] != 0
    assert status["duration_seconds"] < 30


def test_input_with_wrong_sha256_is_refused(s3, pinned_image, tmp_path: Path) -> None:
    job, run_id = _job(s3, pinned_image, ["python3", "main.py"], data_sha="0" * 64)
    proc = _run_agent(tmp_path, job)
    assert proc.returncode == 1
    status = json.loads(_get(s3, run_id, "status.json"))
    assert status["exit_code"] is None and "does not match" in status["error"]
    assert _get(s3, run_id, "stdout.log") is None  # nothing ran


def test_missing_image_is_reported(s3, oci_registry, tmp_path: Path) -> None:
    job, run_id = _job(s3, f"{oci_registry.address}/nope/none@sha256:{'a' * 64}", ["true"])
    _run_agent(tmp_path, job)
    status = json.loads(_get(s3, run_id, "status.json"))
    assert status["exit_code"] is None and "could not pull image" in status["error"]
