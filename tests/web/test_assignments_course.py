"""The course flows of an assignment in the portal (issue 17), at a phone's size (390x844) and a laptop's
(1366x768): the student's page before the due date (public split, their own gradebook row, the private
score hidden, pseudonyms on an anonymous board), the instructor's (every row with both splits, feedback,
the CSV export compared with the API's gradebook, the settings form moving the due date), then the
student's page after the due date (the private split revealed, the feedback there).

A page fails on sideways scroll, a console error or a "Loading…" left after its script finished
(``check_page`` of test_layout). Real parts: the whole platform, a built image, podman runs, scoring.
Screenshots: /work/wt/shots/assign/ (and tests/web/screenshots/).
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Portal
from .test_layout import check_page, sign_in, sized, wait  # noqa: F401 - sized is a fixture
from .test_portal import tar_gz

SHOTS = Path("/work/wt/shots/assign")
LABELS = "id,species\n" + "".join(f"{i},{['setosa', 'virginica', 'versicolor'][i % 3]}\n" for i in range(12))
EVALUATE = '''
import csv, json
truth = {r["id"]: r["species"] for r in csv.DictReader(open("/data/labels"))}
pred = {r["id"]: r["species"] for r in csv.DictReader(open("/inputs/predictions.csv"))}
acc = lambda ids: sum(pred.get(i) == truth[i] for i in ids) / len(ids)
json.dump({"score": round(acc([i for i in truth if int(i) % 2 == 0]), 4),
           "private": round(acc([i for i in truth if int(i) % 2 == 1]), 4)}, open("/outputs/score.json", "w"))
'''
# right on the public (even) ids, half right on the private (odd) ones
GOOD = '''
import csv
names = ["setosa", "virginica", "versicolor"]
with open("/outputs/predictions.csv", "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["id", "species"])
    for i in range(12):
        out.writerow([i, names[i % 3] if i % 2 == 0 or i % 4 == 1 else "setosa"])
'''
LAZY = '''
with open("/outputs/predictions.csv", "w") as fh:
    fh.write("id,species\\n" + "".join(f"{i},setosa\\n" for i in range(12)))
'''
INSTRUCTIONS = "## Predict the species\n\nWrite `/outputs/predictions.csv` with **id** and **species**.\n\n" \
    "- one row per id\n- <b>raw HTML stays text</b>\n"


@dataclass
class Course:
    ws: str
    instructor: tuple[str, str]
    students: list[tuple[str, str]]
    teacher: object


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def wait_scored(client, run_id: str) -> dict:
    deadline = time.monotonic() + 300
    while (run := client.get(f"/runs/{run_id}"))["status"] not in ("succeeded", "failed") or \
            run.get("scoring") == "pending":
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    return run


@pytest.fixture(scope="module")
def course(portal: Portal, base_image: str) -> Course:
    iname, itoken, teacher = portal.user("gb-prof")
    ws = f"gb-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Machine learning, autumn term"})
    students = []
    for prefix, program in (("gb-ann", GOOD), ("gb-bob", LAZY)):
        sname, stoken, student = portal.user(prefix)
        teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
        students.append((sname, stoken, student, program))
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                 content=LABELS.encode())
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": []}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": EVALUATE}),
                           expect=(201,))
    starter = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"main.py": LAZY}), expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "species", "title": "Iris species", "environment": "py", "evaluation_code": code["digest"],
        "labels": "labels.csv", "metric": "accuracy", "instructions": INSTRUCTIONS,
        "starter_code": starter["digest"], "due_at": iso(timedelta(days=7)), "anonymous": True, "daily_limit": 5,
        "late_policy": "penalty", "late_penalty_percent": 20})
    runs = []
    for _name, _token, student, program in students:
        archive = student.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"main.py": program}),
                                  expect=(201,))
        runs.append(student.post(f"/workspaces/{ws}/runs", json={
            "code": archive["digest"], "command": ["python3", "main.py"], "assignment": "species"},
            expect=(202,)))
    for (_, _, student, _), run in zip(students, runs, strict=True):
        assert wait_scored(student, run["id"])["scoring"] == "scored"
    return Course(ws, (iname, itoken), [(s[0], s[1]) for s in students], teacher)


def saved(page: Page, errors: list[str], label: str) -> None:
    path = check_page(page, errors, label)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / f"{label}.png")


def test_the_course_flow_with_a_deadline_a_private_split_and_a_gradebook(portal: Portal, course: Course,
                                                                          sized) -> None:  # noqa: F811
    page, errors, size = sized
    url = f"{portal.url}/w/{course.ws}/assignments/species"
    course.teacher.request("PATCH", f"/workspaces/{course.ws}/assignments/species",
                           json={"due_at": iso(timedelta(days=7))})
    book = course.teacher.get(f"/workspaces/{course.ws}/assignments/species/gradebook")
    rows = {r["username"]: r for r in book["rows"]}
    (ann, ann_token), (bob, bob_token) = course.students
    assert rows[ann]["private_score"] != rows[ann]["public_score"]

    # the student before the due date: instructions, public split, own row, private hidden, pseudonyms
    sign_in(page, portal.url, ann_token)
    page.goto(url)
    expect(page.locator("#a-instructions h2")).to_have_text("Predict the species")
    expect(page.locator("#a-instructions")).to_contain_text("<b>raw HTML stays text</b>")
    expect(page.locator("#lb-split")).to_contain_text("public test split")
    expect(page.locator("#leaderboard")).to_contain_text(" (you)")
    expect(page.locator("#leaderboard")).not_to_contain_text(bob)
    expect(page.locator("#gradebook tbody tr")).to_have_count(1)
    expect(page.locator("#gradebook")).to_contain_text("hidden until the due date")
    expect(page.locator("#gradebook")).not_to_contain_text(rows[ann]["private_score"])
    expect(page.locator("#a-starter")).to_be_visible()
    expect(page.locator("#a-settings-box")).to_be_hidden()
    saved(page, errors, f"{size}-student-before-due")

    # the instructor: every row with both splits, feedback, the CSV export = the API's gradebook
    page.context.clear_cookies()
    sign_in(page, portal.url, course.instructor[1])
    page.goto(url)
    expect(page.locator("#gradebook tbody tr")).to_have_count(2)
    expect(page.locator("#gradebook")).to_contain_text(rows[ann]["private_score"])
    expect(page.locator("#leaderboard")).to_contain_text(bob)  # instructors see names
    note = f"Good work at {size} size."
    page.locator(f"#fb-{rows[ann]['run_id']}").fill(note)
    page.locator(f"#fb-{rows[ann]['run_id']}").locator("xpath=..").get_by_role("button", name="Send").click()
    expect(page.locator("#gradebook")).to_contain_text(note)
    with page.expect_download() as download:
        page.locator("#gb-csv").click()
    exported = Path(download.value.path()).read_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{size}-gradebook.csv").write_text(exported)
    table = {r["username"]: r for r in csv.DictReader(io.StringIO(exported))}
    api_rows = course.teacher.get(f"/workspaces/{course.ws}/assignments/species/gradebook")["rows"]
    assert {u: (r["public_score"], r["private_score"], r["final_score"], r["run_id"]) for u, r in table.items()} == {
        r["username"]: (r["public_score"], r["private_score"] or "", r["final_score"], r["run_id"]) for r in api_rows}
    saved(page, errors, f"{size}-instructor-before-due")

    # the instructor moves the due date into the past with the settings form (UTC, whole minutes)
    first = min(datetime.fromisoformat(r["submitted_at"]) for r in api_rows)
    past = (first - timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    page.locator("#s-due").fill(past)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#a-deadline")).to_contain_text("The due date has passed")
    expect(page.locator("#lb-split")).to_contain_text("private test split")
    # a due date before the fixture's submissions: they are late now, and the penalty (20 %) shows where
    # the instructor and the student look
    expect(page.locator("#gradebook")).to_contain_text("late (−20 %)")
    saved(page, errors, f"{size}-instructor-after-due")

    # the student after the due date: the private split revealed, ranked by it, the feedback theirs
    page.context.clear_cookies()
    sign_in(page, portal.url, ann_token)
    page.goto(url)
    expect(page.locator("#lb-split")).to_contain_text("private test split")
    expect(page.locator("#gradebook")).to_contain_text(rows[ann]["private_score"])
    expect(page.locator("#gradebook")).to_contain_text(note)
    expect(page.locator("#gradebook")).to_contain_text("late (−20 %)")
    saved(page, errors, f"{size}-student-after-due")
    # the other student does not read it
    page.context.clear_cookies()
    sign_in(page, portal.url, bob_token)
    page.goto(url)
    expect(page.locator("#gradebook tbody tr")).to_have_count(1)
    expect(page.locator("#gradebook")).not_to_contain_text(note)
    saved(page, errors, f"{size}-other-student-after-due")
