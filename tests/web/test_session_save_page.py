""""Save as a new version" from the sessions page, in Chromium (issue 12 item 7): a student who installed a
package from a local wheel in their running session clicks the button, sees the new version (in their fork)
with a link to its build, follows it and sees the build succeed. Screenshots kept as test_layout.py's.

Real parts: the platform's gateway, runner, builder, podman, pip in the session (over the kernel websocket
through the gateway), a real PEP 503 index on this host holding the wheel the build resolves."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from playwright.sync_api import expect

from ..builder.pep503 import SimpleIndex
from ..sessions.test_session_capture import PKG, SPEC, install_wheel
from .conftest import Portal
from .test_layout import check_page, sign_in


@pytest.mark.timeout(900)
def test_a_student_saves_the_session_as_a_new_version_from_the_portal(portal: Portal, tab, base_image,
                                                                       tmp_path) -> None:
    """One session per run, so the flow runs once, at the laptop's size (the sessions page's layout at 390 px is
    tests/web/test_sessions_page.py's)."""
    page, errors = tab.page, tab.errors
    index = SimpleIndex(tmp_path / "index")
    wheel = index.add(PKG, "1.0", body="VERSION = 'captured 1.0'\n")
    index.start()
    _t, _ttoken, teacher = portal.user("sv-prof")
    sname, stoken, student = portal.user("sv-stud")
    ws = f"sv-{uuid.uuid4().hex[:8]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Save sessions"})
    teacher.request("PUT", f"/workspaces/{ws}/package-indexes/course", json={"url": index.url})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    sid = student.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))["id"]
    home = ""
    try:
        deadline = time.monotonic() + 600
        while student.get(f"/workspaces/{ws}/sessions/{sid}")["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        home = subprocess.run(["podman", "inspect", "--format", '{{index .Config.Labels "org.reprolab.session-home"}}',
                               f"reprolab-session-{sid}"], capture_output=True, text=True).stdout.strip()
        install_wheel(portal.url.rstrip("/"), stoken, sid, wheel)

        sign_in(page, portal.url, stoken)
        page.goto(f"{portal.url}/w/{ws}/sessions")
        save = page.get_by_role("button", name="Save what you installed in the session of py v1 as a new version")
        expect(save).to_be_visible(timeout=30_000)
        save.click()
        result = page.locator("#saved-version")
        expect(result).to_contain_text("Saved as", timeout=120_000)
        expect(result).to_contain_text(f"+ python {PKG} 1.0")
        expect(result).to_contain_text("(your fork)")
        check_page(page, errors, "laptop-sessions-saved-as-new-version")
        saved = [e for e in student.get(f"/workspaces/{ws}/environments")["items"] if e.get("forked_from")]
        assert [e["forked_from"] for e in saved] == [f"{ws}/py/v1"], saved
        fork = saved[0]["name"]
        result.get_by_role("link", name="follow the build").click()
        page.wait_for_url(f"**/w/{ws}/env/{fork}?build=*")
        expect(page.locator("#build-status")).to_contain_text("succeeded", timeout=300_000)
        check_page(page, errors, "laptop-saved-version-build")
        assert f"{PKG}==1.0" in student.get(f"/workspaces/{ws}/environments/{fork}/versions/2")["spec"]["python"][
            "requirements"]
        assert not errors, errors
    finally:
        student.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
        deadline = time.monotonic() + 120
        while student.get(f"/workspaces/{ws}/sessions/{sid}")["status"] not in ("stopped", "failed"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if home:
            subprocess.run(["podman", "volume", "rm", "-f", home], capture_output=True)
        index.stop()
