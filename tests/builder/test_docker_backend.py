"""The docker backend against a real Docker-Engine-compatible API (``podman system service``) and a
real OCI registry on loopback."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from reprolab_builder.backends import BuildError
from reprolab_builder.backends.docker import MANIFEST_ACCEPT, DockerBackend, split_image_ref
from reprolab_builder.config import BuilderSettings


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private ``podman system service`` on a temporary unix socket (the Docker Engine API)."""
    sock = tmp_path_factory.mktemp("podman") / "api.sock"
    url = f"unix://{sock}"
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            docker.APIClient(base_url=url, version="auto").ping()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def backend(podman_socket: str, base_image: str) -> DockerBackend:
    return DockerBackend(BuilderSettings(backend="docker", docker_url=podman_socket, registry_tls_verify=False))


def make_context(root: Path, run: str = "python3 -c 'print(6*7)' > /answer") -> Path:
    context = root / "context"
    context.mkdir(parents=True)
    (context / "hello.txt").write_text("hello from the context\n")
    (context / "Containerfile").write_text(
        "FROM localhost/reprolab/bookworm-python:latest\n"
        "COPY hello.txt /opt/hello.txt\n"
        "RUN --mount=type=bind,source=hello.txt,target=/mnt/hello.txt cp /mnt/hello.txt /opt/mounted.txt\n"
        f"RUN {run}\n"
    )
    return context


def registry_digest(address: str, repo: str, tag: str) -> str | None:
    resp = httpx.get(f"http://{address}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.headers["docker-content-digest"]


def test_split_image_ref() -> None:
    assert split_image_ref("127.0.0.1:5000/ws/env:v3") == ("127.0.0.1:5000", "ws/env", "v3")
    assert split_image_ref("registry.example.org/a/b/c:v1") == ("registry.example.org", "a/b/c", "v1")
    with pytest.raises(ValueError):
        split_image_ref("ws/env:v1")
    with pytest.raises(ValueError):
        split_image_ref("127.0.0.1:5000/ws/env")


def test_build_and_push(backend: DockerBackend, oci_registry, tmp_path: Path) -> None:
    repo = f"ws{uuid.uuid4().hex[:8]}/env"
    image_ref = f"{oci_registry.address}/{repo}:v1"
    lines: list[str] = []
    result = backend.build_and_push(make_context(tmp_path), image_ref, log=lines.append)

    assert result.image_ref == image_ref
    assert result.digest.startswith("sha256:")
    assert registry_digest(oci_registry.address, repo, "v1") == result.digest
    assert any(line.startswith("STEP 3/4: RUN --mount=type=bind") for line in lines)

    # The pushed image really holds what the Containerfile made.
    out = subprocess.run(["podman", "run", "--rm", "--tls-verify=false", image_ref,
                          "cat", "/answer", "/opt/hello.txt", "/opt/mounted.txt"],
                         capture_output=True, text=True, check=True).stdout
    subprocess.run(["podman", "rmi", "-f", image_ref], capture_output=True, check=False)
    assert out == "42\nhello from the context\nhello from the context\n"


def test_existing_tag_is_never_moved(backend: DockerBackend, oci_registry, tmp_path: Path) -> None:
    repo = f"ws{uuid.uuid4().hex[:8]}/env"
    image_ref = f"{oci_registry.address}/{repo}:v1"
    first = backend.build_and_push(make_context(tmp_path / "a"), image_ref, log=lambda _: None)

    with pytest.raises(BuildError, match="already exists.*refusing to move"):
        backend.build_and_push(make_context(tmp_path / "b", run="echo other > /answer"), image_ref,
                               log=lambda _: None)
    assert registry_digest(oci_registry.address, repo, "v1") == first.digest


def test_failing_run_names_the_step(backend: DockerBackend, oci_registry, tmp_path: Path) -> None:
    repo = f"ws{uuid.uuid4().hex[:8]}/env"
    with pytest.raises(BuildError, match=r"STEP 4/4: RUN exit 3.*failed") as info:
        backend.build_and_push(make_context(tmp_path, run="exit 3"), f"{oci_registry.address}/{repo}:v1",
                               log=lambda _: None)
    assert "exit status 3" in str(info.value)
    assert registry_digest(oci_registry.address, repo, "v1") is None


def test_missing_base_image(backend: DockerBackend, oci_registry, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM localhost/reprolab/no-such-base:latest\nRUN true\n")
    with pytest.raises(BuildError, match="no-such-base"):
        backend.build_and_push(context, f"{oci_registry.address}/ws/missing:v1", log=lambda _: None)


def test_registry_down(backend: DockerBackend, tmp_path: Path) -> None:
    from reprolab_common.natsserver import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens here
    with pytest.raises(BuildError, match=f"registry {address} is unreachable"):
        backend.build_and_push(make_context(tmp_path), f"{address}/ws/env:v1", log=lambda _: None)


def test_build_volumes_are_refused(backend: DockerBackend, oci_registry, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="self-contained"):
        backend.build_and_push(make_context(tmp_path), f"{oci_registry.address}/ws/env:v1", log=lambda _: None,
                               build_volumes={"/wheels": tmp_path})
