"""A student opens JupyterLab from an assignment's page and finds its starter code in ~/<assignment>/ (issue 17
item 1), in Chromium at a laptop's size: "Open in JupyterLab with the starter code" starts a session of the
assignment's environment for that assignment, the sessions page follows it until it runs, and the file is
there, read through the gateway with the portal's cookie alone.

Real parts: the platform's gateway, registry, runner, builder (the notebook layer), the object store and podman.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
import uuid

import pytest
from playwright.sync_api import expect

from .conftest import Portal
from .test_layout import check_page, sign_in

BASE = "localhost/reprolab/bookworm-python:latest"
STARTER = "print('start here')\n"


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.timeout(900)
def test_a_student_opens_jupyterlab_from_the_assignment_with_its_starter_code(portal: Portal, tab,
                                                                               base_image) -> None:
    page = tab.page
    _t, _ttoken, teacher = portal.user("as-prof")
    sname, stoken, student = portal.user("as-stud")
    ws = f"as-{uuid.uuid4().hex[:8]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Starter code"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                 content=b"id,y\n1,a\n")
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": "pass\n"}),
                           expect=(201,))
    starter = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"train.py": STARTER}),
                              expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "week1", "environment": "py", "evaluation_code": code["digest"], "labels": "labels.csv",
        "starter_code": starter["digest"]})

    sign_in(page, portal.url, stoken)
    homes: set[str] = set()
    try:
        page.goto(f"{portal.url}/w/{ws}/assignments/week1")
        button = page.get_by_role("button", name="Open in JupyterLab with the starter code")
        expect(button).to_be_visible()
        check_page(page, tab.errors, "laptop-assignment-open-in-jupyterlab")
        button.click()
        page.wait_for_url(f"**/w/{ws}/sessions?started=*")
        link = page.get_by_role("link", name="Open the session of py v1 in JupyterLab")
        expect(link).to_be_visible(timeout=600_000)  # the first start builds the notebook layer
        sid = student.get(f"/workspaces/{ws}/sessions")["items"][0]["id"]
        homes.add(subprocess.run(
            ["podman", "inspect", "--format", '{{index .Config.Labels "org.reprolab.session-home"}}',
             f"reprolab-session-{sid}"], capture_output=True, text=True).stdout.strip())
        got = page.request.get(f"{portal.url}/sessions/{sid}/api/contents/week1/train.py")
        assert got.ok, got.text()
        assert got.json()["content"] == STARTER
        assert not tab.errors, tab.errors
    finally:
        for s in student.get(f"/workspaces/{ws}/sessions")["items"]:
            if s["status"] not in ("stopped", "failed"):
                student.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
        deadline = time.monotonic() + 120
        while any(s["status"] not in ("stopped", "failed") for s in student.get(f"/workspaces/{ws}/sessions")["items"]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for volume in homes - {""}:
            subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)
