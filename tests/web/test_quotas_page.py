"""The workspace page's Quotas section in Chromium at a phone's size (390x844) and a laptop's (1366x768): an
instructor reads the usage against the limits in words and changes them with the form (the values reach the
API); a student reads them without the form, on the workspace page and on the run form. Each page must not
scroll sideways, log a script error or stay on "Loading…" (test_layout's checks)."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in

sized = test_layout.sized  # the fixture of the two screen sizes


def test_instructors_change_quotas_and_students_read_them(portal: Portal, sized) -> None:
    page, errors, size = sized
    _, itoken, teacher = portal.user("qp-prof")
    sname, stoken, _ = portal.user("qp-stud")
    ws = f"quotas-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Quotas"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "d.csv"}, content=b"x" * 2048)

    sign_in(page, portal.url, itoken)
    page.goto(f"{portal.url}/w/{ws}")
    text = page.locator("#quota-text")
    expect(text).to_contain_text("No limit on runs at once: 0 going now (0 runs, 0 sessions, 0 model servers).")
    expect(text).to_contain_text("No storage limit: 2.0 KiB kept (datasets 2.0 KiB, run outputs 0 B).")
    meter = page.locator("#quota-storage-meter")
    expect(meter).to_be_hidden()  # no limit: no bar that would read as full
    check_page(page, errors, f"{size}-quotas")
    page.get_by_label("Runs, sessions and model servers at once (0: no limit)").fill("3")
    page.get_by_label("Runs and sessions at once per member (0: no limit)").fill("1")
    page.get_by_label("Storage in GiB (0: no limit)").fill("1.5")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#flash")).to_contain_text("Limits saved")
    expect(text).to_contain_text("At most 3 runs, sessions and model servers at once: 0 going now")
    expect(text).to_contain_text("Each member may have 1 runs and sessions going at once; you have 0.")
    expect(text).to_contain_text("Storage: 2.0 KiB used of 1.5 GiB (datasets 2.0 KiB, run outputs 0 B).")
    expect(meter).to_be_visible()
    assert meter.evaluate("m => [m.value, m.max]") == [2048, 3 * 2**29]
    assert teacher.get(f"/workspaces/{ws}/quotas")["limits"] == {
        "max_concurrent_runs": 3, "max_concurrent_runs_per_member": 1, "max_storage_bytes": 3 * 2**29}
    check_page(page, errors, f"{size}-quotas-saved")

    page.context.clear_cookies()
    sign_in(page, portal.url, stoken)
    page.goto(f"{portal.url}/w/{ws}")
    expect(page.locator("#quota-text")).to_contain_text("At most 3 runs")
    expect(page.locator("#quota-form")).to_be_hidden()
    check_page(page, errors, f"{size}-quotas-student")
    page.goto(f"{portal.url}/w/{ws}/runs")
    expect(page.locator("#run-quota")).to_contain_text("Limits of this workspace: At most 3 runs")
    check_page(page, errors, f"{size}-quotas-run-form")
