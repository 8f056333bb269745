"""JupyterLab sessions from the portal, in Chromium (issue 12, item 8): a student opens a built version in
JupyterLab from the environment's page, follows it on the sessions page until it runs, opens JupyterLab itself
through the gateway (the portal's cookie is the only credential the browser has), sees the warning before the
idle session is stopped, then sees it stopped. At a phone's size the two pages keep test_layout.py's checks.

Real parts: the platform's gateway, runner, builder (the notebook layer) and podman."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from playwright.sync_api import expect

from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in

sized = test_layout.sized
BASE = "localhost/reprolab/bookworm-python:latest"


@pytest.mark.timeout(900)
def test_a_student_opens_jupyterlab_from_a_version_and_sees_the_idle_warning(portal: Portal, sized,
                                                                              base_image) -> None:
    page, errors, size = sized
    _t, _ttoken, teacher = portal.user("sp-prof")
    sname, stoken, student = portal.user("sp-stud")
    ws = f"sp-{uuid.uuid4().hex[:8]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Sessions"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # short enough to watch the warning (it comes at most half the timeout before the stop)
    teacher.request("PUT", f"/workspaces/{ws}/session-settings", json={"idle_timeout_seconds": 40})
    sign_in(page, portal.url, stoken)
    page.goto(f"{portal.url}/w/{ws}/env/py")
    open_button = page.get_by_role("button", name="Open version 1 in JupyterLab")
    expect(open_button).to_be_visible()
    check_page(page, errors, f"{size}-environment-open-in-jupyterlab")
    page.get_by_role("link", name="Sessions").click()
    page.wait_for_url(f"**/w/{ws}/sessions")
    expect(page.locator("#sessions-table tbody")).to_contain_text("No sessions yet")
    check_page(page, errors, f"{size}-sessions-empty")
    if size == "phone":
        return  # one session per test run is enough; the flow below runs at the laptop's size

    homes = set()
    try:
        page.goto(f"{portal.url}/w/{ws}/env/py")
        page.get_by_role("button", name="Open version 1 in JupyterLab").click()
        page.wait_for_url(f"**/w/{ws}/sessions?started=*")
        expect(page.locator("#flash")).to_contain_text("Starting JupyterLab")
        link = page.get_by_role("link", name="Open the session of py v1 in JupyterLab")
        expect(link).to_be_visible(timeout=600_000)  # the first start builds the notebook layer
        expect(page.locator("#flash")).to_contain_text("JupyterLab is ready")
        sid = student.get(f"/workspaces/{ws}/sessions")["items"][0]["id"]
        homes.add(subprocess.run(
            ["podman", "inspect", "--format", '{{index .Config.Labels "org.reprolab.session-home"}}',
             f"reprolab-session-{sid}"], capture_output=True, text=True).stdout.strip())
        assert link.get_attribute("href") == f"/sessions/{sid}/lab"
        check_page(page, errors, "laptop-sessions-running")
        # JupyterLab itself, through the gateway, with the portal's cookie alone
        with page.context.expect_page() as opened:
            link.click()
        lab = opened.value
        lab.wait_for_load_state("domcontentloaded")
        assert f"/sessions/{sid}/lab" in lab.url
        expect(lab.locator("#jupyter-config-data")).to_be_attached(timeout=60_000)
        # the layer's defaults: no prompt to fetch Jupyter news (a session has no internet), no update check
        notes = lab.request.get(f"{lab.url.split('/lab')[0]}/lab/api/settings/"
                                "@jupyterlab/apputils-extension:notification")
        assert notes.ok, notes.text()
        defaults = notes.json()["schema"]["properties"]  # overrides.json becomes the settings' defaults
        assert (defaults["fetchNews"]["default"], defaults["checkForUpdates"]["default"]) == ("false", False)
        lab.screenshot(path=str(test_layout.SCREENSHOTS / "layout-laptop-jupyterlab.png"))
        lab.close()  # an open JupyterLab polls the server and keeps the session active
        warning = page.locator("#cull-warnings .cull-warning")
        expect(warning).to_be_visible(timeout=180_000)
        expect(warning).to_contain_text("will be stopped in about")
        check_page(page, errors, "laptop-sessions-cull-warning")
        expect(page.locator("#sessions-table tbody")).to_contain_text("stopped", timeout=120_000)
        expect(warning).to_have_count(0)
        assert not errors, errors
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


def test_instructors_set_the_session_limits_and_students_read_them(portal: Portal, sized) -> None:
    """Issue 12 item 8: the workspace's session limits on the sessions page, in words for everyone; the form
    for instructors only, its values what the API then answers."""
    page, errors, size = sized
    _tname, ttoken, teacher = portal.user("sl-prof")
    sname, stoken, _student = portal.user("sl-stud")
    ws = f"sl-{uuid.uuid4().hex[:8]}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Limits"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    sign_in(page, portal.url, ttoken)
    page.goto(f"{portal.url}/w/{ws}/sessions")
    limits = page.locator("#session-limits")
    expect(limits).to_contain_text("Idle sessions stop after 60 min")  # the runner's defaults
    expect(limits).to_contain_text("1 session per student and environment.")
    expect(page.get_by_label("Stop idle sessions after (minutes)")).to_have_value("60")
    page.get_by_label("Stop idle sessions after (minutes)").fill("90")
    page.get_by_label("Sessions per student and environment").fill("2")
    page.get_by_label("Network inside sessions").select_option("none")
    expect(limits).to_contain_text("Only its owner can open a session.")
    page.get_by_label("Instructors and admins may open students' sessions").check()
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#flash")).to_contain_text("Running sessions follow the new idle limit at once")
    expect(limits).to_contain_text("Idle sessions stop after 90 min")
    expect(limits).to_contain_text("2 sessions per student and environment. No network inside a session")
    expect(limits).to_contain_text("Instructors and admins of the workspace may open a student's session")
    assert teacher.get(f"/workspaces/{ws}/session-settings") == {
        "idle_timeout_seconds": 5400, "max_per_environment": 2, "network": "none", "instructors_may_open": True}
    check_page(page, errors, f"{size}-sessions-limits-instructor")

    page.context.clear_cookies()
    sign_in(page, portal.url, stoken)
    page.goto(f"{portal.url}/w/{ws}/sessions")
    expect(page.locator("#session-limits")).to_contain_text("Idle sessions stop after 90 min")
    expect(page.locator("#session-settings-form")).to_be_hidden()
    check_page(page, errors, f"{size}-sessions-limits-student")
