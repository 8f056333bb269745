"""Differential check of Reprolab's Open Inference Protocol server against MLServer 1.7.1 (issue 15).

The same Iris LogisticRegression (joblib) is served by MLServer (a real ``mlserver start`` from its own
virtualenv, .tools/mlserver, made by ``make test-deps``) and by ``oip_server.py`` (run directly with the host's
Python, as tests/runner/test_oip_server.py does; the runner runs the same file in the run's image). The same
requests go to both. Where the protocol (https://github.com/kserve/open-inference-protocol, REST) fixes the
behaviour, the two must agree; where they legitimately differ, the comment says why and each side's answer is
asserted exactly, so a change on either side shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import joblib
import pytest
from sklearn.datasets import load_iris

from .oipservers import MLSERVER_VERSION, missing_mlserver, start_mlserver, start_oip, train_iris

X, _ = load_iris(return_X_y=True)
ROWS = X.tolist()


@dataclass
class Pair:
    mlserver: httpx.Client
    ours: httpx.Client
    expected: list[int]  # the model's own predictions for ROWS, computed in the test process
    proba: list[list[float]]

    def both(self, method: str, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        return self.mlserver.request(method, path, **kw), self.ours.request(method, path, **kw)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    reason = missing_mlserver()
    if reason:
        pytest.fail(reason)  # never a skip: `make test` installs it
    root = tmp_path_factory.mktemp("oip-mlserver")
    artifact = train_iris(root / "model" / "model.joblib")
    model = joblib.load(artifact)
    ml = start_mlserver(root / "mlserver", artifact)
    ours = start_oip(root / "oip", artifact)
    try:
        ml.wait_ready("iris", timeout=90)
        ours.wait_ready("iris", timeout=90)
        assert httpx.get(f"{ml.url}/v2").json()["version"] == MLSERVER_VERSION
        with httpx.Client(base_url=ml.url, timeout=30) as a, httpx.Client(base_url=ours.url, timeout=30) as b:
            yield Pair(a, b, model.predict(X).tolist(), model.predict_proba(X).tolist())
    finally:
        ml.stop()
        ours.stop()


def infer_body(rows: list[list[float]], datatype: str = "FP64", nested: bool = False, **extra: Any) -> dict:
    data = rows if nested else [v for row in rows for v in row]
    return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": datatype, "data": data}]} | extra


def test_health(pair: Pair) -> None:
    for path in ("/v2/health/live", "/v2/health/ready"):
        ml, ours = pair.both("GET", path)
        assert ml.status_code == ours.status_code == 200, path
        # The status code is the answer (200 true, 4xx false). MLServer sends no body; ours also sends the
        # protocol's JSON object ({"live": true} / {"ready": true}), which a client may read or ignore.
        assert ml.content == b""
        assert ours.json() == {path.rsplit("/", 1)[1]: True}


def test_server_metadata(pair: Pair) -> None:
    ml, ours = pair.both("GET", "/v2")
    assert ml.status_code == ours.status_code == 200
    # $metadata_server_response: name, version, extensions
    for doc in (ml.json(), ours.json()):
        assert isinstance(doc["name"], str) and isinstance(doc["version"], str) and isinstance(doc["extensions"], list)
    assert (ml.json()["name"], ours.json()["name"]) == ("mlserver", "reprolab-oip")


@pytest.mark.parametrize("path", ["/v2/models/iris", "/v2/models/iris/versions/1"])
def test_model_metadata(pair: Pair, path: str) -> None:
    ml, ours = pair.both("GET", path)
    assert ml.status_code == ours.status_code == 200
    # $metadata_model_response: name, versions (optional), platform, inputs, outputs; the same values on both
    # (MLServer's platform and versions come from its model-settings.json, ours from the artifact and the deploy)
    for doc in (ml.json(), ours.json()):
        assert {"name", "versions", "platform", "inputs", "outputs"} <= set(doc), doc
        assert (doc["name"], doc["versions"], doc["platform"]) == ("iris", ["1"], "sklearn"), doc
        for t in doc["inputs"] + doc["outputs"]:  # $metadata_tensor
            assert isinstance(t["name"], str) and isinstance(t["datatype"], str) and isinstance(t["shape"], list), t
    # Differs: MLServer declares no inputs unless model-settings.json lists them; ours declares the
    # estimator's (n_features_in_ columns, any number of rows). MLServer adds its own "parameters".
    assert ml.json()["inputs"] == [] and ml.json()["parameters"] == {}
    assert ours.json()["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]


@pytest.mark.parametrize("path", ["/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"])
def test_model_ready(pair: Pair, path: str) -> None:
    ml, ours = pair.both("GET", path)
    assert ml.status_code == ours.status_code == 200
    # as for health: MLServer no body, ours the protocol's $ready_model_response-like object
    assert ml.content == b"" and ours.json() == {"name": "iris", "ready": True}


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize(("rows", "nested"), [(slice(0, 1), False), (slice(48, 53), True), (slice(0, 150), False)],
                         ids=["1-flat", "5-nested", "150-flat"])
def test_infer_same_predictions(pair: Pair, datatype: str, rows: slice, nested: bool) -> None:
    n = len(ROWS[rows])
    body = infer_body(ROWS[rows], datatype, nested, id=f"req-{datatype}-{n}")
    ml, ours = pair.both("POST", "/v2/models/iris/infer", json=body)
    assert ml.status_code == ours.status_code == 200, (ml.text, ours.text)
    a, b = ml.json(), ours.json()
    # $inference_response: model_name, model_version, id (the request's), outputs
    for doc in (a, b):
        assert (doc["model_name"], doc["model_version"], doc["id"]) == ("iris", "1", body["id"]), doc
        assert [o["name"] for o in doc["outputs"]] == ["predict"]
    out_a, out_b = a["outputs"][0], b["outputs"][0]
    assert out_a["data"] == out_b["data"] == pair.expected[rows]
    assert out_a["datatype"] == out_b["datatype"] == "INT64"
    # Differs: MLServer's numpy codec keeps a column vector, [N, 1], and tags it {"content_type": "np"};
    # ours answers predict() as sklearn returns it, a vector [N]. Both are valid tensors of N elements.
    assert out_a["shape"] == [n, 1] and out_a["parameters"] == {"content_type": "np"}
    assert out_b["shape"] == [n] and "parameters" not in out_b


def test_infer_predict_proba(pair: Pair) -> None:
    body = infer_body(ROWS[:10], outputs=[{"name": "predict_proba"}])
    ml, ours = pair.both("POST", "/v2/models/iris/infer", json=body)
    assert ml.status_code == ours.status_code == 200, (ml.text, ours.text)
    out_a, out_b = ml.json()["outputs"], ours.json()["outputs"]
    assert [o["name"] for o in out_a] == [o["name"] for o in out_b] == ["predict_proba"]
    assert out_a[0]["shape"] == out_b[0]["shape"] == [10, 3]
    assert out_a[0]["datatype"] == out_b[0]["datatype"] == "FP64"
    expected = [p for row in pair.proba[:10] for p in row]
    assert out_a[0]["data"] == pytest.approx(expected, abs=1e-12)
    assert out_b[0]["data"] == pytest.approx(expected, abs=1e-12)


def _error(resp: httpx.Response) -> str:
    doc = resp.json()
    assert isinstance(doc.get("error"), str) and doc["error"], resp.text  # $inference_error_response
    return doc["error"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v2/models/nope"), ("GET", "/v2/models/nope/ready"), ("POST", "/v2/models/nope/infer"),
    ("GET", "/v2/models/iris/versions/9"), ("POST", "/v2/models/iris/versions/9/infer"),
])
def test_unknown_model_or_version_is_404_with_an_error(pair: Pair, method: str, path: str) -> None:
    kw = {"json": infer_body(ROWS[:1])} if method == "POST" else {}
    ml, ours = pair.both(method, path, **kw)
    assert ml.status_code == ours.status_code == 404, (ml.text, ours.text)
    word = "nope" if "nope" in path else "9"
    assert word in _error(ml) and word in _error(ours)


def test_agreed_400s(pair: Pair) -> None:
    """Requests both refuse with 400 and the protocol's {"error": ...}."""
    for body in ({"inputs": []}, infer_body(ROWS[:1], outputs=[{"name": "nope"}])):
        ml, ours = pair.both("POST", "/v2/models/iris/infer", json=body)
        assert ml.status_code == ours.status_code == 400, (body, ml.text, ours.text)
        assert _error(ml) and _error(ours)


# Differs: MLServer validates the body with FastAPI/pydantic, which answers a malformed body 422 with
# FastAPI's {"detail": [{type, loc, msg, ...}]}, not the protocol's {"error": ...}; ours answers 400 with
# {"error": ...}. Both are 4xx that name what is wrong.
MALFORMED = {
    "not JSON": (b"{nope", "json_invalid", "not JSON"),
    "not an object": (b"[]", "model_attributes_type", "must be an object"),
    "unknown datatype": (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}]}',
                         "enum", "unknown datatype 'FP99'"),
    "no data": (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]}', "missing", "lacks 'data'"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bodies_are_4xx_on_both(pair: Pair, case: str) -> None:
    content, pydantic_type, words = MALFORMED[case]
    ml, ours = pair.both("POST", "/v2/models/iris/infer", content=content,
                         headers={"Content-Type": "application/json"})
    assert ml.status_code == 422 and [d["type"] for d in ml.json()["detail"]] == [pydantic_type], ml.text
    assert ours.status_code == 400 and words in _error(ours), ours.text


# Differs, and MLServer is the one at fault: a well-formed body whose tensor does not fit (data count against
# shape, feature count against the model, a string in a number tensor, a 1-D row) reaches the model's
# numpy/sklearn call there, and the ValueError comes back as 500, a server error for the client's mistake.
# The protocol's answer to a bad request is 400 {"error": ...}, which ours gives, before calling the model.
WRONG_TENSORS = {
    "data count against shape": ({"shape": [1, 3], "data": [5.1, 3.5, 1.4, 0.2]},
                                 "cannot reshape array of size 4", "shape [1, 3] needs 3 elements, data has 4"),
    "3 features for 4": ({"shape": [1, 3], "data": [5.1, 3.5, 1.4]}, "X has 3 features",
                         "the model expects 4 features per row"),
    "string in FP64": ({"shape": [1, 4], "data": ["a", 3.5, 1.4, 0.2]}, "could not convert string to float",
                       "FP64 tensors hold numbers, got 'a'"),
}


@pytest.mark.parametrize("case", list(WRONG_TENSORS))
def test_wrong_tensors(pair: Pair, case: str) -> None:
    tensor, ml_words, our_words = WRONG_TENSORS[case]
    body = {"inputs": [{"name": "input-0", "datatype": "FP64"} | tensor]}
    ml, ours = pair.both("POST", "/v2/models/iris/infer", json=body)
    assert ml.status_code == 500 and ml_words in _error(ml), ml.text
    assert ours.status_code == 400 and our_words in _error(ours), ours.text


def test_one_row_as_a_vector(pair: Pair) -> None:
    # Differs: a [4] tensor is one row to ours (as the rows form treats a flat list); MLServer hands the 1-D
    # array to sklearn, which refuses it (500, as above).
    body = {"inputs": [{"name": "input-0", "shape": [4], "datatype": "FP64", "data": ROWS[0]}]}
    ml, ours = pair.both("POST", "/v2/models/iris/infer", json=body)
    assert ml.status_code == 500 and "Expected 2D array" in _error(ml), ml.text
    assert ours.status_code == 200 and ours.json()["outputs"][0]["data"] == pair.expected[:1], ours.text


def test_both_keep_serving_after_the_errors(pair: Pair) -> None:
    pair.both("POST", "/v2/models/iris/infer", content=b"{nope", headers={"Content-Type": "application/json"})
    pair.both("POST", "/v2/models/iris/infer", json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                                                  "data": [1.0, 2.0, 3.0]}]})
    ml, ours = pair.both("POST", "/v2/models/iris/infer", json=infer_body(ROWS[100:101]))
    assert ml.status_code == ours.status_code == 200
    assert ml.json()["outputs"][0]["data"] == ours.json()["outputs"][0]["data"] == pair.expected[100:101]
