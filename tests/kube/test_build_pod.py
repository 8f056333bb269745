"""The kubernetes build backend's Job pod template, executed for real with `podman kube play` from the
build-job image: the init container fetches the context through a presigned S3 URL (moto), the build
container builds it with rootless buildah under its own securityContext and pushes it to a real
registry. Its seccomp profile is the chart's Localhost profile; under containerd's default profile
(what `RuntimeDefault` means on most managed clusters) the same pod is refused its user namespace."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from reprolab_builder import k8s_manifests as manifests

from . import kubeplay

ROOT = Path(__file__).resolve().parents[2]
CHART_SECCOMP = ROOT / "charts" / "reprolab" / "files" / "seccomp"
sys.path.insert(0, str(ROOT / "scripts"))
import seccomp_profiles  # noqa: E402

pytestmark = pytest.mark.timeout(1800)  # the first session builds the platform images

CONTAINERFILE = """\
FROM {base}
# RUN needs the user namespace and chroot; a file owned by 0:42 needs more than one mapped id.
RUN echo built-in-a-pod > /hello && chown 0:42 /hello
COPY note.txt /note.txt
"""


@pytest.fixture(scope="module")
def build_setup(platform_images: dict[str, str], oci_registry, moto_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("buildpod")
    base = f"{oci_registry.address}/kube/bookworm-python:latest"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    "containers-storage:localhost/reprolab/bookworm-python:latest", f"docker://{base}"],
                   check=True, timeout=300)
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        for name, data in (("Containerfile", CONTAINERFILE.format(base=base).encode()), ("note.txt", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    bucket = f"buildpod-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="build-contexts/ctx.tar", Body=ctx.getvalue())
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "build-contexts/ctx.tar"},
                                    ExpiresIn=900)
    return {"work": work, "registry": oci_registry.address, "url": url, "builder": platform_images["build-job"]}


def run_build_pod(setup: dict[str, Any], *, tag: str, seccomp_root: Path) -> tuple[dict[str, Any], str, str]:
    """Play the build Job's pod; (container state, build log, digest written to the termination log)."""
    name = f"kbuild-{tag}-{uuid.uuid4().hex[:6]}"
    image_ref = f"{setup['registry']}/kube/env:{tag}"
    job = manifests.make_build_job(
        name=name, namespace="reprolab-builds", builder_image=setup["builder"], context_url=setup["url"],
        image_ref=image_ref, registry_secret=f"{name}-auth", labels=manifests.build_labels(tag),
        resources={"requests": {"cpu": "500m", "memory": "512Mi"}}, active_deadline_seconds=900,
        insecure_registry=True)
    secrets = {f"{name}-auth": {"auth.json": json.dumps({"auths": {}})}}
    names = kubeplay.create_secrets(secrets, setup["work"])
    pod = kubeplay.for_podman(kubeplay.pod_from(job, name), secrets=secrets)
    termination_log = kubeplay.with_termination_log(pod, manifests.BUILD_CONTAINER, setup["work"])
    try:
        kubeplay.play(pod, setup["work"], args=("--network", "host", "--seccomp-profile-root", str(seccomp_root)))
        state = kubeplay.wait_exited(name, manifests.BUILD_CONTAINER, 600)
        return state, kubeplay.logs(name, manifests.BUILD_CONTAINER, 40), termination_log.read_text().strip()
    finally:
        kubeplay.down(name)
        kubeplay.remove_secrets(names)


def test_build_pod_builds_and_pushes_under_its_own_security_context(build_setup: dict[str, Any]) -> None:
    state, log, digest = run_build_pod(build_setup, tag="v1", seccomp_root=CHART_SECCOMP)
    assert state["ExitCode"] == 0, log
    assert digest.startswith("sha256:"), (digest, log)
    ref = f"{build_setup['registry']}/kube/env@{digest}"
    manifest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                              capture_output=True, text=True, timeout=120)
    assert manifest.returncode == 0, manifest.stderr
    assert json.loads(manifest.stdout)["layers"], manifest.stdout
    # The image really holds what the RUN step made, owned by 0:42 inside the user namespace.
    subprocess.run(["podman", "pull", "--quiet", "--tls-verify=false", ref], check=True, capture_output=True,
                   timeout=300)
    out = subprocess.run(["podman", "run", "--rm", "--network=none", ref, "sh", "-c",
                          "cat /hello /note.txt; stat -c %u:%g /hello"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["built-in-a-pod", "hello", "0:42"], out
    subprocess.run(["podman", "rmi", ref], capture_output=True)


def test_build_pod_under_containerds_default_seccomp_profile_is_refused_its_user_namespace(
        build_setup: dict[str, Any], tmp_path: Path) -> None:
    # What RuntimeDefault means on a containerd node, for this container's capabilities, installed under
    # the Localhost profile's name: the user namespace the build needs is refused.
    profile = seccomp_profiles.containerd_default(manifests.BUILD_CAPABILITIES)
    (tmp_path / manifests.SECCOMP_PROFILE).write_text(seccomp_profiles.dump(profile))
    state, log, digest = run_build_pod(build_setup, tag="containerd-default", seccomp_root=tmp_path)
    assert state["ExitCode"] != 0 and digest == "", log
    assert "Operation not permitted" in log or "operation not permitted" in log, log


def test_the_charts_build_profile_is_containerds_default_plus_the_user_namespace_calls() -> None:
    shipped = json.loads((CHART_SECCOMP / manifests.SECCOMP_PROFILE).read_text())
    assert shipped == seccomp_profiles.build_profile(), "run python scripts/seccomp_profiles.py"
    base = seccomp_profiles.containerd_default(manifests.BUILD_CAPABILITIES)
    allowed = {n for s in shipped["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s["args"]
               for n in s["names"]}
    base_allowed = {n for s in base["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s["args"]
                    for n in s["names"]}
    assert allowed - base_allowed == set(seccomp_profiles.BUILD_EXTRA)
    assert base_allowed <= allowed
    assert shipped["defaultAction"] == "SCMP_ACT_ERRNO"
