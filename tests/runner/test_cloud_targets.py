"""The aws, azure and openstack targets through their real SDKs over real HTTP.

AWS is moto in server mode (a named fake of AWS) plus ``FailingEc2`` (a fake answering one EC2
error) for the error paths; Azure and OpenStack are the fakes in ``fakes/``. Outputs always go
through presigned URLs to moto's S3, and the agent's part is played by PUTting to the very URLs
found in the VM's user-data (the agent itself runs for real in test_run_agent.py).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import tarfile
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from reprolab_common.objectstore import S3ObjectStore
from reprolab_runner.targets import aws, azure, openstack  # noqa: F401  (registers the targets)
from reprolab_runner.targets.base import LABEL, Input, Limits, RunRequest, State, TargetError, target_class
from reprolab_runner.targets.vm import AGENT_PATH, JOB_PATH, decode_cloud_init

FAKES = Path(__file__).parent / "fakes"


sys.path.insert(0, str(FAKES))  # the fakes are plain modules beside the tests
import fake_azure  # noqa: E402
import fake_ec2  # noqa: E402
import fake_openstack  # noqa: E402


@pytest.fixture(scope="module")
def aws_env():
    mp = pytest.MonkeyPatch()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        mp.setenv(key, "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def store(moto_url, aws_env) -> S3ObjectStore:
    return S3ObjectStore(f"runs-{uuid.uuid4().hex[:8]}", endpoint_url=moto_url, region="us-east-1")


def _request(store: S3ObjectStore) -> RunRequest:
    run_id = f"run-{uuid.uuid4().hex[:10]}"
    store.put_bytes(f"in/{run_id}/code.tar.gz", b"code")
    code = Input(mount="/work", url=store.presigned_get_url(f"in/{run_id}/code.tar.gz", 600), sha256="ab" * 32)
    return RunRequest(run_id=run_id, image="registry.example/env@sha256:" + "c" * 64, command=["python", "main.py"],
                      code=code, limits=Limits(timeout_seconds=60))


def _job_of(user_data: str) -> dict:
    files = decode_cloud_init(user_data)
    assert "def main(argv)" in files[AGENT_PATH]  # the agent itself is on board
    return json.loads(files[JOB_PATH])


def _play_agent(job: dict, exit_code: int | None, *, error: str = "") -> None:
    """Upload what the run agent uploads, through the presigned URLs of the job (no credentials)."""
    if exit_code is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in {"metrics.json": b'{"acc": 0.9}', "figs/a.txt": b"plot"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        for name, data in {"stdout.log": b"epoch 1\nepoch 2\n", "stderr.log": b"warn\n",
                           "outputs.tar.gz": buf.getvalue()}.items():
            httpx.put(job["outputs"][name], content=data).raise_for_status()
    status = {"exit_code": exit_code, "timed_out": False, "error": error}
    httpx.put(job["outputs"]["status.json"], content=json.dumps(status).encode()).raise_for_status()


def _prefix_keys(store: S3ObjectStore, run_id: str) -> list[str]:
    found = store.client.list_objects_v2(Bucket=store.bucket, Prefix=f"runs/{run_id}/")
    return [o["Key"] for o in found.get("Contents", [])]


def _lifecycle(target, store, user_data_of, tmp_path: Path) -> None:
    """The shared happy path: submit, running, agent reports, exited, logs, collect, owned, cleanup."""
    req = _request(store)
    handle = target.submit(req)
    assert handle.startswith(req.run_id + "/")
    job = _job_of(user_data_of(handle))
    assert job["run_id"] == req.run_id and job["image"] == req.image and job["command"] == req.command
    assert job["code"]["url"] == req.code.url and job["limits"]["network"] is False
    assert target.status(handle).state in (State.PENDING, State.RUNNING)
    assert (req.run_id, handle) in {(o.run_id, o.handle) for o in target.owned()}

    _play_agent(job, 3)
    st = target.status(handle)
    assert (st.state, st.exit_code) == (State.EXITED, 3)
    assert list(target.logs(handle)) == ["epoch 1", "epoch 2", "warn"]
    target.collect(handle, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"acc": 0.9}
    assert (tmp_path / "out" / "figs" / "a.txt").read_text() == "plot"

    target.cleanup(handle)
    target.cleanup(handle)  # idempotent
    assert handle not in {o.handle for o in target.owned()}
    assert _prefix_keys(store, req.run_id) == []


def _agent_failure(target, store, user_data_of) -> None:
    req = _request(store)
    handle = target.submit(req)
    _play_agent(_job_of(user_data_of(handle)), None, error="could not pull image x: manifest unknown")
    st = target.status(handle)
    assert st.state == State.FAILED and "could not pull image" in st.reason
    target.cleanup(handle)


# -- AWS (moto) ---------------------------------------------------------------------------------

AWS_CREDS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture(scope="module")
def ec2(moto_url, aws_env):
    return boto3.client("ec2", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(scope="module")
def aws_target(moto_url, store, ec2):
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return target_class("aws")(credentials=AWS_CREDS | {"endpoint_url": moto_url},
                               options={"image_id": ami, "instance_type": "t3.micro"}, store=store)


def _aws_user_data(ec2):
    def get(handle: str) -> str:
        attr = ec2.describe_instance_attribute(InstanceId=handle.split("/")[1], Attribute="userData")
        return base64.b64decode(attr["UserData"]["Value"]).decode()
    return get


def test_aws_lifecycle(aws_target, store, ec2, tmp_path: Path) -> None:
    _lifecycle(aws_target, store, _aws_user_data(ec2), tmp_path)


def test_aws_instance_tags_and_shutdown_behaviour(aws_target, store, ec2) -> None:
    req = _request(store)
    handle = aws_target.submit(req)
    iid = handle.split("/")[1]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert {"Key": LABEL, "Value": req.run_id} in inst["Tags"]
    assert inst["InstanceType"] == "t3.micro"
    behaviour = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    vols = ec2.describe_volumes(Filters=[{"Name": f"tag:{LABEL}", "Values": [req.run_id]}])["Volumes"]
    assert vols, "the instance's volumes carry the run label too"
    aws_target.cleanup(handle)
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")


def test_aws_instance_failed_without_status(aws_target, store, ec2) -> None:
    handle = aws_target.submit(_request(store))
    ec2.terminate_instances(InstanceIds=[handle.split("/")[1]])  # died before the agent reported
    st = aws_target.status(handle)
    assert st.state == State.FAILED and "the instance failed" in st.reason and "terminated" in st.reason
    aws_target.cleanup(handle)


def test_aws_agent_failure(aws_target, store, ec2) -> None:
    _agent_failure(aws_target, store, _aws_user_data(ec2))


@pytest.mark.parametrize(("code", "expected"), [
    ("AuthFailure", "AWS rejected the credentials"),
    ("InstanceLimitExceeded", "quota exceeded"),
    ("VcpuLimitExceeded", "quota exceeded"),
])
def test_aws_errors(store, code: str, expected: str) -> None:
    fake = fake_ec2.FailingEc2(code, "nope")
    try:
        target = target_class("aws")(credentials=AWS_CREDS | {"endpoint_url": fake.url},
                                     options={"image_id": "ami-12c6146b"}, store=store)
        with pytest.raises(TargetError, match=expected):
            target.submit(_request(store))
    finally:
        fake.close()


def test_aws_needs_an_s3_store() -> None:
    with pytest.raises(TargetError, match="S3 object store"):
        target_class("aws")(credentials=AWS_CREDS, options={"image_id": "ami-1"})


# -- Azure (fake) -------------------------------------------------------------------------------

SUB, RG = "00000000-0000-0000-0000-000000000001", "reprolab-runs"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"


@pytest.fixture(scope="module")
def azure_fake(tmp_path_factory):
    fake = fake_azure.FakeAzure(tmp_path_factory.mktemp("azure"), tenant_id="tenant-1", client_id="app-1",
                                client_secret="s3cret")
    yield fake
    fake.close()


def _azure_creds(fake, secret: str = "s3cret") -> dict:
    return {"tenant_id": "tenant-1", "client_id": "app-1", "client_secret": secret, "subscription_id": SUB,
            "resource_group": RG, "location": "westeurope", "authority_host": fake.url,
            "arm_endpoint": fake.url, "ca_bundle": str(fake.ca_file)}


@pytest.fixture(scope="module")
def azure_target(azure_fake, store):
    return target_class("azure")(credentials=_azure_creds(azure_fake), options={"subnet_id": SUBNET}, store=store)


def _azure_user_data(fake):
    def get(handle: str) -> str:
        vm = next(v for v in fake.vms() if v["name"] == handle.split("/")[1])
        return base64.b64decode(vm["properties"]["osProfile"]["customData"]).decode()
    return get


def test_azure_lifecycle(azure_target, azure_fake, store, tmp_path: Path) -> None:
    _lifecycle(azure_target, store, _azure_user_data(azure_fake), tmp_path)
    assert ("POST", "/tenant-1/oauth2/v2.0/token") in azure_fake.requests
    assert not azure_fake.resources  # VM, NIC (and disk) all deleted


def test_azure_vm_and_nic_are_tagged(azure_target, azure_fake, store) -> None:
    req = _request(store)
    handle = azure_target.submit(req)
    name = handle.split("/")[1]
    vm = next(v for v in azure_fake.vms() if v["name"] == name)
    assert vm["tags"] == {LABEL: req.run_id}
    nic = next(r for r in azure_fake.resources.values() if r["name"] == f"{name}-nic")
    assert nic["tags"] == {LABEL: req.run_id}
    assert nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] == SUBNET
    assert vm["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    azure_target.cleanup(handle)


def test_azure_vm_stopped_without_status_failed(azure_target, azure_fake, store) -> None:
    handle = azure_target.submit(_request(store))
    azure_fake.power[handle.split("/")[1]] = "PowerState/deallocated"
    st = azure_target.status(handle)
    assert st.state == State.FAILED and "the instance failed" in st.reason and "deallocated" in st.reason
    azure_target.cleanup(handle)
    assert azure_target.status(handle).state == State.GONE


def test_azure_agent_failure(azure_target, azure_fake, store) -> None:
    _agent_failure(azure_target, store, _azure_user_data(azure_fake))


def test_azure_bad_credentials(azure_fake, store) -> None:
    target = target_class("azure")(credentials=_azure_creds(azure_fake, "wrong"), options={"subnet_id": SUBNET},
                                   store=store)
    with pytest.raises(TargetError, match="Azure rejected the credentials"):
        target.submit(_request(store))


def test_azure_quota_exceeded(azure_target, azure_fake, store) -> None:
    azure_fake.quota_exceeded = True
    try:
        with pytest.raises(TargetError, match="quota exceeded"):
            azure_target.submit(_request(store))
    finally:
        azure_fake.quota_exceeded = False
    assert not azure_fake.resources  # the NIC made before the refusal was removed


# -- OpenStack (fake) ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def os_fake():
    fake = fake_openstack.FakeOpenStack(username="alice", password="pw", project="course-101",
                                        app_cred=("ac-id", "ac-secret"))
    yield fake
    fake.close()


def _os_creds(fake, password: str = "pw") -> dict:
    return {"auth_url": fake.auth_url, "username": "alice", "password": password, "project": "course-101",
            "region": "RegionOne"}


OS_OPTIONS = {"image_id": "img-debian12", "flavor_id": "m1.small", "network_id": "net-1"}


@pytest.fixture(scope="module")
def os_target(os_fake, store):
    return target_class("openstack")(credentials=_os_creds(os_fake), options=OS_OPTIONS, store=store)


def _os_user_data(fake):
    return lambda handle: base64.b64decode(fake.servers[handle.split("/")[1]]["user_data"]).decode()


def test_openstack_lifecycle(os_target, os_fake, store, tmp_path: Path) -> None:
    req_servers = set(os_fake.servers)
    _lifecycle(os_target, store, _os_user_data(os_fake), tmp_path)
    assert set(os_fake.servers) == req_servers
    assert not os_fake.unhandled


def test_openstack_server_metadata_and_active(os_target, os_fake, store) -> None:
    req = _request(store)
    handle = os_target.submit(req)
    server = os_fake.servers[handle.split("/")[1]]
    assert server["metadata"] == {LABEL: req.run_id}
    assert server["networks"] == [{"uuid": "net-1"}] and server["flavor"] == {"id": "m1.small"}
    assert os_target.status(handle).state == State.PENDING
    server["status"] = "ACTIVE"
    assert os_target.status(handle).state == State.RUNNING
    os_target.cleanup(handle)


def test_openstack_error_state_is_failed(os_target, os_fake, store) -> None:
    handle = os_target.submit(_request(store))
    os_fake.servers[handle.split("/")[1]] |= {"status": "ERROR", "fault": {"code": 500, "message": "No valid host"}}
    st = os_target.status(handle)
    assert st.state == State.FAILED and "the instance failed" in st.reason and "No valid host" in st.reason
    os_target.cleanup(handle)
    assert os_target.status(handle).state == State.GONE


def test_openstack_shutoff_without_status_failed(os_target, os_fake, store) -> None:
    handle = os_target.submit(_request(store))
    os_fake.servers[handle.split("/")[1]]["status"] = "SHUTOFF"
    assert os_target.status(handle).state == State.FAILED
    os_target.cleanup(handle)


def test_openstack_agent_failure(os_target, os_fake, store) -> None:
    _agent_failure(os_target, store, _os_user_data(os_fake))


def test_openstack_application_credential(os_fake, store) -> None:
    target = target_class("openstack")(credentials={"auth_url": os_fake.auth_url, "application_credential_id": "ac-id",
                                                    "application_credential_secret": "ac-secret"},
                                       options=OS_OPTIONS, store=store)
    handle = target.submit(_request(store))
    assert handle.split("/")[1] in os_fake.servers
    target.cleanup(handle)


def test_openstack_bad_credentials(os_fake, store) -> None:
    target = target_class("openstack")(credentials=_os_creds(os_fake, "wrong"), options=OS_OPTIONS, store=store)
    with pytest.raises(TargetError, match="OpenStack rejected the credentials"):
        target.submit(_request(store))


def test_openstack_quota_exceeded(os_target, os_fake, store) -> None:
    os_fake.quota_exceeded = True
    try:
        with pytest.raises(TargetError, match="quota exceeded"):
            os_target.submit(_request(store))
    finally:
        os_fake.quota_exceeded = False
