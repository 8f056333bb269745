"""Runs through the whole platform: code upload → runner (JOBS, local target on podman) → outputs.

Real parts: the built image, podman's Docker-compatible API, the object store, NATS.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from reprolab_cli.client import ApiError, Client

BASE = "localhost/reprolab/bookworm-python:latest"
IRIS = Path(__file__).resolve().parents[2] / "cli" / "src" / "reprolab_cli" / "data" / "iris-train.csv"

TRAIN = '''
import csv, json, os, statistics, sys
rows = list(csv.DictReader(open("/data/iris-train.csv")))
feats = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
cents = {s: [statistics.mean(float(r[f]) for r in rows if r["species"] == s) for f in feats]
         for s in {r["species"] for r in rows}}
def predict(r):
    return min(cents, key=lambda s: sum((float(r[f]) - c) ** 2 for f, c in zip(feats, cents[s])))
acc = sum(predict(r) == r["species"] for r in rows) / len(rows)
print(f"trained on {len(rows)} rows, accuracy {acc:.3f}")
os.makedirs("/outputs/model", exist_ok=True)
json.dump(cents, open("/outputs/model/centroids.json", "w"))
json.dump({"accuracy": round(acc, 4)}, open("/outputs/metrics.json", "w"))
'''


def tar_gz(files: dict[str, str | bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def wait_run(client: Client, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/runs/{run_id}")
        if run["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.3)


@pytest.fixture
def lab(running, base_image):
    """A workspace with a built environment, the Iris training data and a student."""
    _, teacher = running.user("rt")
    ws = running.workspace(teacher, "rws")
    sname, student = running.user("rs")
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
                 content=IRIS.read_bytes())
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                 content=b"secret\n")
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    return ws, teacher, student


def submit(client: Client, ws: str, files: dict[str, str], command: list[str], **extra) -> dict:
    code = client.request("POST", f"/workspaces/{ws}/code", content=tar_gz(files), expect=(201,))
    body = {"environment": "py", "code": code["digest"], "command": command, **extra}
    return client.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))


def test_a_student_trains_on_iris_and_gets_results(running, lab, tmp_path: Path) -> None:
    ws, teacher, student = lab
    run = submit(student, ws, {"train.py": TRAIN}, ["python3", "train.py"], datasets=["iris-train.csv"])
    lines = list(student.sse(f"/runs/{run['id']}/logs"))
    assert any(line.startswith("trained on 120 rows") for line in lines), lines
    done = wait_run(student, run["id"])
    assert done["status"] == "succeeded" and done["exit_code"] == 0, done
    assert done["metrics"]["accuracy"] > 0.85
    prov = done["provenance"]
    assert prov["image"] == done["image"] and "@sha256:" in prov["image"] and prov["code"] == done["code_digest"]
    assert prov["datasets"] == ["sha256:" + hashlib.sha256(IRIS.read_bytes()).hexdigest()]
    assert prov["command"] == ["python3", "train.py"] and prov["network"] is False
    outs = student.get(f"/runs/{run['id']}/outputs")
    names = {f["name"] for f in outs["files"]}
    assert {"metrics.json", "model/centroids.json", "logs.txt"} <= names
    student.download(f"/runs/{run['id']}/outputs/model/centroids.json", tmp_path / "c.json")
    assert set(json.loads((tmp_path / "c.json").read_text())) == {"setosa", "versicolor", "virginica"}
    # the instructor sees it; another student does not
    assert run["id"] in [r["id"] for r in teacher.get(f"/workspaces/{ws}/runs")["items"]]
    other_name, other = running.user("rs")
    teacher.post(f"/workspaces/{ws}/members", json={"username": other_name, "role": "student"})
    assert other.get(f"/workspaces/{ws}/runs")["items"] == []
    with pytest.raises(ApiError) as info:
        other.get(f"/runs/{run['id']}")
    assert info.value.status == 404
    # nothing is left behind on the engine
    left = subprocess.run(["podman", "ps", "-a", "--filter", f"label=org.reprolab.run-id={run['id']}", "-q"],
                          capture_output=True, text=True).stdout.strip()
    assert left == ""


@pytest.mark.parametrize(("command", "status", "needle"), [
    (["python3", "-c", "import sys; sys.exit(3)"], "failed", "exited with code 3"),
    (["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"], "failed", "code"),
    (["sh", "-c", "echo hi > /etc/x"], "failed", "code"),
])
def test_failures_are_the_runs_own(lab, command, status, needle) -> None:
    ws, _, student = lab
    done = wait_run(student, submit(student, ws, {"x.py": "print(1)\n"}, command)["id"])
    assert done["status"] == status and needle in done["error"], done


def test_timeout_and_cancel(lab) -> None:
    ws, _, student = lab
    slow = submit(student, ws, {"x.py": ""}, ["sleep", "60"], resources={"timeout": 2})
    assert wait_run(student, slow["id"], timeout=60)["status"] == "timed_out"
    long = submit(student, ws, {"x.py": ""}, ["sleep", "120"])
    deadline = time.monotonic() + 60
    while student.get(f"/runs/{long['id']}")["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    student.post(f"/runs/{long['id']}/cancel")
    assert wait_run(student, long["id"], timeout=60)["status"] == "cancelled"


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_bad_archives_and_requests_are_refused(running, lab) -> None:
    ws, teacher, student = lab
    link = tarfile.TarInfo("evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    cases = [
        (tar_gz({"../escape.py": "x"}), ".."),
        (tar_gz({"/abs.py": "x"}), "absolute"),
        (tar_gz({"a.py": "x"}, [link]), "link"),
        (tar_gz({"a.py": "x"}, [dev]), "device"),
        (_zip({"a.py": b"x"}, symlink="l"), "link"),
        (b"not an archive at all", "neither"),
        (tar_gz({"big.bin": b"\0" * (3 << 20)}), "expands"),
    ]
    def kept() -> set:
        # not runs/<id>/...: the previous test's cancelled run may still be handing in its log and outputs
        return {p for p in running.objects_dir.rglob("*")
                if p.is_file() and p.relative_to(running.objects_dir).parts[0] != "runs"}

    objects = kept()
    for content, needle in cases:
        with pytest.raises(ApiError) as info:
            student.request("POST", f"/workspaces/{ws}/code", content=content, expect=(201,))
        assert info.value.status == 422 and needle in info.value.problem["detail"], (needle, info.value.problem)
    assert kept() == objects
    code = student.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"a.py": "x"}), expect=(201,))
    bad = [
        ({"environment": "py", "code": code["digest"], "command": []}, 422, "command"),
        ({"environment": "py", "code": "sha256:" + "0" * 64, "command": ["x"]}, 422, "code"),
        ({"environment": "py", "code": code["digest"], "command": ["x"], "datasets": ["labels.csv"]}, 422,
         "labels.csv"),
        ({"environment": "py", "code": code["digest"], "command": ["x"], "target": "mars"}, 422, "mars"),
        ({"environment": "py", "code": code["digest"], "command": ["x"], "target": "aws"}, 422,
         "ask the platform's administrator to enable it"),
        ({"environment": "py", "code": code["digest"], "command": ["x"], "resources": {"memory": "lots"}}, 422,
         "memory"),
        ({"environment": "py", "code": code["digest"], "command": ["x"], "colour": 1}, 422, "colour"),
    ]
    for body, status, needle in bad:
        with pytest.raises(ApiError) as info:
            student.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))
        assert info.value.status == status and needle in json.dumps(info.value.problem), (body, info.value.problem)
    teacher.post(f"/workspaces/{ws}/environments/py/versions", json={"spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0", "idna==3.7"]}}})
    with pytest.raises(ApiError) as info:
        student.request("POST", f"/workspaces/{ws}/runs", json={"environment": "py", "code": code["digest"],
                                                                "command": ["x"]}, expect=(202,))
    assert info.value.status == 409 and "build it first" in info.value.problem["detail"]


def test_runner_killed_mid_run_reaches_one_terminal_state(running, lab) -> None:
    ws, _, student = lab
    run = submit(student, ws, {"x.py": ""}, ["sh", "-c", "sleep 6; echo done > /outputs/done.txt"],
                 resources={"timeout": 120}, version=1)
    deadline = time.monotonic() + 60
    while student.get(f"/runs/{run['id']}")["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    running.platform.stop_service("runner", sig=signal.SIGKILL)
    running.platform.start_service("runner")
    running.platform.wait_ready()
    done = wait_run(student, run["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert "done.txt" in {f["name"] for f in student.get(f"/runs/{run['id']}/outputs")["files"]}
    events = student.get(f"/workspaces/{ws}/activity", params={"subject": f"runs/{run['id']}", "limit": 50})
    verbs = [e["type"] for e in events["items"]]
    assert sum(v in ("run.succeeded", "run.failed", "run.cancelled", "run.timed_out") for v in verbs) == 1, verbs
    left = subprocess.run(["podman", "ps", "-a", "--filter", f"label=org.reprolab.run-id={run['id']}", "-q"],
                          capture_output=True, text=True).stdout.strip()
    assert left == ""


def test_cli_run_submit_outputs_and_logs(running, lab, tmp_path: Path) -> None:
    from reprolab_cli.main import app
    from typer.testing import CliRunner

    ws, teacher, _ = lab
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    common = ["--url", running.platform.url, "--token", teacher.http.headers["Authorization"].split()[1]]
    cli = CliRunner()
    done = cli.invoke(app, ["run", "submit", ws, "py", "--code", str(project), "--dataset", "iris-train.csv",
                            "--json", *common, "--", "python3", "train.py"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "trained on 120 rows" in done.output and '"status": "succeeded"' in done.output
    run_id = json.loads(done.output[done.output.index("{"):])["id"]
    got = cli.invoke(app, ["run", "outputs", run_id, "-o", str(tmp_path / "out"), *common])
    assert got.exit_code == 0, got.output
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["accuracy"] > 0.85
    logs = cli.invoke(app, ["run", "logs", run_id, *common])
    assert "trained on 120 rows" in logs.output
    failing = cli.invoke(app, ["run", "submit", ws, "py", "--code", str(project), *common, "--", "false"])
    assert failing.exit_code == 1 and "exited with code 1" in failing.output
