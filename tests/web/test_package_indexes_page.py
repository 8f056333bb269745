"""The package-index page in Chromium at a phone's size and a laptop's: an instructor adds a private index
with a password, sees it listed (the password is never shown back, in the page or the API) and deletes it.
The checks of test_layout.py apply (no sideways scroll, no script error, nothing left "Loading…");
screenshots go to tests/web/screenshots/layout-*.png."""

from __future__ import annotations

import time
import uuid

from playwright.sync_api import expect

from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in

sized = test_layout.sized  # the fixture of the two screen sizes


def test_the_package_index_page_saves_lists_and_deletes(portal: Portal, sized) -> None:
    page, errors, size = sized
    _name, token, teacher = portal.user("pi-prof")
    ws = f"pidx-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Indexes"})
    secret = "pi-page-" + uuid.uuid4().hex
    sign_in(page, portal.url, token)
    page.goto(f"{portal.url}/w/{ws}")
    page.get_by_role("link", name="Indexes").click()
    page.wait_for_url(f"**/w/{ws}/package-indexes")
    check_page(page, errors, f"{size}-package-indexes")
    expect(page.locator("#indexes tbody")).to_contain_text("No indexes")
    page.get_by_label("Name", exact=True).fill("corp")
    page.get_by_label("URL", exact=True).fill("https://pkgs.example.org/simple")
    page.get_by_label("User name").fill("ci")
    page.get_by_label("Password", exact=True).fill(secret)
    page.get_by_role("button", name="Save index").click()
    row = page.locator("#indexes tbody tr", has_text="corp")
    expect(row).to_contain_text("user ci")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    assert secret not in page.content()
    listed = teacher.get(f"/workspaces/{ws}/package-indexes")["items"]
    assert [(i["name"], i["has_secret"]) for i in listed] == [("corp", True)] and secret not in str(listed)
    check_page(page, errors, f"{size}-package-indexes-saved")
    row.get_by_role("button", name="Delete index corp").click()
    expect(page.locator("#indexes tbody")).to_contain_text("No indexes")
    assert teacher.get(f"/workspaces/{ws}/package-indexes")["items"] == []
