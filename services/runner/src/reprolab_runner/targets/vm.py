"""What the three cloud VM targets share: the cloud-init user-data that runs the shared run agent,
the job document it reads, and the run's transfer area in the object store (``base.transfer_key``)
it reports to.

A VM never holds object-store credentials: the runner hands it presigned GET URLs for the inputs
and one presigned PUT URL per output name (the runner signs them and passes them in
``RunRequest.output_urls``; used alone, the target signs its own). ``status.json`` is uploaded
last, so its presence in the store is what "finished" means; the cloud's own VM state only tells
pending/running/failed apart.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reprolab_common.registrytoken import grant_for

from ..agent import agent_source
from .base import (
    INSTALLATION_LABEL,
    LABEL,
    OUTPUT_NAMES,
    Limits,
    Owned,
    RunRequest,
    State,
    Status,
    Target,
    TargetError,
    transfer_key,
)

__all__ = ["OUTPUT_NAMES", "CloudVmTarget", "cloud_init", "decode_cloud_init", "job_document"]
AGENT_PATH = "/opt/reprolab/run_agent.py"
JOB_PATH = "/opt/reprolab/job.json"
URL_SLACK_SECONDS = 3600  # boot, image pull and input downloads happen before the timeout starts


def _gz_b64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def cloud_init(job: dict[str, Any], agent_source: str) -> str:
    """The #cloud-config user-data every cloud VM boots with: write the agent and the job, run it.

    Pure (same job, same text). Written as JSON, which is YAML, so no YAML library is needed;
    files are gzip+base64 to stay under EC2's 16 KiB user-data limit.
    """
    doc = {
        "write_files": [
            {"path": AGENT_PATH, "permissions": "0755", "owner": "root:root",
             "encoding": "gz+b64", "content": _gz_b64(agent_source)},
            {"path": JOB_PATH, "permissions": "0600", "owner": "root:root",
             "encoding": "gz+b64", "content": _gz_b64(json.dumps(job, sort_keys=True))},
        ],
        "packages": ["podman"],
        "runcmd": [["python3", AGENT_PATH, JOB_PATH]],
    }
    return f"#cloud-config\n# {LABEL}: {job['run_id']}\n" + json.dumps(doc, sort_keys=True) + "\n"


def decode_cloud_init(user_data: str) -> dict[str, str]:
    """Inverse of ``cloud_init`` for tests and debugging: {path: file text}."""
    doc = json.loads(user_data.split("\n", 2)[2])
    return {f["path"]: gzip.decompress(base64.b64decode(f["content"])).decode() for f in doc["write_files"]}


def job_document(request: RunRequest, outputs: dict[str, str], *, registry_tls_verify: bool = True) -> dict[str, Any]:
    """The JSON the run agent reads: everything by URL, nothing by local path."""
    def remote(inp, what):
        if not inp.url:
            raise TargetError(f"{what} {inp.mount} has no presigned URL; cloud targets fetch inputs by URL")
        return {"url": inp.url, "sha256": inp.sha256, "mount": inp.mount}

    lim: Limits = request.limits
    return {
        "run_id": request.run_id, "image": request.image, "command": list(request.command),
        "env": dict(request.env),
        "limits": {"cpu_millis": lim.cpu_millis, "memory_bytes": lim.memory_bytes, "pids": lim.pids,
                   "timeout_seconds": lim.timeout_seconds, "network": lim.network},
        "code": remote(request.code, "code archive"),
        "datasets": [remote(d, "dataset") for d in request.datasets],
        "outputs": outputs, "registry_tls_verify": registry_tls_verify, "user": "65534:65534",
    }


def split_handle(handle: str) -> tuple[str, str]:
    """Handles are ``<run id>/<cloud VM id>``: enough to find both the VM and the outputs."""
    run_id, sep, vm_id = handle.rpartition("/")
    if not sep or not run_id or not vm_id:
        raise TargetError(f"malformed cloud run handle {handle!r}")
    return run_id, vm_id


class VmState:
    """What a cloud says about a VM, reduced to what the runner needs."""

    PENDING, RUNNING, STOPPED, FAILED, GONE = "pending", "running", "stopped", "failed", "gone"


class CloudVmTarget(Target):
    """Base of the aws/azure/openstack targets: the object-store half of every method.

    Subclasses implement ``_create``, ``_vm_state``, ``_delete`` and ``_list_owned``.
    """

    remote = True

    def __init__(self, settings=None, *, store=None, options: dict | None = None, installation: str = "") -> None:
        self.options = dict(options or {})
        self.installation = installation
        self.registry_auth_file = getattr(settings, "registry_auth_file", None)
        if store is None and settings is not None:
            from reprolab_common.objectstore import make_object_store

            store = make_object_store(getattr(settings, "common", settings))
        if store is None or not hasattr(store, "client"):
            raise TargetError("cloud targets need the S3 object store (REPROLAB_OBJECT_STORE=s3): "
                              "VMs upload outputs through presigned URLs")
        self.store = store

    # -- the cloud half ----------------------------------------------------------------------
    @abstractmethod
    def _create(self, request: RunRequest, user_data: str) -> str:
        """Boot a VM tagged LABEL=run id with this user-data; return its id."""

    @abstractmethod
    def _vm_state(self, vm_id: str) -> tuple[str, str]:
        """(VmState, detail)."""

    @abstractmethod
    def _delete(self, vm_id: str) -> None:
        """Delete the VM and what was created with it; a missing VM is not an error."""

    @abstractmethod
    def _list_owned(self) -> list[tuple[dict[str, str], str]]:
        """(tags, vm id) of every VM carrying LABEL."""

    def tags(self, run_id: str) -> dict[str, str]:
        """What every resource of a run carries: its run id and (if set) this installation, so a
        reconciler sharing the account with another installation removes only its own."""
        return {LABEL: run_id, **({INSTALLATION_LABEL: self.installation} if self.installation else {})}

    # -- the store half ------------------------------------------------------------------------
    def _key(self, run_id: str, name: str = "") -> str:
        return transfer_key(run_id, name)

    def output_urls(self, request: RunRequest) -> dict[str, str]:
        """The request's own URLs (the runner signs them), else signed here for the transfer area."""
        if request.output_urls:
            missing = set(OUTPUT_NAMES) - request.output_urls.keys()
            if missing:
                raise TargetError(f"the run request has no upload URL for {', '.join(sorted(missing))}")
            return dict(request.output_urls)
        expires = request.limits.timeout_seconds + URL_SLACK_SECONDS
        return {name: self.store.presigned_put_url(self._key(request.run_id, name), expires) for name in OUTPUT_NAMES}

    def _read(self, run_id: str, name: str) -> bytes | None:
        try:
            return self.store.client.get_object(Bucket=self.store.bucket, Key=self._key(run_id, name))["Body"].read()
        except self.store.client.exceptions.NoSuchKey:
            return None

    def reported(self, run_id: str) -> dict | None:
        raw = self._read(run_id, "status.json")
        return None if raw is None else json.loads(raw)

    @staticmethod
    def _from_report(report: dict) -> Status:
        if report.get("exit_code") is None:
            return Status(State.FAILED, reason=f"the run agent failed: {report.get('error') or 'no exit code'}")
        return Status(State.EXITED, exit_code=int(report["exit_code"]), timed_out=bool(report.get("timed_out")),
                      reason="timed out" if report.get("timed_out") else "")

    # -- Target ------------------------------------------------------------------------------
    def submit(self, request: RunRequest) -> str:
        job = job_document(request, self.output_urls(request),
                           registry_tls_verify=not self.options.get("insecure_registry", False))
        # the VM is the requester's (their cloud account): it gets a grant for this one image, never
        # the runner's password, valid as long as the run's presigned URLs
        grant = grant_for(self.registry_auth_file, request.image,
                          request.limits.timeout_seconds + URL_SLACK_SECONDS)
        if grant is not None:
            job["registry_auth"] = grant
        vm_id = self._create(request, cloud_init(job, agent_source()))
        return f"{request.run_id}/{vm_id}"

    def status(self, handle: str) -> Status:
        run_id, vm_id = split_handle(handle)
        if (report := self.reported(run_id)) is not None:
            return self._from_report(report)
        state, detail = self._vm_state(vm_id)
        if state in (VmState.PENDING, VmState.RUNNING):
            return Status(State(state))
        # The VM may have powered off between the two reads: look once more before calling it failed.
        if (report := self.reported(run_id)) is not None:
            return self._from_report(report)
        if state == VmState.GONE:
            return Status(State.GONE, reason="the VM no longer exists and no exit status was uploaded")
        return Status(State.FAILED, reason=f"the instance failed ({detail}) before the run agent uploaded an "
                                           "exit status; check the VM's console log")

    def logs(self, handle: str) -> Iterator[str]:
        run_id, _ = split_handle(handle)
        for name in ("stdout.log", "stderr.log"):
            raw = self._read(run_id, name)
            if raw:
                yield from raw.decode(errors="replace").splitlines()

    def cancel(self, handle: str) -> None:
        self._delete(split_handle(handle)[1])

    def collect(self, handle: str, dest: Path) -> None:
        run_id, _ = split_handle(handle)
        dest.mkdir(parents=True, exist_ok=True)
        raw = self._read(run_id, "outputs.tar.gz")
        if raw is None:
            raise TargetError(f"run {run_id} uploaded no outputs")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tf:
            tf.extractall(dest, filter="data")

    def cleanup(self, handle: str) -> None:
        run_id, vm_id = split_handle(handle)
        self._delete(vm_id)
        for name in OUTPUT_NAMES:
            self.store.client.delete_object(Bucket=self.store.bucket, Key=self._key(run_id, name))

    def owned(self):
        """This installation's VMs (every VM carrying LABEL when the target has no installation)."""
        return [Owned(run_id=tags[LABEL], handle=f"{tags[LABEL]}/{vm}") for tags, vm in self._list_owned()
                if LABEL in tags and (not self.installation or tags.get(INSTALLATION_LABEL) == self.installation)]
