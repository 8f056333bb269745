"""Black-box checks of the standard-library Open Inference Protocol server against the protocol's REST
JSON shapes, with a real ``score.py`` model in a real server process."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVER = (Path(__file__).resolve().parents[2] / "services" / "runner" / "src" / "reprolab_runner"
          / "serving" / "oip_server.py")

SCORE = """
    def init():
        global THRESHOLD
        THRESHOLD = 2.5

    def run(inputs):
        rows = inputs["input-0"]
        return ["virginica" if row[2] > THRESHOLD else "setosa" for row in rows]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("model")
    (root / "score.py").write_text(textwrap.dedent(SCORE))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SERVER), "--artifact", str(root / "score.py"), "--name", "iris",
                             "--version", "2", "--host", "127.0.0.1", "--port", str(port),
                             "--max-body-bytes", "4096"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


def tensor(data: list, shape: list, datatype: str = "FP64", name: str = "input-0") -> dict:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


def test_health_and_metadata(server: str) -> None:
    assert httpx.get(f"{server}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server}/v2").json()["name"] == "reprolab-oip"
    meta = httpx.get(f"{server}/v2/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["2"] and meta["platform"] == "score.py"
    assert httpx.get(f"{server}/v2/models/iris/versions/2/ready").json() == {"name": "iris", "ready": True}


def test_infer_typed_tensors(server: str) -> None:
    body = tensor([5.1, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5], [2, 4]) | {"id": "req-1"}
    resp = httpx.post(f"{server}/v2/models/iris/versions/2/infer", json=body)
    assert resp.status_code == 200 and resp.headers["X-Request-Id"] == "req-1"
    out = resp.json()
    assert out["model_name"] == "iris" and out["model_version"] == "2" and out["id"] == "req-1"
    assert out["outputs"] == [{"name": "predict", "shape": [2], "datatype": "BYTES",
                               "data": ["setosa", "virginica"]}]


def test_rows_form(server: str) -> None:
    rows = [{"sl": 5.1, "sw": 3.5, "pl": 1.4, "pw": 0.2}, {"sl": 6.3, "sw": 3.3, "pl": 6.0, "pw": 2.5}]
    resp = httpx.post(f"{server}/v2/models/iris/predict", json={"rows": rows})
    assert resp.status_code == 200 and resp.json()["predictions"] == ["setosa", "virginica"]


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("iris/infer", tensor([1.0, 2.0, 3.0], [2, 4]), 400, "needs 8 elements"),
    ("iris/infer", tensor([1, 2, 3, 4], [1, 4], "FP99"), 400, "unknown datatype"),
    ("iris/infer", tensor(["a", 2, 3, 4], [1, 4]), 400, "hold numbers"),
    ("iris/infer", tensor([300, 2, 3, 4], [1, 4], "UINT8"), 400, "out of range"),
    ("iris/infer", {"inputs": []}, 400, "non-empty list"),
    ("iris/infer", tensor([1.0, 2.0], [2], name="x"), 400, "refused the inputs"),
    ("iris/infer", tensor([0.0] * 2000, [500, 4]), 413, "at most 4096"),
    ("nope/infer", tensor([1.0] * 4, [1, 4]), 404, "unknown model"),
    ("iris/versions/1/infer", tensor([1.0] * 4, [1, 4]), 404, "unknown version"),
    ("iris/predict", {"rows": [[1, 2], [1]]}, 400, "same length"),
])
def test_bad_requests_are_4xx_and_the_server_keeps_serving(server: str, path: str, body: dict, status: int,
                                                          words: str) -> None:
    resp = httpx.post(f"{server}/v2/models/{path}", json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["error"]
    assert httpx.post(f"{server}/v2/models/iris/infer", json=tensor([1.0] * 4, [1, 4])).status_code == 200


def test_not_json_is_400(server: str) -> None:
    resp = httpx.post(f"{server}/v2/models/iris/infer", content=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "not JSON" in resp.json()["error"]
