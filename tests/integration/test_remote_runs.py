"""A run with ``target: aws`` through the whole platform: REST API → runner → EC2 → the shared run
agent → outputs back through the REST API.

Real parts: every service as a process, NATS, SQLite, the environment built with buildah and pushed
to the platform's OCI registry, podman, the exact run agent a VM's cloud-init would run, and the
credentials set through the REST API. FAKES: AWS is moto in server mode (a fake of EC2 and S3 over
real HTTP; the object store lives there too), and ``fake_ec2.FailingEc2`` (a fake EC2 that answers
one error) for refusals moto never gives.

moto never boots a VM, so the test plays the VM (a "fake VM"): it reads the instance's user-data
from EC2 with boto3, decodes the cloud-init, and runs exactly the agent and job written there on this
host (as root, with podman, like on a VM; only the power-off is skipped). The agent fetches the inputs
and uploads the outputs through the presigned URLs in the job, with no credentials.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from reprolab_cli.client import ApiError, Client
from reprolab_cli.supervisor import Platform
from reprolab_runner.targets.base import INSTALLATION_LABEL, LABEL
from reprolab_runner.targets.vm import AGENT_PATH, JOB_PATH, decode_cloud_init

sys.path.insert(0, str(Path(__file__).parents[1] / "runner" / "fakes"))
import fake_ec2  # noqa: E402

BASE = "localhost/reprolab/bookworm-python:latest"
IRIS = Path(__file__).resolve().parents[2] / "cli" / "src" / "reprolab_cli" / "data" / "iris-train.csv"
AWS_SECRET = "moto-secret-" + uuid.uuid4().hex  # moto accepts any key; this one must never show up anywhere

TRAIN = '''
import csv, json, os
rows = list(csv.DictReader(open("/data/iris-train.csv")))
print(f"read {len(rows)} rows as uid {os.getuid()}")
os.makedirs("/outputs/model", exist_ok=True)
open("/outputs/model/rows.txt", "w").write(str(len(rows)))
json.dump({"rows": len(rows), "accuracy": 0.9}, open("/outputs/metrics.json", "w"))
'''


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Lab:
    def __init__(self, platform: Platform, admin: Client, ec2, moto_url: str) -> None:
        self.platform, self.admin, self.ec2, self.moto_url = platform, admin, ec2, moto_url
        _, self.teacher = self.user("rt")
        self.ws = f"aws-{uuid.uuid4().hex[:8]}"
        self.teacher.post("/workspaces", json={"slug": self.ws, "title": "Remote runs"})
        self.teacher.post(f"/workspaces/{self.ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
                          content=IRIS.read_bytes())
        self.teacher.post(f"/workspaces/{self.ws}/environments", json={"name": "py", "spec": {
            "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
        build = self.teacher.post(f"/workspaces/{self.ws}/environments/py/versions/1/builds", expect=(202,))
        deadline = time.monotonic() + 400
        while (status := self.teacher.get(f"/builds/{build['id']}")["status"]) not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        if status != "succeeded":  # say why: the build's error and the end of its log
            body = self.teacher.get(f"/builds/{build['id']}")
            log = self.teacher.response("GET", f"/builds/{build['id']}/logs", expect=(200,)).text
            pytest.fail(f"the environment's build failed: {body.get('error')}\n{log[-3000:]}")
        self.ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def user(self, prefix: str) -> tuple[str, Client]:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        return name, self.admin.as_user(self.admin.post("/users", json={"username": name})["token"])

    def student(self, **options: str) -> Client:
        """A member of the workspace; with options, AWS credentials set through the REST API."""
        name, client = self.user("rs")
        self.teacher.post(f"/workspaces/{self.ws}/members", json={"username": name, "role": "student"})
        if options:
            client.request("PUT", "/me/credentials/aws", params={"workspace": self.ws}, json={
                "secret": {"access_key_id": "AKIATESTINGKEY0001", "secret_access_key": AWS_SECRET},
                "options": {"region": "us-east-1", "image_id": self.ami, "instance_type": "t3.micro",
                            "insecure_registry": "true", **options}})
        return client

    def submit(self, client: Client, command: list[str], target: str = "aws", **extra) -> dict:
        code = client.request("POST", f"/workspaces/{self.ws}/code", content=tar_gz({"train.py": TRAIN}),
                              expect=(201,))
        body = {"environment": "py", "code": code["digest"], "command": command, "target": target,
                "datasets": ["iris-train.csv"], **extra}
        return client.request("POST", f"/workspaces/{self.ws}/runs", json=body, expect=(202,))

    def instance_of(self, run_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.ec2.describe_instances(Filters=[{"Name": f"tag:{LABEL}", "Values": [run_id]}])
            instances = [i for r in found["Reservations"] for i in r["Instances"]]
            if instances:
                return instances[0]
            assert time.monotonic() < deadline, "the runner booted no instance"
            time.sleep(0.2)

    def play_vm(self, instance_id: str, workdir: Path) -> subprocess.CompletedProcess:
        """The fake VM: what its cloud-init would do, with the user-data EC2 holds for it."""
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        files = decode_cloud_init(base64.b64decode(attr["UserData"]["Value"]).decode())
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "run_agent.py").write_text(files[AGENT_PATH])
        (workdir / "job.json").write_text(files[JOB_PATH])
        return subprocess.run([sys.executable, str(workdir / "run_agent.py"), str(workdir / "job.json"),
                               "--no-poweroff"], capture_output=True, text=True, timeout=300)


def wait_run(client: Client, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (run := client.get(f"/runs/{run_id}"))["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    return run


@pytest.fixture(scope="module")
def lab(moto_url: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {"REPROLAB_OBJECT_STORE": "s3", "REPROLAB_S3_ENDPOINT_URL": moto_url,
           "REPROLAB_S3_BUCKET": f"remote-{uuid.uuid4().hex[:8]}", "REPROLAB_RUNNER_ENABLED_TARGETS": '["local","aws"]',
           "REPROLAB_RUNNER_ACK_WAIT_SECONDS": "10", **creds}
    platform = Platform(tmp_path_factory.mktemp("remote"), extra_env=env)
    try:
        platform.start(timeout=90)
        admin = Client(platform.url, platform.admin_token())
        ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        yield Lab(platform, admin, ec2, moto_url)
        admin.close()
    finally:
        platform.stop()


def test_an_aws_run_goes_to_a_vm_and_comes_back_with_outputs(lab: Lab, tmp_path: Path) -> None:
    student = lab.student(endpoint_url=lab.moto_url)
    run = lab.submit(student, ["python3", "train.py"])
    assert run["target"] == "aws"
    inst = lab.instance_of(run["id"])
    assert {"Key": LABEL, "Value": run["id"]} in inst["Tags"] and inst["InstanceType"] == "t3.micro"
    assert INSTALLATION_LABEL in {t["Key"] for t in inst["Tags"]}  # the reconciler removes only its own
    vols = lab.ec2.describe_volumes(Filters=[{"Name": f"tag:{LABEL}", "Values": [run["id"]]}])["Volumes"]
    assert vols, "the instance's volumes carry the run's tag too"
    assert student.get(f"/runs/{run['id']}")["status"] == "running"

    agent = lab.play_vm(inst["InstanceId"], tmp_path / "vm")
    assert agent.returncode == 0, agent.stderr

    done = wait_run(student, run["id"])
    assert (done["status"], done["exit_code"], done["error"] or "") == ("succeeded", 0, ""), done
    assert done["metrics"] == {"rows": 120, "accuracy": 0.9}
    assert done["provenance"]["target"] == "aws" and "@sha256:" in done["provenance"]["image"]
    outs = {f["name"]: f for f in student.get(f"/runs/{run['id']}/outputs")["files"]}
    assert {"metrics.json", "model/rows.txt", "logs.txt"} <= set(outs)
    student.download(f"/runs/{run['id']}/outputs/model/rows.txt", tmp_path / "rows.txt")
    assert (tmp_path / "rows.txt").read_text() == "120"
    student.download(f"/runs/{run['id']}/outputs/logs.txt", tmp_path / "logs.txt")
    assert "read 120 rows as uid 65534" in (tmp_path / "logs.txt").read_text()  # the sandbox's user

    deadline = time.monotonic() + 30
    while (state := lab.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
           ["State"]["Name"]) not in ("shutting-down", "terminated"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    # the secret is nowhere the student or the platform's logs can see
    assert AWS_SECRET not in json.dumps(done) and AWS_SECRET not in json.dumps(student.get(
        "/me/credentials", params={"workspace": lab.ws}))
    logs = "".join(p.read_text(errors="replace") for p in lab.platform.log_dir.glob("*.log"))
    assert AWS_SECRET not in logs


def test_the_agent_reporting_a_nonzero_exit_fails_the_run(lab: Lab, tmp_path: Path) -> None:
    student = lab.student(endpoint_url=lab.moto_url)
    run = lab.submit(student, ["python3", "-c", "import sys; print('bad'); sys.exit(3)"])
    agent = lab.play_vm(lab.instance_of(run["id"])["InstanceId"], tmp_path / "vm")
    assert agent.returncode == 0, agent.stderr  # the agent worked; the student's code failed
    done = wait_run(student, run["id"])
    assert (done["status"], done["exit_code"]) == ("failed", 3) and "exited with code 3" in done["error"], done


def test_without_credentials_the_run_is_refused_with_how_to_set_them(lab: Lab) -> None:
    student = lab.student()
    with pytest.raises(ApiError) as info:
        lab.submit(student, ["python3", "train.py"])
    assert info.value.status == 422
    assert f"no aws credentials for you in workspace {lab.ws!r}" in str(info.value)
    assert f"reprolab credentials set aws --workspace {lab.ws}" in str(info.value)


def test_a_disabled_target_says_which_setting_enables_it(lab: Lab) -> None:
    # a student is told whom to ask, not an operator's setting; the platform's admin is told the setting
    with pytest.raises(ApiError) as info:
        lab.submit(lab.student(endpoint_url=lab.moto_url), ["true"], target="azure")
    assert info.value.status == 422
    assert "ask the platform's administrator to enable it" in str(info.value)
    assert "REPROLAB_RUNNER_ENABLED_TARGETS" not in str(info.value)
    with pytest.raises(ApiError) as info:
        lab.submit(lab.admin, ["true"], target="azure")
    assert info.value.status == 422
    assert """REPROLAB_RUNNER_ENABLED_TARGETS='["local","aws","azure"]'""" in str(info.value)


@pytest.mark.parametrize(("code", "needle"), [
    ("AuthFailure", "AWS rejected the credentials while starting the instance (AuthFailure)"),
    ("InstanceLimitExceeded", "AWS quota exceeded while starting the instance (InstanceLimitExceeded"),
])
def test_cloud_refusals_fail_the_run_with_a_clear_reason(lab: Lab, code: str, needle: str) -> None:
    fake = fake_ec2.FailingEc2(code, "refused by the fake")
    try:
        student = lab.student(endpoint_url=fake.url)
        done = wait_run(student, lab.submit(student, ["python3", "train.py"])["id"])
    finally:
        fake.close()
    assert done["status"] == "failed" and done["error"].startswith("the run could not start: "), done
    assert needle in done["error"] and AWS_SECRET not in done["error"]
