"""Assignments as courses run them (issue 17): instructions, starter code, dates and late policy, a daily
limit, a public/private split revealed at the due date, an anonymous leaderboard, re-scoring with a new
evaluation, the gradebook (JSON and CSV) and feedback only its student reads.

Real parts: the platform's processes (SQLite: the rules are the registry's code, the PostgreSQL run of
test_assignments covers the tables), a built image, podman. Time is never waited for: due dates are set
in the past or the future instead.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from reprolab_cli.client import ApiError

from .test_assignments import LAZY, TRAIN, course_with_assignment, wait_scored  # noqa: F401 - the fixture
from .test_runs import submit, tar_gz

on_sqlite = pytest.mark.parametrize("running", ["sqlite"], indirect=True)

# Kaggle-style: even ids are the public split, odd ids the private one.
SPLIT_EVALUATE = '''
import csv, json
truth = {r["id"]: r["species"] for r in csv.DictReader(open("/data/labels"))}
pred = {r["id"]: r["species"] for r in csv.DictReader(open("/inputs/predictions.csv"))}
def acc(ids):
    return sum(pred.get(i) == truth[i] for i in ids) / len(ids)
public = [i for i in truth if int(i) % 2 == 0]
private = [i for i in truth if int(i) % 2 == 1]
json.dump({"score": round(acc(public), 4), "private": round(acc(private), 4)}, open("/outputs/score.json", "w"))
'''
# A second evaluation: the same splits, scores in percent (so re-scored rows are told apart).
PERCENT_EVALUATE = SPLIT_EVALUATE.replace("round(acc(public), 4)", "round(100 * acc(public), 2)").replace(
    "round(acc(private), 4)", "round(100 * acc(private), 2)")
DATA = ["iris-train.csv", "iris-test-features.csv"]


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def refused(call, status: int) -> str:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status, info.value.problem
    return str(info.value.problem)


@on_sqlite
def test_a_course_assignment_from_instructions_to_gradebook(running, course_with_assignment) -> None:  # noqa: F811
    ws, teacher, ((aname, alice), (bname, bob)), _, _ = course_with_assignment
    evaluation = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": SPLIT_EVALUATE}),
                                 expect=(201,))
    starter = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"train.py": LAZY}), expect=(201,))
    made = teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "split", "title": "Iris, two splits", "environment": "py", "evaluation_code": evaluation["digest"],
        "labels": "iris-labels.csv", "metric": "accuracy",
        "instructions": "# Iris\r\nPredict **species**. <script>alert(1)</script> [x](javascript:alert(1))",
        "starter_code": starter["digest"], "due_at": iso(timedelta(days=7)), "daily_limit": 2, "anonymous": True,
        "late_policy": "penalty", "late_penalty_percent": 50})
    assert made["daily_limit"] == 2 and made["anonymous"] and made["past_due"] is False
    # instructions: Markdown rendered, raw HTML and javascript: links shown as text, never run
    seen = alice.get(f"/workspaces/{ws}/assignments/split")
    assert "<h1>Iris</h1>" in seen["instructions_html"] and "<strong>species</strong>" in seen["instructions_html"]
    assert "<script>" not in seen["instructions_html"] and "&lt;script&gt;" in seen["instructions_html"]
    assert 'href="javascript' not in seen["instructions_html"]
    # starter code: downloadable by a student, and usable as a run's code
    archive = alice.http.get(f"/workspaces/{ws}/assignments/split/starter")
    assert archive.status_code == 200 and archive.content[:2] == b"\x1f\x8b"
    assert seen["starter_code"] == starter["digest"]
    refused(lambda: alice.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"daily_limit": 9}), 403)
    refused(lambda: teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"late_policy": "never"}), 422)
    refused(lambda: teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={
        "opens_at": iso(timedelta(days=8))}), 422)  # after the due date

    a1 = submit(alice, ws, {"train.py": TRAIN}, ["python3", "train.py"], datasets=DATA, assignment="split")
    # bob runs the starter code as it is (its digest is a run's code)
    b1 = bob.request("POST", f"/workspaces/{ws}/runs", json={
        "code": starter["digest"], "command": ["python3", "train.py"], "datasets": DATA, "assignment": "split"},
        expect=(202,))
    ra, rb = wait_scored(alice, a1["id"]), wait_scored(bob, b1["id"])
    assert ra["scoring"] == "scored" and rb["scoring"] == "scored", (ra, rb)

    # before the due date: the public split everywhere a student looks; the private score nowhere
    book = teacher.get(f"/workspaces/{ws}/assignments/split/gradebook")
    rows = {r["username"]: r for r in book["rows"]}
    a_private, b_private = rows[aname]["private_score"], rows[bname]["private_score"]
    assert a_private and b_private and ra["score"] == rows[aname]["public_score"]
    board = bob.get(f"/workspaces/{ws}/assignments/split/leaderboard")
    assert board["split"] == "public" and board["anonymous"] is True
    assert [r["score"] for r in board["rows"]] == [rows[aname]["public_score"], rows[bname]["public_score"]]
    mine = [r for r in board["rows"] if r["you"]]
    assert len(mine) == 1 and mine[0]["run_id"] == b1["id"] and mine[0]["username"].startswith("student-")
    other = next(r for r in board["rows"] if not r["you"])
    assert other["run_id"] == "" and aname not in str(board) and other["username"].startswith("student-")
    assert bob.get(f"/workspaces/{ws}/assignments/split/leaderboard")["rows"] == board["rows"]  # stable
    assert aname in str(teacher.get(f"/workspaces/{ws}/assignments/split/leaderboard"))  # instructors: names
    own = bob.get(f"/workspaces/{ws}/assignments/split/gradebook")
    assert [r["username"] for r in own["rows"]] == [bname] and own["rows"][0]["private_score"] is None
    for where in (bob.get(f"/runs/{b1['id']}"), bob.get(f"/workspaces/{ws}/assignments/split"),
                  bob.get(f"/workspaces/{ws}/activity", params={"limit": 200}),
                  bob.http.get(f"/workspaces/{ws}/assignments/split/gradebook.csv").text):
        if b_private != rows[bname]["public_score"]:
            assert b_private not in str(where), where
        if a_private not in (rows[aname]["public_score"], rows[bname]["public_score"]):
            assert a_private not in str(where), where

    # the daily limit: bob has one submission left today; then a 429 saying when the next opens
    b2 = submit(bob, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=DATA, assignment="split")
    problem = refused(lambda: submit(bob, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=DATA,
                                     assignment="split"), 429)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert f"the next one opens at {tomorrow}T00:00:00+00:00" in problem, problem
    wait_scored(bob, b2["id"])

    # feedback: only its student reads it
    teacher.post(f"/workspaces/{ws}/assignments/split/submissions/{a1['id']}/feedback",
                 json={"text": "Nice centroids; try scaling."}, expect=(201,))
    refused(lambda: bob.post(f"/workspaces/{ws}/assignments/split/submissions/{a1['id']}/feedback",
                             json={"text": "me too"}), 403)
    refused(lambda: teacher.post(f"/workspaces/{ws}/assignments/split/submissions/{b1['id'][:-4]}beef/feedback",
                                 json={"text": "nobody"}), 404)
    assert alice.get(f"/workspaces/{ws}/assignments/split/gradebook")["rows"][0]["feedback"][0]["text"] == (
        "Nice centroids; try scaling.")
    assert "centroids" not in str(bob.get(f"/workspaces/{ws}/assignments/split/gradebook"))
    assert "centroids" not in bob.http.get(f"/workspaces/{ws}/assignments/split/gradebook.csv").text

    # the due date passes (set in the past): the private split is revealed and ranks; refused from then on
    due = iso(timedelta(0))  # now: every submission so far was on time
    teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"due_at": due})
    board = bob.get(f"/workspaces/{ws}/assignments/split/leaderboard")
    assert board["split"] == "private"
    assert sorted(r["score"] for r in board["rows"]) == sorted([a_private, b_private])
    own = bob.get(f"/workspaces/{ws}/assignments/split/gradebook")["rows"][0]
    assert own["private_score"] == b_private and own["late"] is False and own["final_score"] == b_private
    # a late submission: accepted with the penalty (grade by the last one to see it counted)
    teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"grade_by": "last", "daily_limit": 0})
    a2 = submit(alice, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=DATA, assignment="split")
    wait_scored(alice, a2["id"])
    late = alice.get(f"/workspaces/{ws}/assignments/split/gradebook")["rows"][0]
    assert late["run_id"] == a2["id"] and late["late"] is True and late["penalty_percent"] == 50
    assert float(late["final_score"]) == pytest.approx(float(late["private_score"]) * 0.5)
    teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"late_policy": "refuse"})
    assert "takes no late submissions" in refused(lambda: submit(
        alice, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"], datasets=DATA, assignment="split"), 409)
    teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"due_at": iso(timedelta(days=7)),
                                                                "opens_at": iso(timedelta(days=1))})
    assert "opens at" in refused(lambda: submit(alice, ws, {"lazy.py": LAZY}, ["python3", "lazy.py"],
                                                datasets=DATA, assignment="split"), 409)
    teacher.request("PATCH", f"/workspaces/{ws}/assignments/split", json={"opens_at": None, "due_at": due,
                                                                              "grade_by": "best"})

    # the gradebook CSV has the API's rows and scores
    book = teacher.get(f"/workspaces/{ws}/assignments/split/gradebook")
    exported = teacher.http.get(f"/workspaces/{ws}/assignments/split/gradebook.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["username"], r["run_id"], r["public_score"], r["private_score"], r["final_score"], r["late"])
            for r in table] == [(r["username"], r["run_id"], r["public_score"], r["private_score"] or "",
                                 r["final_score"], "yes" if r["late"] else "no") for r in book["rows"]]
    assert {r["username"] for r in table} == {aname, bname}

    # re-scoring: a new evaluation scores each student's best and last submission again; old scores kept
    percent = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": PERCENT_EVALUATE}),
                              expect=(201,))
    refused(lambda: alice.request("PUT", f"/workspaces/{ws}/assignments/split/evaluation",
                              json={"evaluation_code": percent["digest"]}), 403)
    again = teacher.request("PUT", f"/workspaces/{ws}/assignments/split/evaluation",
                            json={"evaluation_code": percent["digest"]})
    assert again["assignment"]["evaluation_revision"] == 2 and not again["skipped"], again
    assert {a1["id"], b1["id"]} <= set(again["rescoring"]), again
    for run_id in again["rescoring"]:  # the runner reset each one's score before answering
        assert wait_scored(teacher, run_id)["scoring"] == "scored"
    book = teacher.get(f"/workspaces/{ws}/assignments/split/gradebook")
    assert all(r["evaluation_revision"] == 2 for r in book["rows"]), book
    rescored = {r["username"]: r for r in book["rows"]}
    assert float(rescored[aname]["private_score"]) == pytest.approx(100 * float(a_private), abs=0.01)
    assert float(rescored[bname]["public_score"]) == pytest.approx(100 * float(rows[bname]["public_score"]),
                                                                   abs=0.01)
    assert wait_scored(alice, a1["id"])["score"] == rescored[aname]["public_score"]
