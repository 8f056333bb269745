"""Assignments end to end: hidden labels, an evaluation sandbox, scores and the leaderboard.

Real parts: the platform's processes on SQLite and PostgreSQL, a built image, podman, NATS.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from reprolab_cli.client import ApiError, Client

from .test_runs import BASE, IRIS, submit, tar_gz, wait_run

IRIS_TEST = IRIS.with_name("iris-test.csv")
FEATS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

EVALUATE = '''
import csv, json, os
print("evaluation sees /data:", sorted(os.listdir("/data")), "and /inputs:", sorted(os.listdir("/inputs")))
truth = {r["id"]: r["species"] for r in csv.DictReader(open("/data/labels"))}
pred = {r["id"]: r["species"] for r in csv.DictReader(open("/inputs/predictions.csv"))}
correct = sum(pred.get(i) == s for i, s in truth.items())
json.dump({"score": correct / len(truth)}, open("/outputs/score.json", "w"))
'''

# A student's nearest-centroid model; it also records what it can see under /data.
TRAIN = '''
import csv, os, statistics
print("student sees /data:", sorted(os.listdir("/data")))
open("/outputs/data-listing.txt", "w").write("\\n".join(sorted(os.listdir("/data"))))
rows = list(csv.DictReader(open("/data/iris-train.csv")))
feats = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
cents = {s: [statistics.mean(float(r[f]) for r in rows if r["species"] == s) for f in feats]
         for s in {r["species"] for r in rows}}
def predict(r):
    return min(cents, key=lambda s: sum((float(r[f]) - c) ** 2 for f, c in zip(feats, cents[s])))
with open("/outputs/predictions.csv", "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["id", "species"])
    for r in csv.DictReader(open("/data/iris-test-features.csv")):
        out.writerow([r["id"], predict(r)])
'''

# A lazy student: everything is setosa.
LAZY = '''
import csv
with open("/outputs/predictions.csv", "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["id", "species"])
    for r in csv.DictReader(open("/data/iris-test-features.csv")):
        out.writerow([r["id"], "setosa"])
'''


def split_iris_test() -> tuple[bytes, bytes, list[str]]:
    """(features without labels, hidden labels, the true species) of iris-test.csv, joined by an id."""
    rows = list(csv.DictReader(IRIS_TEST.read_text().splitlines()))
    feats, labels = io.StringIO(), io.StringIO()
    fw, lw = csv.writer(feats, lineterminator="\n"), csv.writer(labels, lineterminator="\n")
    fw.writerow(["id", *FEATS])
    lw.writerow(["id", "species"])
    for i, r in enumerate(rows):
        fw.writerow([i, *(r[f] for f in FEATS)])
        lw.writerow([i, r["species"]])
    return feats.getvalue().encode(), labels.getvalue().encode(), [r["species"] for r in rows]


def wait_scored(client: Client, run_id: str, timeout: float = 180) -> dict:
    run = wait_run(client, run_id, timeout)
    deadline = time.monotonic() + timeout
    while run["scoring"] == "pending":
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
        run = client.get(f"/runs/{run_id}")
    return run


@pytest.fixture
def course_with_assignment(running, base_image):
    iname, teacher = running.user("at")
    ws = running.workspace(teacher, "aws")
    students = []
    for _ in range(2):
        sname, student = running.user("as")
        teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
        students.append((sname, student))
    features, labels, truth = split_iris_test()
    assert b"setosa" not in features
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
                 content=IRIS.read_bytes())
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "iris-test-features.csv", "visibility": "public"},
                 content=features)
    hidden = teacher.post(f"/workspaces/{ws}/datasets", params={"name": "iris-labels.csv", "visibility": "hidden"},
                          content=labels)
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": EVALUATE}),
                           expect=(201,))
    made = teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "iris", "title": "Iris species", "environment": "py", "evaluation_code": code["digest"],
        "labels": "iris-labels.csv", "predictions": "predictions.csv", "metric": "accuracy",
        "higher_is_better": True})
    assert made["labels"] == hidden["digest"] and made["version"] == 1 and made["evaluation_code"] == code["digest"]
    return ws, teacher, students, hidden, truth


def test_students_are_scored_and_ranked_without_ever_seeing_the_labels(running, course_with_assignment) -> None:
    ws, teacher, ((aname, alice), (bname, bob)), hidden, truth = course_with_assignment
    # students see the assignment, but not its labels or evaluation code
    seen = alice.get(f"/workspaces/{ws}/assignments/iris")
    assert seen["predictions"] == "predictions.csv" and seen["metric"] == "accuracy"
    assert seen["labels"] is None and seen["evaluation_code"] is None and seen["labels_name"] is None
    assert "iris-labels.csv" not in str(alice.get(f"/workspaces/{ws}/assignments"))
    with pytest.raises(ApiError) as info:
        alice.get(f"/workspaces/{ws}/datasets/{hidden['digest']}/content")
    assert info.value.status == 404
    with pytest.raises(ApiError) as info:
        alice.post(f"/workspaces/{ws}/assignments", json={
            "name": "mine", "environment": "py", "evaluation_code": seen.get("evaluation_code") or "sha256:" + "0" * 64,
            "labels": "iris-labels.csv"})
    assert info.value.status in (403, 422)

    data = ["iris-train.csv", "iris-test-features.csv"]
    # no environment in the body: the assignment's (py v1) is used
    good = submit(alice, ws, {"train.py": TRAIN}, ["python3", "train.py"], datasets=data, assignment="iris",
                  environment="")
    lazy = submit(bob, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=data, assignment="iris")
    a_run, b_run = wait_scored(alice, good["id"]), wait_scored(bob, lazy["id"])
    assert a_run["status"] == "succeeded" and a_run["environment"] == "py" and a_run["version"] == 1, a_run
    assert a_run["assignment"] == "iris" and a_run["scoring"] == "scored", a_run
    assert float(a_run["score"]) > 0.85 and a_run["score_error"] is None
    expected_lazy = truth.count("setosa") / len(truth)
    assert b_run["scoring"] == "scored" and float(b_run["score"]) == pytest.approx(expected_lazy), b_run

    # the student's container never had the labels: its own listing of /data
    listing = running.platform.data_dir / f"listing-{good['id']}.txt"
    alice.download(f"/runs/{good['id']}/outputs/data-listing.txt", listing)
    assert listing.read_text().split("\n") == ["iris-test-features.csv", "iris-train.csv"]
    logs = alice.get(f"/runs/{good['id']}/outputs")
    names = {f["name"] for f in logs["files"]}
    assert "predictions.csv" in names and "score.json" not in names and not any("label" in n for n in names)
    log_path = running.platform.data_dir / f"logs-{good['id']}.txt"
    alice.download(f"/runs/{good['id']}/outputs/logs.txt", log_path)
    assert "student sees /data: ['iris-test-features.csv', 'iris-train.csv']" in log_path.read_text()
    assert "evaluation sees" not in log_path.read_text()

    board = bob.get(f"/workspaces/{ws}/assignments/iris/leaderboard")
    assert board["metric"] == "accuracy" and board["higher_is_better"] is True
    assert [(r["rank"], r["username"], r["score"], r["run_id"]) for r in board["rows"]] == [
        (1, aname, a_run["score"], good["id"]), (2, bname, b_run["score"], lazy["id"])]
    assert all(r["scored_at"] for r in board["rows"])

    # a second, worse run of alice's does not lower her best
    worse = submit(alice, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=data, assignment="iris")
    assert wait_scored(alice, worse["id"])["score"] == b_run["score"]
    board = teacher.get(f"/workspaces/{ws}/assignments/iris/leaderboard")
    assert [(r["username"], r["run_id"]) for r in board["rows"]] == [(aname, good["id"]), (bname, lazy["id"])]

    # the scoring is in the activity log
    events = alice.get(f"/workspaces/{ws}/activity", params={"subject": f"runs/{good['id']}", "limit": 50})
    assert "run.scored" in [e["type"] for e in events["items"]], events
    created = teacher.get(f"/workspaces/{ws}/activity", params={"subject": "assignments/iris", "limit": 50})
    assert [e["type"] for e in created["items"]] == ["assignment.created"]


def test_broken_evaluation_and_missing_predictions_give_clear_score_errors(running, course_with_assignment) -> None:
    ws, teacher, ((aname, alice), _), _, _ = course_with_assignment
    broken = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({
        "evaluate.py": "import sys\nprint('cannot read labels')\nsys.exit(4)\n"}), expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "broken", "environment": "py", "evaluation_code": broken["digest"], "labels": "iris-labels.csv"})
    silent = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": "print('no score')\n"}),
                             expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "silent", "environment": "py", "evaluation_code": silent["digest"], "labels": "iris-labels.csv"})
    data = ["iris-train.csv", "iris-test-features.csv"]
    runs = {name: submit(alice, ws, {"train.py": TRAIN}, ["python3", "train.py"], datasets=data, assignment=name)
            for name in ("broken", "silent")}
    nothing = submit(alice, ws, {"x.py": ""}, ["python3", "x.py"], assignment="iris")
    failing = submit(alice, ws, {"x.py": ""}, ["python3", "-c", "raise SystemExit(2)"], assignment="iris")
    done = {name: wait_scored(alice, r["id"]) for name, r in runs.items()}
    assert done["broken"]["status"] == "succeeded" and done["broken"]["scoring"] == "failed"
    assert done["broken"]["score"] is None
    assert "the evaluation failed: it exited with code 4" in done["broken"]["score_error"], done["broken"]
    assert "cannot read labels" not in done["broken"]["score_error"]
    assert done["silent"]["scoring"] == "failed" and "no /outputs/score.json" in done["silent"]["score_error"]
    missing = wait_scored(alice, nothing["id"])
    assert missing["status"] == "succeeded" and missing["scoring"] == "failed"
    assert "the run wrote no /outputs/predictions.csv" in missing["score_error"], missing
    failed = wait_scored(alice, failing["id"])
    assert failed["status"] == "failed" and failed["scoring"] == "skipped" and failed["score"] is None
    for name in ("broken", "silent"):
        assert teacher.get(f"/workspaces/{ws}/assignments/{name}/leaderboard")["rows"] == []
    # an unknown assignment or a bad evaluation setup is refused up front
    with pytest.raises(ApiError) as info:
        submit(alice, ws, {"x.py": ""}, ["true"], assignment="nope")
    assert info.value.status == 404
    with pytest.raises(ApiError) as info:
        teacher.post(f"/workspaces/{ws}/assignments", json={
            "name": "public", "environment": "py", "evaluation_code": broken["digest"], "labels": "iris-train.csv"})
    assert info.value.status == 422 and "hidden" in str(info.value.problem)


def test_cli_assignment_create_list_and_leaderboard(running, course_with_assignment, tmp_path: Path) -> None:
    import json

    from reprolab_cli.main import app
    from typer.testing import CliRunner

    ws, teacher, ((aname, alice), _), _, _ = course_with_assignment
    project = tmp_path / "evaluation"
    project.mkdir()
    (project / "evaluate.py").write_text(EVALUATE)
    common = ["--url", running.platform.url, "--token", teacher.http.headers["Authorization"].split()[1]]
    cli = CliRunner()
    made = cli.invoke(app, ["assignment", "create", ws, "iris-cli", "--environment", "py", "--evaluation",
                            str(project), "--labels", "iris-labels.csv", "--metric", "accuracy", "--json", *common])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["name"] == "iris-cli"
    listed = cli.invoke(app, ["assignment", "list", ws, "--json", *common])
    assert listed.exit_code == 0 and [a["name"] for a in json.loads(listed.output)] == ["iris", "iris-cli"]
    run = submit(alice, ws, {"train.py": TRAIN}, ["python3", "train.py"],
                 datasets=["iris-train.csv", "iris-test-features.csv"], assignment="iris-cli")
    assert wait_scored(alice, run["id"])["scoring"] == "scored"
    board = cli.invoke(app, ["assignment", "leaderboard", ws, "iris-cli", "--json", *common])
    assert board.exit_code == 0, board.output
    assert [(r["rank"], r["username"], r["run_id"]) for r in json.loads(board.output)] == [(1, aname, run["id"])]
