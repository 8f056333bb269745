"""Archiving, restoring and deleting an environment from the portal, in Chromium at a phone's size (390x844)
and a laptop's (1366x768): the environment page's Archive/Restore/Delete, the workspace page's archived list,
and a deletion refused because a student forked it (the 409 names the fork). Each page must not scroll
sideways, log a script error or stay on "Loading…" (test_layout.py's checks); screenshots go to
tests/web/screenshots/layout-*.png."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in

sized = test_layout.sized  # the fixture of the two screen sizes


def test_an_environment_is_archived_restored_and_deleted_from_its_page(portal: Portal, sized, base_image: str) -> None:
    page, errors, size = sized
    _, itoken, teacher = portal.user("cl-teach")
    sname, _, student = portal.user("cl-stud")
    ws = f"tidy-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Clean-up"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    spec = {"base": base_image, "python": {"version": "3.11", "requirements": []}}
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "old", "spec": spec})
    fork = student.post(f"/workspaces/{ws}/environments/py/fork", json={"name": "py-mine"})["name"]
    sign_in(page, portal.url, itoken)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{portal.url}/w/{ws}/env/old")
    expect(page.locator("#tidy-state")).to_contain_text("In use")
    page.get_by_role("button", name="Archive", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("Environment old archived.")
    expect(page.locator("#tidy-state")).to_contain_text("Archived on")
    expect(page.locator("#edit-section")).to_be_hidden()
    check_page(page, errors, f"{size}-environment-archived")
    assert teacher.get(f"/workspaces/{ws}/environments/old")["archived_at"]

    page.goto(f"{portal.url}/w/{ws}")
    expect(page.locator("#archived-count")).to_have_text("1")
    expect(page.locator("#environments tbody tr", has_text="old")).to_have_count(0)
    page.locator("#archived-envs summary").click()
    expect(page.locator("#archived-list a", has_text="old")).to_be_visible()
    check_page(page, errors, f"{size}-workspace-archived")

    page.locator("#archived-list a", has_text="old").click()
    page.get_by_role("button", name="Restore", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("Environment old restored.")
    assert teacher.get(f"/workspaces/{ws}/environments/old")["archived_at"] is None

    # the student's fork keeps py: the refusal names it and suggests archiving
    page.goto(f"{portal.url}/w/{ws}/env/py")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#flash")).to_contain_text(f"fork {ws}/{fork}")
    expect(page.locator("#flash")).to_contain_text("archive it instead")
    check_page(page, errors, f"{size}-environment-delete-refused")

    page.goto(f"{portal.url}/w/{ws}/env/old")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("Environment old deleted.")
    expect(page.locator("#environments tbody tr", has_text="old")).to_have_count(0)
    assert {e["name"] for e in teacher.get(f"/workspaces/{ws}/environments", params={"archived": "true"})["items"]} \
        == {"py", fork}
    check_page(page, errors, f"{size}-workspace-after-delete")


def test_a_finished_run_is_deleted_from_its_page(portal: Portal, sized, base_image: str) -> None:
    import io
    import tarfile

    from .test_layout import wait

    page, errors, size = sized
    _, _, teacher = portal.user("cl-rteach")
    sname, stoken, student = portal.user("cl-rstud")
    ws = f"tidyr-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Clean-up of runs"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": []}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"print('hello')\n"
        info = tarfile.TarInfo("main.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    code = student.request("POST", f"/workspaces/{ws}/code", content=buf.getvalue(), expect=(201,))
    run = student.request("POST", f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["python3", "main.py"]}, expect=(202,))
    assert wait(student, f"/runs/{run['id']}", ("succeeded", "failed"))["status"] == "succeeded"

    sign_in(page, portal.url, stoken)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{portal.url}/w/{ws}/runs/{run['id']}")
    expect(page.get_by_role("button", name="Delete run")).to_be_visible()
    check_page(page, errors, f"{size}-run-deletable")
    page.get_by_role("button", name="Delete run").click()
    expect(page.locator("#flash")).to_contain_text(f"Run {run['id'][:8]} deleted.")
    check_page(page, errors, f"{size}-runs-after-delete")
    student.response("GET", f"/runs/{run['id']}", expect=(404,))
