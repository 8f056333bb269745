"""The local serving target against real podman (``podman system service``): the standard-library OIP
server mounted read-only into an image and started with that image's own python3, sandboxed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import docker
import httpx
import pytest
from reprolab_runner.deploy.engine import (
    MODEL_LABEL,
    LocalServing,
    ServingSpec,
    Started,
    artifact_kind,
    wait_ready,
)
from reprolab_runner.targets.base import TargetError

SCORE = """
    import os

    def init():
        global THRESHOLD
        THRESHOLD = 2.5

    def run(inputs):
        rows = inputs["input-0"]
        return ["virginica" if row[2] > THRESHOLD else "setosa" for row in rows]
"""


@pytest.fixture
def serving(podman_socket: str, base_image: str, tmp_path: Path) -> Iterator[LocalServing]:
    target = LocalServing(SimpleNamespace(docker_url=podman_socket, work_dir=tmp_path / "runs"),
                          installation="t-serve")
    yield target
    for handle in target.owned().values():
        target.stop(handle)
    assert target.owned() == {}


def spec(tmp_path: Path, image: str, version: int, score: str = SCORE) -> ServingSpec:
    d = tmp_path / f"v{version}"
    d.mkdir()
    (d / "score.py").write_text(textwrap.dedent(score))
    return ServingSpec(model_id=f"ws/iris/{version}", workspace="ws", name="iris", version=version, image=image,
                       artifact_dir=d, artifact_name="score.py", memory_bytes=256 << 20, pids=64,
                       max_body_bytes=4096)


def infer(url: str, rows: list[list[float]], version: int) -> httpx.Response:
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                        "data": [x for r in rows for x in r]}]}
    return httpx.post(f"{url}/v2/models/iris/versions/{version}/infer", json=body, timeout=10)


def test_serves_in_the_image_sandboxed_and_keeps_serving_after_bad_input(
        serving: LocalServing, base_image: str, podman_socket: str, tmp_path: Path) -> None:
    started = serving.start(spec(tmp_path, base_image, 1))
    seconds = wait_ready(serving, started, timeout=60)
    assert seconds < 60
    ok = infer(started.upstream_url, [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]], 1)
    assert ok.status_code == 200, ok.text
    assert ok.json()["outputs"][0]["data"] == ["setosa", "virginica"] and ok.headers["X-Request-Id"]

    # bad requests: 4xx with the protocol's error shape, and the server keeps serving
    bad_shape = httpx.post(f"{started.upstream_url}/v2/models/iris/versions/1/infer", timeout=10, json={
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [1.0]}]})
    assert bad_shape.status_code == 400 and "error" in bad_shape.json()
    assert httpx.post(f"{started.upstream_url}/v2/models/iris/versions/1/infer", content=b"{not json",
                      timeout=10).status_code == 400
    assert httpx.post(f"{started.upstream_url}/v2/models/iris/versions/1/infer", content=b"x" * 10_000,
                      timeout=10).status_code == 413
    assert httpx.get(f"{started.upstream_url}/v2/models/nope", timeout=10).status_code == 404
    assert httpx.get(f"{started.upstream_url}/v2/models/iris/versions/9", timeout=10).status_code == 404
    assert infer(started.upstream_url, [[5.0, 3.0, 1.0, 0.1]], 1).json()["outputs"][0]["data"] == ["setosa"]

    # the sandbox of a run: not root, no capabilities, read-only root and server, labelled
    attrs = docker.APIClient(base_url=podman_socket, version="auto").inspect_container(started.handle)
    assert attrs["Config"]["User"] == "65534:65534"
    assert attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert attrs["Config"]["Labels"][MODEL_LABEL] == "ws/iris/1"
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/opt/reprolab/serving/oip_server.py"]["RW"] is False
    assert mounts["/opt/reprolab/model"]["RW"] is False
    assert attrs["Config"]["Cmd"][0] == "/usr/bin/python3"
    serving.stop(started.handle)
    assert serving.alive(started.handle)[0] is False
    serving.stop(started.handle)  # idempotent


def test_two_versions_side_by_side(serving: LocalServing, base_image: str, tmp_path: Path) -> None:
    a = serving.start(spec(tmp_path, base_image, 1))
    b = serving.start(spec(tmp_path, base_image, 2, SCORE.replace("2.5", "100")))
    for s in (a, b):
        wait_ready(serving, s)
    assert infer(a.upstream_url, [[6.3, 3.3, 6.0, 2.5]], 1).json()["outputs"][0]["data"] == ["virginica"]
    assert infer(b.upstream_url, [[6.3, 3.3, 6.0, 2.5]], 2).json()["outputs"][0]["data"] == ["setosa"]
    assert set(serving.owned()) == {"ws/iris/1", "ws/iris/2"}


def test_a_model_that_fails_to_load_is_reported_with_its_output(
        serving: LocalServing, base_image: str, tmp_path: Path) -> None:
    started: Started = serving.start(spec(tmp_path, base_image, 3, "def init():\n    raise RuntimeError('boom')\n"))
    with pytest.raises(TargetError, match="boom|exited"):
        wait_ready(serving, started, timeout=30)


@pytest.mark.parametrize(("name", "kind"), [("model.joblib", "joblib"), ("out/m.pkl", "pickle"),
                                            ("m.onnx", "onnx"), ("src/score.py", "score.py")])
def test_artifact_kinds(name: str, kind: str) -> None:
    assert artifact_kind(name) == kind


def test_unknown_artifact_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot serve"):
        artifact_kind("model.txt")
