"""Every portal page at a phone's size (390x844) and a laptop's (1366x768), for an instructor and a
student, against the whole platform with a real build and a real run.

A page fails if it scrolls sideways, if a script error reaches the console, or if something still says
"Loading…" once the page's script has finished (an error must replace the placeholder, not leave it
spinning). Screenshots of every page at both sizes go to tests/web/screenshots/; with
REPROLAB_PAGE_SHOTS=docs/img/pages also as small JPEGs there, to look at and keep:
``REPROLAB_PAGE_SHOTS=docs/img/pages pytest tests/web/test_layout.py -k every_page``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from .conftest import SCREENSHOTS, UNLABELLED_JS, Portal
from .test_portal import tar_gz

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
TIMEOUT = 300.0

# what is wider than the viewport (the page's widest offenders, for the failure message)
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > width + 1)
    .filter((el) => !el.closest('.log, pre, table.data'))  // these scroll inside themselves
    .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`
      + ` (${Math.round(el.getBoundingClientRect().right)}px)`);
  return { scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 6) };
}"""
# whether the top bar's items stand in one row: some horizontal line crosses every one of them (any scroll)
TOP_BAR_ONE_ROW_JS = """() => {
  const boxes = [...document.querySelectorAll('header.top .brand, header.top nav li, header.top .who')]
    .filter((el) => el.getClientRects().length).map((el) => el.getBoundingClientRect());
  return Math.max(...boxes.map((b) => b.top)) < Math.min(...boxes.map((b) => b.bottom));
}"""
STUCK_JS = """() => [...document.querySelectorAll('main *')]
  .filter((el) => el.children.length === 0 && /Loading…/.test(el.textContent) && el.getClientRects().length)
  .map((el) => el.outerHTML.slice(0, 100))"""


@dataclass
class Course:
    ws: str
    instructor: tuple[str, str]
    student: tuple[str, str]
    run_id: str  # the instructor's run: the student may not see it
    invite: str = ""  # the path of an invite link into the workspace (/invite/<token>)


def wait(client, path: str, done: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while (item := client.get(path))["status"] not in done:
        assert time.monotonic() < deadline, item
        time.sleep(1)
    return item


@pytest.fixture(scope="module")
def course(portal: Portal, base_image: str) -> Course:
    """A workspace with a dataset, a built environment, an assignment and a finished run, made through the
    API (the pages are what is tested here)."""
    iname, itoken, teacher = portal.user("layout-prof")
    sname, stoken, _ = portal.user("layout-stud")
    ws = f"layout-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "A course with a rather long title, as courses have"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                 content=b"id,species\n0,setosa\n")
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "a-dataset-with-a-long-name-for-the-phone.csv"},
                 content=b"id,x\n0,1\n")
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": []}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    assert wait(teacher, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    code = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"main.py": "print('hello')\n"}),
                           expect=(201,))
    teacher.post(f"/workspaces/{ws}/assignments", json={
        "name": "iris", "title": "Iris species", "environment": "py", "evaluation_code": code["digest"],
        "labels": "labels.csv", "metric": "accuracy"})
    run = teacher.post(f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["python3", "main.py"]}, expect=(201, 202))
    wait(teacher, f"/runs/{run['id']}", ("succeeded", "failed", "timed_out", "cancelled"))
    invite = teacher.post(f"/workspaces/{ws}/invites", json={"role": "student"}, expect=(201,))["url"]
    return Course(ws, (iname, itoken), (sname, stoken), run["id"], "/invite/" + invite.rsplit("/invite/", 1)[1])


def pages(c: Course, role: str) -> list[tuple[str, str]]:
    """Every page template a signed-in person reaches (the model page: test_models_page, which deploys one)."""
    ws = c.ws
    if role == "admin":  # a workspace's page too: the widest top bar (the workspace's links and Users)
        return [("users", "/admin/users"), ("workspace", f"/w/{ws}")]
    common = [("dashboard", "/"), ("workspace", f"/w/{ws}"), ("environment", f"/w/{ws}/env/py"),
              ("runs", f"/w/{ws}/runs"), ("run", f"/w/{ws}/runs/{c.run_id}"),
              ("assignment", f"/w/{ws}/assignments/iris"), ("activity", f"/w/{ws}/activity"),
              ("sessions", f"/w/{ws}/sessions"), ("models", f"/w/{ws}/models"),
              ("package-indexes", f"/w/{ws}/package-indexes"), ("registries", f"/w/{ws}/registries"),
              ("credentials", f"/me/credentials?workspace={ws}"), ("account", "/me/account")]
    if role == "instructor":
        common.insert(3, ("new-environment", f"/w/{ws}/new-environment"))
        common.append(("people", f"/w/{ws}/people"))
    return common


def signed_out_pages(c: Course) -> list[tuple[str, str]]:
    """The pages of people not signed in (besides the sign-in form): an invite, registration (off here: the
    page says so), a password reset link that does not work."""
    return [("invite", c.invite), ("register", "/register"), ("reset", "/reset/rst_not-a-real-link")]


@pytest.fixture(params=[pytest.param(PHONE, id="phone"), pytest.param(LAPTOP, id="laptop")])
def sized(request: pytest.FixtureRequest, browser: Browser, portal: Portal) -> Iterator[tuple[Page, list[str], str]]:
    context = browser.new_context(viewport=request.param, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # a 404 the page expects (another user's run) is logged by the browser as a failed resource; not a script error
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text
            else None)
    yield page, errors, "phone" if request.param is PHONE else "laptop"
    context.close()


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()


def check_page(page: Page, errors: list[str], label: str, keep: bool = False) -> Path:
    """Fails on what the module's docstring says; ``keep``: also the small JPEG for docs/img/pages."""
    page.wait_for_selector("body[data-ready]", state="attached")
    try:
        # Quiet network is only a hint that the page has settled: under a loaded CI machine one slow request
        # kept it from happening for 20 s (the page was complete). What fails the check is below: an element
        # still saying it is loading, sideways scroll, an unlabelled control or a script error.
        page.wait_for_load_state("networkidle", timeout=30_000)
    except PlaywrightTimeoutError:
        pass
    try:
        page.wait_for_function(f"() => !({STUCK_JS})().length", timeout=10_000)
    except Exception:
        pass  # reported below, with what is stuck
    stuck = page.evaluate(STUCK_JS)
    assert not stuck, f"{label}: still loading: {stuck}"
    over = page.evaluate(OVERFLOW_JS)
    path = SCREENSHOTS / f"layout-{label}.png"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    if keep and (docs := os.environ.get("REPROLAB_PAGE_SHOTS")):  # small copies to look at and keep
        Path(docs).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(docs) / f"{label}.jpg"), full_page=True, type="jpeg", quality=40)
    assert over["scrollWidth"] <= over["width"], f"{label} scrolls sideways: {over}"
    if label.startswith("laptop"):
        assert page.evaluate(TOP_BAR_ONE_ROW_JS), f"{label}: the top bar wraps onto a second row"
    assert not page.evaluate(UNLABELLED_JS), label
    assert not errors, f"{label}: {errors}"
    return path


@pytest.mark.parametrize("role", ["instructor", "student", "admin"])
def test_every_page_fits_and_finishes_loading(portal: Portal, course: Course, sized, role: str) -> None:
    page, errors, size = sized
    if role == "student":
        page.goto(portal.url + "/")
        check_page(page, errors, f"{size}-login", keep=True)
        for name, path in signed_out_pages(course):
            page.goto(portal.url + path)
            check_page(page, errors, f"{size}-signed-out-{name}", keep=True)
    token = {"instructor": course.instructor[1], "student": course.student[1],
             "admin": portal.platform.admin_token()}[role]
    sign_in(page, portal.url, token)
    for name, path in pages(course, role):
        page.goto(portal.url + path)
        check_page(page, errors, f"{size}-{role}-{name}", keep=True)
    if role == "student":
        # the instructor's run is not theirs: the page says so instead of spinning
        page.goto(f"{portal.url}/w/{course.ws}/runs/{course.run_id}")
        page.wait_for_selector("body[data-ready]", state="attached")
        expect(page.locator("#run-details")).to_contain_text(re.compile("Could not load this: no run"))


def test_the_credentials_form_offers_only_vendors_that_take_credentials(portal: Portal, course: Course, sized) -> None:
    """Kubernetes runs use the platform's own cluster account: choosing it on this form threw a script error
    and left the AWS fields on screen, for a vendor the API refuses. Each vendor shows its own fields."""
    page, errors, size = sized
    sign_in(page, portal.url, course.student[1])
    page.goto(f"{portal.url}/me/credentials?workspace={course.ws}")
    page.wait_for_selector("body[data-ready]", state="attached")
    vendors = page.get_by_label("Vendor").locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert vendors == ["aws", "azure", "openstack"]
    expect(page.get_by_label("Access key ID")).to_be_visible()
    page.get_by_label("Vendor").select_option("azure")
    expect(page.get_by_label("Client secret")).to_be_visible()
    expect(page.get_by_label("Access key ID")).to_have_count(0)
    page.get_by_label("Vendor").select_option("openstack")
    expect(page.get_by_label("Auth URL")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Kubernetes runs need no credentials of yours")
    check_page(page, errors, f"{size}-credentials-vendor")


def test_a_builds_status_and_log_survive_a_reload_and_each_version_has_its_build_history(
        portal: Portal, course: Course, tab) -> None:
    """The environment page lost its build's status and log on reload ("Status: none") and kept no history."""
    page = tab.page
    _, itoken = course.instructor
    _, stoken = course.student
    teacher, student = portal.admin.as_user(itoken), portal.admin.as_user(stoken)
    builds = teacher.get(f"/workspaces/{course.ws}/environments/py/builds")["items"]
    assert [(b["version"], b["status"], b["requested_by"]) for b in builds] == [(1, "succeeded", course.instructor[0])]
    assert student.get(f"/workspaces/{course.ws}/environments/py/builds", params={"version": 1})["items"] == builds
    assert teacher.get(f"/workspaces/{course.ws}/environments/py/builds", params={"version": 2})["items"] == []
    _, _, stranger = portal.user("layout-stranger")
    r = stranger.response("GET", f"/workspaces/{course.ws}/environments/py/builds", expect=(404,))
    assert r.headers["content-type"].startswith("application/problem+json")

    sign_in(page, portal.url, itoken)
    page.goto(f"{portal.url}/w/{course.ws}/env/py")
    expect(page.locator("#build-status")).to_contain_text("succeeded")
    expect(page.locator("#build-which")).to_contain_text(f"Build of v1 requested by {course.instructor[0]}")
    expect(page.locator("#build-log")).to_contain_text("STEP 1/")
    expect(page.locator("#builds tbody tr")).to_have_count(1)
    page.reload()
    expect(page.locator("#build-status")).to_contain_text("succeeded")
    expect(page.locator("#build-log")).to_contain_text("STEP 1/")
    page.locator("#build-log").evaluate("(pre) => { pre.textContent = ''; }")
    page.get_by_role("button", name=re.compile("Show the log of the build of v1")).click()
    expect(page.locator("#build-log")).to_contain_text("STEP 1/")
    assert not tab.errors, tab.errors


def test_the_run_form_defaults_to_the_students_own_built_version_and_offers_enabled_targets_only(
        portal: Portal, course: Course, tab) -> None:
    """The run form picked the course's environment at its latest version (an unbuilt v2 blocked running the
    built v1, with an error quoting an API path) and offered cloud targets this platform has not enabled."""
    page = tab.page
    sname, stoken = course.student
    student = portal.admin.as_user(stoken)
    fork = f"py-{sname}"[:63]
    student.post(f"/workspaces/{course.ws}/environments/py/fork", json={"name": fork})
    build = student.post(f"/workspaces/{course.ws}/environments/{fork}/versions/1/builds", expect=(202,))
    assert wait(student, f"/builds/{build['id']}", ("succeeded", "failed"))["status"] == "succeeded"
    spec = student.get(f"/workspaces/{course.ws}/environments/{fork}/versions/1")["spec"]
    student.post(f"/workspaces/{course.ws}/environments/{fork}/versions", json={"spec": {**spec, "apt": ["make"]}})
    assert [t["name"] for t in student.get("/targets")["items"]] == ["local"]

    sign_in(page, portal.url, stoken)
    page.goto(f"{portal.url}/w/{course.ws}/runs")
    page.wait_for_selector("body[data-ready]", state="attached")
    expect(page.get_by_label("Environment", exact=True)).to_have_value(fork)
    expect(page.get_by_label("Version", exact=True)).to_have_value("1")  # v2 is not built
    versions = page.get_by_label("Version", exact=True).locator("option").all_inner_texts()
    assert versions == ["v1"]
    targets = page.get_by_label("Target").locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert targets == ["local"]
    page.get_by_label("Code archive (.tar.gz or .zip)").set_input_files(
        {"name": "code.tar.gz", "mimeType": "application/gzip", "buffer": tar_gz({"main.py": "print('hi')\n"})})
    page.get_by_label("Command").fill("python main.py")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(rf".*/w/{course.ws}/runs/[^/]+$"))
    run = student.get(f"/runs/{page.url.rsplit('/', 1)[1]}")
    assert (run["environment"], run["version"]) == (fork, 1)
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=TIMEOUT * 1000)
    assert not tab.errors, tab.errors


def test_the_activity_list_says_what_each_entry_is_about_not_raw_ids(portal: Portal, course: Course, tab) -> None:
    page = tab.page
    sign_in(page, portal.url, course.instructor[1])
    subjects = page.locator("#activity tbody tr td:nth-child(5)")
    # a build that joined an identical lock's build (the suite shares its cache) is named by its environment
    wanted = {f"member {course.student[0]} (student)", "dataset labels.csv", "py v1",
              f"run {course.run_id[:8]} of py v1"}
    # the log is written by the audit service from the bus, after the API calls return: a busy machine
    # may show the page before the last events are in, so look again (as a person would reload)
    deadline = time.monotonic() + 90
    while True:
        page.goto(f"{portal.url}/w/{course.ws}/activity")
        expect(subjects.first).to_have_text(f"workspace {course.ws}")
        texts = subjects.all_inner_texts()
        builds = [t for t in texts if t.startswith("build of ")]
        if (wanted <= set(texts) and builds) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    assert f"member {course.student[0]} (student)" in texts
    assert {"dataset labels.csv", "py v1"} <= set(texts), texts
    assert builds and all(re.fullmatch(r"build of [a-z0-9-]+( v\d+)?", t) for t in builds), texts
    assert f"run {course.run_id[:8]} of py v1" in texts
    assert not [t for t in texts if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}|sha256:", t)], texts
    page.get_by_role("link", name=f"run {course.run_id[:8]} of py v1").first.click()
    page.wait_for_url(f"**/w/{course.ws}/runs/{course.run_id}")
    assert not tab.errors, tab.errors


def test_instructor_pages_speak_plainly_with_podman_and_docker_instructions(portal: Portal, course: Course,
                                                                              tab) -> None:
    page = tab.page
    teacher = portal.admin.as_user(course.instructor[1])
    v1 = teacher.get(f"/workspaces/{course.ws}/environments/py/versions/1")
    exact = f"{v1['image_ref'].rsplit(':', 1)[0]}@{v1['image_digest']}"
    sign_in(page, portal.url, course.instructor[1])
    for path in (f"/w/{course.ws}", f"/w/{course.ws}/env/py", f"/w/{course.ws}/new-environment"):
        page.goto(portal.url + path)
        page.wait_for_selector("body[data-ready]", state="attached")
        visible = page.locator("main").inner_text()
        assert "OCI" not in visible and "Docker Engine" not in visible, (path, visible)
    page.goto(f"{portal.url}/w/{course.ws}/env/py")
    expect(page.locator("#pull")).to_contain_text("saved an exact copy of the environment")
    host, who = exact.split("/", 1)[0], course.instructor[0]
    expect(page.locator("#pull-cmd")).to_have_text(f"podman login --tls-verify=false {host} -u {who}\n"
                                                   f"podman pull --tls-verify=false {exact}")
    expect(page.locator("#pull-docker")).to_have_text(f"docker login {host} -u {who}\ndocker pull {exact}")
    expect(page.locator("#pull-ref2")).to_be_hidden()  # the technical detail is one click away
    page.get_by_text("Technical details").click()
    expect(page.locator("#pull-ref2")).to_have_text(exact)
    assert not tab.errors, tab.errors
