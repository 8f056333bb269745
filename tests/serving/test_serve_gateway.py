"""From a trained run to a monitored web service, through the whole platform (issue 15).

Real parts: the platform (``running``, SQLite), a built environment with scikit-learn from PyPI, a run on
podman that trains an Iris classifier and writes /outputs/model.joblib, the runner serving it in the run's
own image, the gateway's REST API and ``/serve`` proxy, the object store the traffic lands in.

One model is deployed for the module (``served``) and shared by the tests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..integration.test_runs import tar_gz

pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)

BASE = "localhost/reprolab/bookworm-python:latest"
SCORE = '''
def init():
    global THRESHOLD
    THRESHOLD = 2.5


def run(inputs):
    return ["virginica" if row[2] > THRESHOLD else "setosa" for row in inputs["input-0"]]
'''
TRAIN = f"SCORE = {SCORE!r}\n" + """
import csv, json, os
import joblib
from sklearn.linear_model import LogisticRegression
rows = list(csv.DictReader(open("/data/iris-train.csv")))
species = sorted({r["species"] for r in rows})
X = [[float(r[c]) for c in ("sepal_length", "sepal_width", "petal_length", "petal_width")] for r in rows]
y = [species.index(r["species"]) for r in rows]
model = LogisticRegression(max_iter=500).fit(X, y)
os.makedirs("/outputs/rule", exist_ok=True)
joblib.dump(model, "/outputs/model.joblib")
# the same model as an ONNX graph (class indices and probabilities as plain tensors)
import numpy as np
from skl2onnx import to_onnx
onx = to_onnx(model, np.asarray(X[:1], dtype=np.float32), options={"zipmap": False}, target_opset=17)
open("/outputs/model.onnx", "wb").write(onx.SerializeToString())
# and the seed's contract: score.py with init() and run(inputs)
open("/outputs/rule/score.py", "w").write(SCORE)
json.dump({"accuracy": float(model.score(X, y))}, open("/outputs/metrics.json", "w"))
"""
IRIS_TRAIN = Path(__file__).resolve().parents[2] / "cli" / "src" / "reprolab_cli" / "data" / "iris-train.csv"
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@dataclass
class Served:
    url: str
    ws: str
    name: str
    run_id: str
    tokens: dict[str, str]  # I: instructor who deployed, B: another member, X: another workspace's user
    key: str
    key_id: str
    http: httpx.Client
    objects_dir: Any

    def api(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kw)

    def ok(self, who: str, method: str, path: str, **kw: Any) -> Any:
        r = self.api(who, method, path, **kw)
        assert r.is_success, (method, path, r.status_code, r.text)
        return r.json()

    def serve(self, bearer: str | None, method: str, rest: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {}) | ({"Authorization": f"Bearer {bearer}"} if bearer else {})
        return self.http.request(method, f"/serve/{self.ws}/{self.name}/v2{rest}", headers=headers, **kw)

    def infer(self, bearer: str, rows: list[list[float]], **kw: Any) -> httpx.Response:
        return self.serve(bearer, "POST", f"/models/{self.name}/infer", json={"inputs": [
            {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}, **kw)


def _wait(check, timeout: float, what: str) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def wait_version(s: Served, version: int, timeout: float = 90) -> dict:
    path = f"/workspaces/{s.ws}/models/{s.name}/versions/{version}"
    doc = _wait(lambda: (d := s.ok("I", "GET", path))["state"] != "deploying" and d, timeout, path)
    assert doc["state"] == "serving", doc
    return doc


@pytest.fixture(scope="module")
def served(running, base_image) -> Iterator[Served]:
    tokens = {}
    for who in ("I", "B", "X"):
        tokens[who] = running.admin.post("/users", json={"username": f"sv{who.lower()}-{uuid.uuid4().hex[:6]}"})[
            "token"]
    http = httpx.Client(base_url=running.platform.url, timeout=120)
    s = Served(url=running.platform.url, ws=f"sv-{uuid.uuid4().hex[:8]}", name="iris", run_id="", tokens=tokens,
               key="", key_id="", http=http, objects_dir=running.objects_dir)
    s.ok("I", "POST", "/workspaces", json={"slug": s.ws, "title": "Serving"})
    b_name = s.ok("B", "GET", "/me")["username"]
    s.ok("I", "POST", f"/workspaces/{s.ws}/members", json={"username": b_name, "role": "student"})
    s.ok("X", "POST", "/workspaces", json={"slug": f"svx-{uuid.uuid4().hex[:8]}", "title": "Elsewhere"})
    s.ok("I", "POST", f"/workspaces/{s.ws}/environments", json={"name": "sk", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["scikit-learn", "onnxruntime", "skl2onnx"]}}})
    build = s.ok("I", "POST", f"/workspaces/{s.ws}/environments/sk/versions/1/builds")
    done = _wait(lambda: (b := s.ok("I", "GET", f"/builds/{build['id']}"))["status"] in ("succeeded", "failed") and b,
                 600, "build")
    assert done["status"] == "succeeded", done
    code = s.ok("I", "POST", f"/workspaces/{s.ws}/code", content=tar_gz({"train.py": TRAIN}))["digest"]
    # the training data, a dataset of the workspace: the run mounts it, and monitoring compares traffic with it
    s.ok("I", "POST", f"/workspaces/{s.ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
         content=IRIS_TRAIN.read_bytes())
    run = s.ok("I", "POST", f"/workspaces/{s.ws}/runs", json={"environment": "sk", "code": code,
                                                            "command": ["python3", "train.py"],
                                                            "datasets": ["iris-train.csv"]})
    finished = _wait(lambda: (r := s.ok("I", "GET", f"/runs/{run['id']}"))["status"] in (
        "succeeded", "failed", "cancelled", "timed_out") and r, 180, "run")
    assert finished["status"] == "succeeded", finished
    s.run_id = run["id"]
    t0 = time.monotonic()
    v1 = s.ok("I", "POST", f"/workspaces/{s.ws}/models", json={"run_id": s.run_id, "artifact": "model.joblib",
                                                              "name": "iris"})
    assert (v1["version"], v1["state"], v1["kind"], v1["active"]) == (1, "deploying", "joblib", True), v1
    wait_version(s, 1)
    created = s.ok("I", "POST", f"/workspaces/{s.ws}/models/iris/keys", json={"label": "app"})
    s.key, s.key_id = created["secret"], created["id"]
    _wait(lambda: s.infer(s.key, [SETOSA]).status_code == 200, 30, "first prediction")
    print(f"deploy -> first prediction through the gateway: {time.monotonic() - t0:.1f} s")
    yield s
    for v in s.ok("I", "GET", f"/workspaces/{s.ws}/models")["items"]:
        s.api("I", "DELETE", f"/workspaces/{s.ws}/models/{v['name']}")
    http.close()


def test_infer_with_a_key_and_with_a_token(running, served: Served) -> None:
    s = served
    r = s.infer(s.key, [SETOSA, VIRGINICA])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["model_name"], doc["model_version"]) == ("iris", "1") and r.headers["x-request-id"] == doc["id"]
    assert doc["outputs"][0]["data"] == [0, 2], doc
    r = s.infer(s.tokens["I"], [VIRGINICA])  # the platform token of a member
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2], r.text
    r = s.infer(s.tokens["B"], [SETOSA])  # another member (a student) may use it too
    assert r.status_code == 200, r.text
    r = s.serve(s.key, "POST", "/models/iris/predict", json={"rows": [SETOSA, VIRGINICA]})
    assert r.status_code == 200 and r.json()["predictions"] == [0, 2], r.text
    for rest in ("/health/live", "/health/ready", "/models/iris", "/models/iris/ready", "/models/iris/versions/1"):
        assert s.serve(s.key, "GET", rest).status_code == 200, rest
    meta = s.serve(s.key, "GET", "/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["1"], meta


def test_the_serving_surface_is_described_and_answers_as_described(running, served: Served) -> None:
    """/serve/openapi.json is a valid OpenAPI 3.1 document, and real answers (metadata, infer, predict, errors,
    feedback) validate against its schemas."""
    import jsonschema
    from openapi_spec_validator import validate

    got = served.http.get("/serve/openapi.json")
    assert got.status_code == 200, got.text
    doc = got.json()
    validate(doc)
    assert "/serve/openapi.json" in served.http.get("/api/v1/openapi.json").json()["info"]["description"]
    schemas = doc["components"]["schemas"]

    def check(response: httpx.Response, schema: str, status: int = 200) -> None:
        """The status is documented for the operation, and the body matches that schema."""
        assert response.status_code == status, response.text
        assert str(status) in doc["paths"][path][response.request.method.lower()]["responses"], (path, status)
        jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": {
            "schemas": schemas}}).validate(response.json())

    key = served.key
    path = "/serve/{ws}/{name}/v2/models/{name}"
    check(served.serve(key, "GET", "/models/iris"), "MetadataModelResponse")
    path = "/serve/{ws}/{name}/v2/models/{name}/infer"
    check(served.infer(key, [SETOSA, VIRGINICA]), "InferenceResponse")
    check(served.serve(key, "POST", "/models/iris/infer", json={"inputs": [{"name": "input-0", "shape": [1, 3],
                                                                           "datatype": "FP64", "data": [1, 2, 3]}]}),
          "Error", 400)
    check(served.serve("rlm_wrong", "POST", "/models/iris/infer", json={}), "Error", 401)
    path = "/serve/{ws}/{name}/v2/models/{name}/predict"
    check(served.serve(key, "POST", "/models/iris/predict", json={"rows": [SETOSA]}), "PredictResponse")
    path = "/serve/{ws}/{name}/v2/models/{name}/versions/{version}"
    check(served.serve(key, "GET", "/models/iris/versions/99"), "Error", 404)
    path = "/serve/{ws}/{name}/feedback"
    r = served.http.post(f"/serve/{served.ws}/iris/feedback", json={"labels": {"x": 1}},
                         headers={"Authorization": f"Bearer {key}"})
    check(r, "FeedbackResponse")


def test_onnx_and_score_py_artifacts_of_the_same_run(running, served: Served) -> None:
    """The run's other outputs: an ONNX graph (served by the image's onnxruntime) and a score.py."""
    s = served
    base = f"/workspaces/{s.ws}/models"
    for name, artifact, kind in (("iris-onnx", "model.onnx", "onnx"), ("iris-rule", "rule/score.py", "score.py")):
        v = s.ok("I", "POST", base, json={"run_id": s.run_id, "artifact": artifact, "name": name})
        assert (v["kind"], v["image"]) == (kind, s.ok("I", "GET", f"{base}/iris/versions/1")["image"]), v
        doc = _wait(lambda n=name: (d := s.ok("I", "GET", f"{base}/{n}/versions/1"))["state"] != "deploying" and d,
                    90, name)
        assert doc["state"] == "serving", doc
    token = s.tokens["I"]
    r = s.http.post(f"/serve/{s.ws}/iris-onnx/v2/models/iris-onnx/infer", headers={"Authorization": f"Bearer {token}"},
                    json={"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": [SETOSA, VIRGINICA]}]})
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["label"]["data"] == [0, 2] and outputs["label"]["datatype"] == "INT64", outputs
    assert outputs["probabilities"]["shape"] == [2, 3] and outputs["probabilities"]["datatype"] == "FP32"
    meta = s.http.get(f"/serve/{s.ws}/iris-onnx/v2/models/iris-onnx", headers={"Authorization": f"Bearer {token}"})
    assert meta.json()["platform"] == "onnxruntime" and meta.json()["inputs"][0]["shape"] == [-1, 4], meta.text
    r = s.http.post(f"/serve/{s.ws}/iris-rule/v2/models/iris-rule/predict",
                    headers={"Authorization": f"Bearer {token}"}, json={"rows": [SETOSA, VIRGINICA]})
    assert r.status_code == 200 and r.json()["predictions"] == ["setosa", "virginica"], r.text


def test_bad_requests_are_4xx_with_a_message_and_serving_goes_on(running, served: Served) -> None:
    s = served
    path = "/models/iris/infer"

    def tensor(**kw: Any) -> dict:
        return {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": SETOSA} | kw]}

    cases = {
        "shape": (s.serve(s.key, "POST", path, json=tensor(shape=[1, 3])), 400, "needs 3 elements"),
        "datatype": (s.serve(s.key, "POST", path, json=tensor(datatype="FP99")), 400, "unknown datatype"),
        "features": (s.serve(s.key, "POST", path, json=tensor(shape=[1, 3], data=SETOSA[:3])), 400, "4"),
        "not json": (s.serve(s.key, "POST", path, content=b"{nope", headers={"Content-Type": "application/json"}),
                     400, "not JSON"),
        "version": (s.serve(s.key, "POST", "/models/iris/versions/7/infer", json=tensor()), 404, "version"),
        "model in path": (s.serve(s.key, "POST", "/models/other/infer", json=tensor()), 404, "unknown model"),
    }
    for what, (r, status, words) in cases.items():
        assert r.status_code == status and words in r.json()["error"], (what, r.status_code, r.text)
    r = s.http.post(f"/serve/{s.ws}/nosuch/v2/models/nosuch/infer", json=tensor(),
                    headers={"Authorization": f"Bearer {s.tokens['I']}"})
    assert r.status_code == 404 and "no model 'nosuch'" in r.json()["error"], r.text
    # oversize: refused by its declared length, before it is read or forwarded
    big = b"[" + b"1," * (4_300_000) + b"1]"
    r = s.serve(s.key, "POST", path, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "at most" in r.json()["error"], r.text[:300]
    assert s.infer(s.key, [SETOSA]).status_code == 200  # still serving
    # REST input errors: 422 with the field, never 500
    bad = {"run_id": s.run_id, "artifact": "model.joblib", "name": "Bad Name"}
    r = s.api("I", "POST", f"/workspaces/{s.ws}/models", json=bad)
    assert r.status_code == 422 and "name" in r.text, r.text
    r = s.api("I", "POST", f"/workspaces/{s.ws}/models", json={"run_id": s.run_id, "artifact": "nope.joblib"})
    assert r.status_code == 422 and "no output 'nope.joblib'" in r.json()["detail"], r.text
    r = s.api("I", "POST", f"/workspaces/{s.ws}/models", json={"run_id": s.run_id, "artifact": "metrics.json"})
    assert r.status_code == 422 and "cannot serve" in r.json()["detail"], r.text
    r = s.api("I", "POST", f"/workspaces/{s.ws}/models", json={"run_id": str(uuid.uuid4()), "artifact": "m.joblib"})
    assert r.status_code == 404, r.text
    r = s.api("I", "POST", f"/workspaces/{s.ws}/models/iris/rollback", json={"version": 99})
    assert r.status_code == 404, r.text


def test_keys_rate_limit_revocation_and_the_secret_shown_once(running, served: Served) -> None:
    s = served
    created = s.ok("I", "POST", f"/workspaces/{s.ws}/models/iris/keys", json={"label": "slow", "rate_per_minute": 3})
    secret = created["secret"]
    assert secret.startswith("rlm_") and secret.startswith(created["prefix"]) and created["rate_per_minute"] == 3
    listed = s.ok("I", "GET", f"/workspaces/{s.ws}/models/iris/keys")["items"]
    assert {k["id"] for k in listed} >= {created["id"], s.key_id} and secret not in json.dumps(listed)
    assert [s.infer(secret, [SETOSA]).status_code for _ in range(3)] == [200, 200, 200]
    r = s.infer(secret, [SETOSA])
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "per minute" in r.json()["error"], r.text
    assert s.infer(s.key, [SETOSA]).status_code == 200  # per key: the other key is not limited by it
    revoked = s.ok("I", "DELETE", f"/workspaces/{s.ws}/models/iris/keys/{created['id']}")
    assert revoked["revoked"] is True
    r = s.infer(secret, [SETOSA])
    assert r.status_code == 401 and "revoked" in r.json()["error"], r.text
    assert s.infer("rlm_" + "x" * 43, [SETOSA]).status_code == 401
    assert s.infer("", [SETOSA], headers={"Authorization": ""}).status_code == 401
    r = s.serve(None, "POST", "/models/iris/infer", json={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
    # the key's secret is nowhere in the platform's logs
    for log in running.platform.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert secret not in text and s.key not in text, log


def test_other_workspaces_and_roles(running, served: Served) -> None:
    s = served
    base = f"/workspaces/{s.ws}/models"
    # a user of another workspace: every models route is 404 (nothing revealed), the proxy too
    for method, path, kw in (("GET", base, {}), ("GET", f"{base}/iris", {}), ("GET", f"{base}/iris/versions/1", {}),
                             ("POST", f"{base}/iris/rollback", {"json": {"version": 1}}),
                             ("GET", f"{base}/iris/keys", {}), ("POST", f"{base}/iris/keys", {"json": {}}),
                             ("DELETE", f"{base}/iris/keys/{s.key_id}", {}), ("DELETE", f"{base}/iris", {}),
                             ("POST", base, {"json": {"run_id": s.run_id, "artifact": "model.joblib"}})):
        r = s.api("X", method, path, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert s.api(None, method, path, **kw).status_code == 401, (method, path)
    r = s.infer(s.tokens["X"], [SETOSA])
    assert r.status_code == 404 and "no model 'iris'" in r.json()["error"], r.text
    # another member (a student) sees the model but may not manage it, nor deploy from a run not theirs
    assert s.ok("B", "GET", f"{base}/iris")["active_version"] >= 1
    for method, path, kw in (("POST", f"{base}/iris/rollback", {"json": {"version": 1}}),
                             ("GET", f"{base}/iris/keys", {}), ("POST", f"{base}/iris/keys", {"json": {}}),
                             ("DELETE", f"{base}/iris/keys/{s.key_id}", {}), ("DELETE", f"{base}/iris", {})):
        r = s.api("B", method, path, **kw)
        assert r.status_code == 403 and "whoever deployed" in r.json()["detail"], (method, path, r.text)
    r = s.api("B", "POST", base, json={"run_id": s.run_id, "artifact": "model.joblib", "name": "mine"})
    assert r.status_code == 404, r.text


def test_rollback_traffic_feedback_and_metrics(running, served: Served) -> None:
    s = served
    base = f"/workspaces/{s.ws}/models"
    v2 = s.ok("I", "POST", base, json={"run_id": s.run_id, "artifact": "model.joblib", "name": "iris"})
    assert (v2["version"], v2["active"]) == (2, False)
    wait_version(s, 2)
    assert s.ok("I", "POST", f"{base}/iris/rollback", json={"version": 2})["active"] is True
    assert s.infer(s.key, [SETOSA]).json()["model_version"] == "2"
    assert s.ok("I", "POST", f"{base}/iris/rollback", json={"version": 1})["version"] == 1
    # each version also answers at its own URL, whichever is active
    for version in (1, 2):
        r = s.serve(s.key, "POST", f"/models/iris/versions/{version}/infer", json={"inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [SETOSA]}]})
        assert r.status_code == 200 and r.json()["model_version"] == str(version), r.text
    for bad in ("9", "x", "0"):
        r = s.serve(s.key, "GET", f"/models/iris/versions/{bad}")
        assert r.status_code == 404 and "version" in r.json()["error"], (bad, r.text)
    r = s.infer(s.key, [SETOSA, VIRGINICA])
    assert r.json()["model_version"] == "1", r.text
    rid = r.headers["x-request-id"]
    model = s.ok("I", "GET", f"{base}/iris")
    assert model["active_version"] == 1 and [v["version"] for v in model["versions"]] == [1, 2]
    assert all(v["run_id"] == s.run_id and "@sha256:" in v["image"] for v in model["versions"])
    assert s.ok("B", "GET", base)["items"][0]["name"] == "iris"
    # feedback by request id (a request of two rows: <id>:<row>)
    r = s.http.post(f"/serve/{s.ws}/iris/feedback", json={"labels": {f"{rid}:0": 0, f"{rid}:1": 2}},
                    headers={"Authorization": f"Bearer {s.key}"})
    assert r.status_code == 200 and r.json() == {"accepted": 2}, r.text
    r = s.http.post(f"/serve/{s.ws}/iris/feedback", json={"labels": []}, headers={"Authorization": f"Bearer {s.key}"})
    assert r.status_code == 400, r.text
    # traffic and labels reach the object store as Parquet, off the request path (flushed every 5 s)
    import pyarrow.parquet as pq

    root = s.objects_dir / "models" / s.ws / "iris"
    def mine() -> dict:  # this request's rows, once a flush has written them (earlier tests' batches may exist)
        rows = [row for f in (root / "traffic").rglob("*.parquet") for row in pq.read_table(f).to_pylist()]
        return {row["request_id"]: row for row in rows if row["request_id"].startswith(rid)}

    _wait(lambda: len(mine()) == 2 and list((root / "feedback").rglob("*.parquet")), 20, "parquet batches")
    mine = mine()
    assert set(mine) == {f"{rid}:0", f"{rid}:1"}, sorted(mine)
    assert json.loads(mine[f"{rid}:1"]["inputs"]) == {"0": 6.7, "1": 3.0, "2": 5.2, "3": 2.3}
    assert json.loads(mine[f"{rid}:1"]["prediction"]) == 2 and mine[f"{rid}:1"]["version"] == 1
    # monitoring: the traffic against the run's training data (its dataset), per hour
    shifted = [[v + 4 for v in VIRGINICA]] * 40
    assert s.infer(s.key, shifted).status_code == 200
    _wait(lambda: sum(pq.read_table(f).num_rows for f in (root / "traffic").rglob("*.parquet")) >= 42, 20, "flush")
    assert s.api("B", "POST", f"{base}/iris/monitoring").status_code == 403  # a student may only read it
    rep = s.ok("I", "POST", f"{base}/iris/monitoring")
    assert rep["reference"] == {"dataset": "iris-train.csv", "rows": 120}, rep["reference"]
    assert rep["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    last = rep["windows"][-1]
    assert last["count"] >= 42 and last["drift"]["drifted"] is True, last
    assert [a["kind"] for a in rep["alerts"]] == ["drift"] and "petal_length" in rep["alerts"][0]["detail"]
    stats = rep["stats"][last["start"]]["sepal_length"]
    assert stats["count"] == last["count"] and stats["max"] == VIRGINICA[0] + 4
    assert rep["predictions"][-1]["class_shares"]
    again = s.ok("B", "GET", f"{base}/iris/monitoring")  # the stored report, for any member
    assert again["updated"] == rep["updated"] and len(again["alerts"]) == 1
    assert s.ok("B", "GET", f"{base}/iris/monitoring", params={"window": "day"})["window"] == "day"
    assert s.api("B", "GET", f"{base}/iris/monitoring", params={"window": "week"}).status_code == 422
    assert s.api("B", "GET", f"{base}/nosuch/monitoring").status_code == 404
    assert s.api("X", "GET", f"{base}/iris/monitoring").status_code == 404
    _wait(lambda: s.ok("I", "GET", f"/workspaces/{s.ws}/activity", params={"type": "model.drift_alert"})["items"],
          30, "the drift alert in the activity log")
    # Prometheus metrics: a platform admin's
    r = s.http.get("/metrics", headers={"Authorization": f"Bearer {running.platform.admin_token()}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    ok = [line for line in r.text.splitlines() if line.startswith("reprolab_serve_requests_total{") and
          f'workspace="{s.ws}"' in line and 'endpoint="infer"' in line and 'code="200"' in line]
    assert ok and int(ok[0].rsplit(" ", 1)[1]) >= 5, r.text[:2000]
    count = f'reprolab_serve_request_duration_seconds_count{{workspace="{s.ws}",model="iris",endpoint="infer"}}'
    assert count in r.text, r.text[:2000]
    assert f'workspace="{s.ws}",model="iris",endpoint="infer",code="429"' in r.text  # refusals are counted too
    assert 'model="nosuch"' not in r.text  # names that serve nothing do not grow the label set
    assert s.http.get("/metrics", headers={"Authorization": f"Bearer {s.tokens['I']}"}).status_code == 403
    assert s.http.get("/metrics").status_code == 401


def test_the_cli(running, served: Served) -> None:
    """``reprolab model deploy|list|rollback|key create|list|revoke`` against the same platform."""
    from reprolab_cli.main import app
    from typer.testing import CliRunner

    s = served

    def cli(*args: str) -> Any:
        r = CliRunner().invoke(app, [*args, "--url", s.url, "--token", s.tokens["I"], "--json"],
                               env={"COLUMNS": "200"})
        assert r.exit_code == 0, (args, r.output)
        return json.loads(r.output)

    m = cli("model", "deploy", s.run_id, "--artifact", "model.joblib", "--name", "by-cli")
    assert (m["name"], m["version"], m["state"], m["active"]) == ("by-cli", 1, "serving", True), m
    listed = cli("model", "list", s.ws)
    assert {x["name"] for x in listed} >= {"iris", "by-cli"}
    key = cli("model", "key", "create", s.ws, "by-cli", "--label", "cli", "--rate", "5")
    assert key["secret"].startswith("rlm_") and key["rate_per_minute"] == 5
    r = s.http.post(f"/serve/{s.ws}/by-cli/v2/models/by-cli/predict", json={"rows": [VIRGINICA]},
                    headers={"Authorization": f"Bearer {key['secret']}"})
    assert r.status_code == 200 and r.json()["predictions"] == [2], r.text
    keys = cli("model", "key", "list", s.ws, "by-cli")
    assert [k["prefix"] for k in keys] == [key["prefix"]] and "secret" not in keys[0]
    assert cli("model", "key", "revoke", s.ws, "by-cli", key["id"])["revoked"] is True
    assert cli("model", "rollback", s.ws, "by-cli", "1")["active"] is True
    s.ok("I", "DELETE", f"/workspaces/{s.ws}/models/by-cli")


def test_delete_stops_every_version(running, served: Served) -> None:
    s = served
    base = f"/workspaces/{s.ws}/models"
    s.ok("I", "POST", base, json={"run_id": s.run_id, "artifact": "model.joblib", "name": "spare"})
    _wait(lambda: s.ok("I", "GET", f"{base}/spare/versions/1")["state"] != "deploying", 90, "spare")
    gone = s.ok("I", "DELETE", f"{base}/spare")
    assert gone["active_version"] is None and {v["state"] for v in gone["versions"]} == {"stopped"}, gone
    r = s.http.post(f"/serve/{s.ws}/spare/v2/models/spare/infer", json={},
                    headers={"Authorization": f"Bearer {s.tokens['I']}"})
    assert r.status_code == 404, r.text
