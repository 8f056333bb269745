"""The launch in a real browser (Debian's chromium, as tests/web), inside an iframe of the FAKE LMS's course
page. The LMS is served as http://localhost:<port> and the gateway as http://127.0.0.1:<port>: two sites, so
the tool runs in a third-party frame, where the browser sends only ``SameSite=None; Secure`` cookies and the
gateway's pages must allow the LMS as a frame ancestor.

Two browsers: one whose profile allows third-party cookies, where the launch signs the instructor in inside
the frame and the workspace then opens signed in in its own tab; and one with this Chromium's default
(third-party cookies blocked), where the frame still works through the ``Partitioned`` (CHIPS) copies of
the cookies, kept under the LMS's site."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from .conftest import LtiLab
from .fake_lms import INSTRUCTOR, FakeLms

CHROMIUM = os.environ.get("REPROLAB_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


@pytest.fixture(scope="module")
def other_site_lms(lti_lab: LtiLab) -> Iterator[FakeLms]:
    lms = FakeLms(tool_url=lti_lab.url, host="localhost", client_id="reprolab-iframe").start_server()
    lti_lab.admin.post("/lti/platforms", json={**lms.registration(), "title": "Fake LMS (other site)"})
    yield lms
    lms.stop()


def _open_course(page: Page, lms: FakeLms, who: str, course) -> None:
    page.set_default_timeout(20_000)
    page.goto(lms.start_url(lms.prepare(course, who)))


def test_launch_inside_the_lms_iframe(lti_lab: LtiLab, other_site_lms: FakeLms, tmp_path: Path) -> None:
    lms = other_site_lms
    c = lms.course(f"course-{uuid.uuid4().hex[:8]}", "Frames 101", "Frames")
    teacher = f"user-{uuid.uuid4().hex[:10]}"
    lms.enrol(c, teacher, "Frame Teacher", [INSTRUCTOR])
    with sync_playwright() as p:
        # a profile that allows third-party cookies (Chrome's setting "Allow third-party cookies"; this
        # Chromium blocks them by default): the frame's SameSite=None; Secure cookies are kept and sent
        profile = tmp_path / "profile"
        (profile / "Default").mkdir(parents=True)
        (profile / "Default" / "Preferences").write_text(json.dumps({"profile": {"cookie_controls_mode": 0}}))
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            _open_course(page, lms, teacher, c)
            frame = page.frame_locator("#tool")
            launched = frame.locator("#lti-launched")
            try:
                launched.wait_for()
            except Exception:
                inner = page.frames[-1]
                raise AssertionError(f"the frame shows {inner.url}: {inner.content()[:1500]}") from None
            assert launched.get_attribute("data-role") == "instructor"
            ws = launched.get_attribute("data-workspace")
            assert ws and ws.startswith("frames-101-")
            # the workspace opens in a new tab, signed in by the session the frame got
            with context.expect_page() as opened:
                frame.get_by_role("link", name="Open the workspace").click()
            tab = opened.value
            tab.wait_for_load_state()
            assert tab.url == f"{lti_lab.url}/w/{ws}"
            assert "Signed in as" in tab.content()
        finally:
            context.close()

        # the default: third-party cookies blocked; the partitioned cookies still bind the launch to this
        # browser and sign the instructor in inside the frame
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            _open_course(page, lms, teacher, c)
            launched = page.frame_locator("#tool").locator("#lti-launched")
            try:
                launched.wait_for()
            except Exception:
                inner = page.frames[-1]
                raise AssertionError(f"the frame shows {inner.url}: {inner.content()[:1500]}") from None
            assert launched.get_attribute("data-workspace") == ws
            partitioned = [ck for ck in context.cookies() if ck.get("partitionKey")]
            assert {ck["name"] for ck in partitioned} >= {"reprolab_session"}, context.cookies()
        finally:
            browser.close()
