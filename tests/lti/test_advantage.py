"""LTI Advantage against the FAKE LMS: deep linking an assignment into the course, its grades posted to the
LMS gradebook (line items whose URLs carry a query string, retries, failures visible), and the course roster
synced into the workspace (memberships paged by Link headers), each recorded in the activity log."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
import uuid
from datetime import UTC, datetime

import httpx
import nats
from reprolab.v1 import registry_pb2, runner_pb2
from reprolab_common.buspermissions import inbox_prefix
from reprolab_common.nats import call, new_event, publish_event
from reprolab_common.subjects import Registry

from .conftest import LmsBrowser, LtiLab
from .fake_lms import INSTRUCTOR, LEARNER, TA, TYPE_ID, form_fields
from .test_launch import course, launched, sub

BASE = "localhost/reprolab/bookworm-python:latest"


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_assignment(lab: LtiLab, ws: str, name: str) -> None:
    """An assignment as an instructor makes one (no build: scores are recorded below as the runner would)."""
    admin = lab.admin
    admin.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
               content=b"id,y\n1,a\n")
    admin.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    code = admin.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": "print(1)\n"}),
                         expect=(201,))
    admin.post(f"/workspaces/{ws}/assignments", json={
        "name": name, "title": "Iris species", "environment": "py", "evaluation_code": code["digest"],
        "labels": "labels.csv", "predictions": "predictions.csv", "metric": "accuracy", "higher_is_better": True})


def record_scores(lab: LtiLab, ws: str, assignment: str, scores: list[tuple[dict, str]], *,
                  announce: bool = False) -> None:
    """What the runner does once an evaluation has scored a run: RecordScore on the registry, then (with
    ``announce``) the ``run.scored`` event, over the real bus with the runner's own identity (the tests do not
    build images and run evaluations here)."""

    async def go() -> None:
        password = lab.platform.nats_credentials()["runner"]
        nc = await nats.connect(lab.platform.nats.url, user="runner", password=password,
                                inbox_prefix=inbox_prefix("runner"))
        try:
            for member, score in scores:
                request = registry_pb2.RecordScoreRequest(
                    workspace=ws, assignment=assignment, run_id=f"run-{uuid.uuid4()}", user_id=member["user_id"],
                    username=member["username"], score=score)
                request.actor.user_id, request.actor.username = member["user_id"], member["username"]
                request.scored_at.FromDatetime(datetime.now(UTC))
                await call(nc, Registry.ASSIGNMENT_RECORD_SCORE.value, request, registry_pb2.Score)
                if announce:
                    event = new_event(type="run.scored", actor=request.actor, workspace=ws,
                                      subject=f"runs/{request.run_id}",
                                      run=runner_pb2.RunEvent(run_id=request.run_id, assignment=assignment,
                                                              score=score))
                    await publish_event(nc.jetstream(), event)
        finally:
            await nc.close()

    asyncio.run(go())


def members(lab: LtiLab, ws: str) -> dict[str, dict]:
    """The workspace's members by LMS subject (usernames start with the LMS's email name: here the sub)."""
    return {m["username"].rsplit("-", 1)[0]: m for m in lab.admin.get(f"/workspaces/{ws}/members")["items"]}


def test_deep_link_grades_and_roster(lti_lab: LtiLab) -> None:
    lms = lti_lab.lms
    c = course(lti_lab, "ML 201")
    teacher, ann, bob, cat = sub(), sub(), sub(), sub()
    lms.enrol(c, teacher, "Teacher", [INSTRUCTOR])
    lms.enrol(c, ann, "Ann", [LEARNER])
    lms.enrol(c, bob, "Bob", [LEARNER])
    lms.enrol(c, cat, "Cat", [LEARNER])  # never launches: the roster sync brings her in
    t = LmsBrowser(lti_lab)
    ws = launched(t.launch(lms.prepare(c, teacher))[0])["workspace"]
    make_assignment(lti_lab, ws, "iris")

    # --- deep linking: the instructor places the assignment in the course
    picker, _ = t.launch(lms.prepare(c, teacher, message_type="LtiDeepLinkingRequest"))
    assert picker.status_code == 200 and "Iris species" in picker.text, picker.text[:800]
    _, fields = form_fields(picker.text)
    back = t.send("POST", f"{lti_lab.url}/lti/deep-link", data={"dl": fields["dl"], "choice": "assignment:iris"})
    assert back.status_code == 200, back.text[:800]
    assert f"form-action 'self' {lms.url}" in back.headers["content-security-policy"]
    action, answer = form_fields(back.text)
    assert action.startswith(f"{lms.url}/deep_link_return?course={c.id}")
    returned = httpx.post(action, data=answer)  # the browser posts it; the LMS verifies it with our JWKS
    assert returned.status_code == 200 and "Added 1 item" in returned.text, (returned.text, lms.refused)
    placed = lms.deep_links[-1]
    assert placed["custom"] == {"reprolab_assignment": "iris"} and placed["url"] == f"{lti_lab.url}/lti/launch"
    assert placed["lineItem"]["resourceId"] == "iris"
    # the same page cannot place a second link
    again = t.send("POST", f"{lti_lab.url}/lti/deep-link", data={"dl": fields["dl"], "choice": "assignment:iris"})
    assert again.status_code == 400
    # an environment can be placed too (no gradebook column)
    picker, _ = t.launch(lms.prepare(c, teacher, message_type="LtiDeepLinkingRequest"))
    _, fields = form_fields(picker.text)
    back = t.send("POST", f"{lti_lab.url}/lti/deep-link", data={"dl": fields["dl"], "choice": "environment:py"})
    action, answer = form_fields(back.text)
    assert httpx.post(action, data=answer).status_code == 200
    assert lms.deep_links[-1]["custom"] == {"reprolab_environment": "py"} and "lineItem" not in lms.deep_links[-1]
    env_page = LmsBrowser(lti_lab).launch(lms.prepare(c, ann, custom={"reprolab_environment": "py"}))[0]
    assert f'href="/w/{ws}/env/py"' in env_page.text
    # a student cannot open the picker
    student_picker, _ = LmsBrowser(lti_lab).launch(lms.prepare(c, ann, message_type="LtiDeepLinkingRequest"))
    assert student_picker.status_code == 403

    # --- students open the placed link
    for who in (ann, bob):
        page = LmsBrowser(lti_lab).launch(lms.prepare(c, who, custom={"reprolab_assignment": "iris"}))[0]
        assert launched(page)["role"] == "student" and "Assignment <strong>iris</strong>" in page.text
    people = members(lti_lab, ws)
    record_scores(lti_lab, ws, "iris", [(people[ann], "0.8"), (people[ann], "0.9"), (people[bob], "0.5")])

    # --- grades: each student's best score, to the line item the deep link made (found by resourceId)
    sent = t.api("POST", f"/lti/courses/{ws}/grades/iris/send")
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] == 2 and sent.json()["failed"] == 0, sent.json()
    item_id = next(k for k, v in lms.line_items.items() if v["resourceId"] == "iris" and v["course"] == c.id)
    assert f"?type_id={TYPE_ID}" in lms.line_items[item_id]["id"]
    posted = {s["userId"]: s for item, s in lms.scores if item == item_id}
    assert posted[ann]["scoreGiven"] == 0.9 and posted[bob]["scoreGiven"] == 0.5
    assert posted[ann]["scoreMaximum"] == 1.0 and posted[ann]["gradingProgress"] == "FullyGraded"
    assert len([i for i in lms.line_items.values() if i["course"] == c.id]) == 1  # found, not duplicated

    # a busy LMS: retried; one that stays down: failed, visible with its error, and logged
    lms.fail_scores = 1
    retried = t.api("POST", f"/lti/courses/{ws}/grades/iris/send").json()
    assert retried["sent"] == 2 and sorted(g["attempts"] for g in retried["items"]) == [1, 2]
    lms.fail_scores = 100
    try:
        down = t.api("POST", f"/lti/courses/{ws}/grades/iris/send").json()
    finally:
        lms.fail_scores = 0
    assert down["failed"] == 2 and all("503" in g["last_error"] and g["attempts"] == 3 for g in down["items"])
    listed = t.api("GET", f"/lti/courses/{ws}/grades", params={"assignment": "iris"}).json()
    assert listed["failed"] == 2 and {g["status"] for g in listed["items"]} == {"failed"}
    # the fallback: a CSV to import by hand, by the LMS's user ids
    exported = t.api("GET", f"/lti/courses/{ws}/grades.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = {r.split(",")[3]: r.split(",") for r in exported.text.splitlines()[1:]}
    assert rows[ann][0] == "iris" and rows[ann][4] == "0.9" and rows[ann][5] == "failed"
    assert rows[bob][4] == "0.5" and set(rows) == {ann, bob}
    # a student may not send grades
    student = LmsBrowser(lti_lab)
    launched(student.launch(lms.prepare(c, bob))[0])
    assert student.api("POST", f"/lti/courses/{ws}/grades/iris/send").status_code == 403

    # a new best score is sent when the run is scored (the gateway follows run.scored)
    record_scores(lti_lab, ws, "iris", [(people[bob], "0.4"), (people[bob], "0.7")], announce=True)
    deadline = time.monotonic() + 15
    while not any(s["userId"] == bob and s["scoreGiven"] == 0.7 for item, s in lms.scores if item == item_id):
        assert time.monotonic() < deadline, lms.scores
        time.sleep(0.2)
    assert not any(s["userId"] == bob and s["scoreGiven"] == 0.4 for item, s in lms.scores)  # best, not latest
    assert {g["username"]: g["status"] for g in t.api("GET", f"/lti/courses/{ws}/grades").json()["items"]}[
        people[bob]["username"]] == "sent"

    # --- roster: every page of the memberships, into the workspace
    pages = lms.roster_pages
    synced = t.api("POST", f"/lti/courses/{ws}/roster/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json() == {"members": 4, "added": 1, "role_changes": 0, "removed": 0}
    assert lms.roster_pages == pages + 2  # 4 members, 2 a page: the Link header was followed
    assert members(lti_lab, ws)[cat]["role"] == "student"
    # a member added by hand (not in the LMS course) is never removed by a sync
    hand = f"hand-{uuid.uuid4().hex[:6]}"
    lti_lab.admin.post("/users", json={"username": hand})
    lti_lab.admin.post(f"/workspaces/{ws}/members", json={"username": hand, "role": "student"})
    # the LMS promotes Bob to teaching assistant and Cat leaves the course: both are applied to the workspace
    lms.enrol(c, bob, "Bob", [TA])
    del c.roles[cat]
    assert t.api("POST", f"/lti/courses/{ws}/roster/sync").json() == {
        "members": 3, "added": 0, "role_changes": 1, "removed": 1}
    now = members(lti_lab, ws)
    assert now[bob]["role"] == "instructor" and cat not in now and now[ann]["role"] == "student", now
    assert hand in {m["username"] for m in lti_lab.admin.get(f"/workspaces/{ws}/members")["items"]}
    # nothing more to do on the next sync
    assert t.api("POST", f"/lti/courses/{ws}/roster/sync").json() == {
        "members": 3, "added": 0, "role_changes": 0, "removed": 0}

    # --- the activity log has each of them
    log = f"/workspaces/{ws}/activity"
    assert lti_lab.activity(log, type="lti.linked", want=1)[0]["event"]["details"]["assignment"] == "iris"
    assert len(lti_lab.activity(log, type="lti.grade_posted", want=4)) >= 4
    failed = lti_lab.activity(log, type="lti.grade_failed", want=2)
    assert "503" in failed[0]["event"]["details"]["reason"]
    assert lti_lab.activity(log, type="lti.roster_synced", want=2)[0]["event"]["details"]["count"] == 1
    change = lti_lab.activity(log, type="lti.role_changed", want=1)[0]["event"]["details"]
    assert change["previous_role"] == "student" and change["role"] == "instructor"
    assert change["outcome"] == "applied"
    applied = lti_lab.activity(log, type="member.role_changed", want=1)[0]["event"]
    assert applied["details"]["username"] == people[bob]["username"], applied
    left = lti_lab.activity(log, type="lti.member_left", want=1)[0]["event"]["details"]
    assert left["outcome"] == "removed" and left["previous_role"] == "student" and left["username"].startswith(cat)
    gone = lti_lab.activity(log, type="member.removed", want=1)[0]["event"]
    assert gone["subject"].startswith("members/")
