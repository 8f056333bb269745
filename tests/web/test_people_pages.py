"""The people pages in Chromium at a phone's size (390x844) and a laptop's (1366x768): a platform admin's
users page (disable, enable, make admin) and a workspace's people page (role changed, member removed, a
class list previewed then added). Each page must not scroll sideways, log a script error or stay on
"Loading…" (the checks of test_layout.py); screenshots go to tests/web/screenshots/layout-*.png."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from . import test_layout
from .conftest import Portal
from .test_layout import check_page, sign_in

sized = test_layout.sized  # the fixture of the two screen sizes


def test_the_users_page_disables_enables_and_promotes(portal: Portal, sized) -> None:
    page, errors, size = sized
    name, token, person = portal.user("pp-user")
    sign_in(page, portal.url, portal.platform.admin_token())
    page.goto(portal.url + "/admin/users")
    check_page(page, errors, f"{size}-admin-users")
    row = page.locator("#users tbody tr", has_text=name)
    expect(row).to_contain_text("API token")
    row.get_by_role("button", name=f"Disable {name}").click()
    expect(row.get_by_role("button", name=f"Enable {name}")).to_be_visible()
    expect(row).to_contain_text("disabled")
    accounts = {u["username"]: u for u in portal.admin.get("/users/accounts")["items"]}
    assert accounts[name]["disabled"] is True
    r = person.response("GET", "/me", expect=(401,))
    assert r.status_code == 401
    row.get_by_role("button", name=f"Enable {name}").click()
    expect(row.get_by_role("button", name=f"Disable {name}")).to_be_visible()
    assert person.get("/me")["username"] == name
    row.get_by_role("button", name=f"Make admin {name}").click()
    expect(row.get_by_role("button", name=f"Unmake admin {name}")).to_be_visible()
    assert person.get("/me")["platform_admin"] is True
    row.get_by_role("button", name=f"Unmake admin {name}").click()
    expect(row.get_by_role("button", name=f"Make admin {name}")).to_be_visible()
    check_page(page, errors, f"{size}-admin-users-after")


def test_the_people_page_changes_roles_removes_and_adds_a_class_list(portal: Portal, sized) -> None:
    page, errors, size = sized
    iname, itoken, teacher = portal.user("pp-prof")
    sname, _, _ = portal.user("pp-stud")
    known, _, _ = portal.user("pp-known")
    ws = f"people-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "People"})
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    sign_in(page, portal.url, itoken)
    page.goto(f"{portal.url}/w/{ws}")
    page.get_by_role("link", name=re.compile("Manage people")).click()
    page.wait_for_url(f"**/w/{ws}/people")
    check_page(page, errors, f"{size}-people")
    row = page.locator("#people tbody tr", has_text=sname)
    expect(row).to_contain_text("added by hand")

    page.get_by_label(f"Role of {sname}").select_option("instructor")
    expect(page.locator("#flash")).to_contain_text(f"{sname} is now instructor")
    assert {m["username"]: m["role"] for m in teacher.get(f"/workspaces/{ws}/members")["items"]}[sname] == "instructor"

    csv = f"username,email,name,role\n{known},,Known Person,student\n,nina@example.edu,Nina,\n,bad,Bad,student\n"
    page.get_by_label("Class list (.csv)").set_input_files(
        {"name": "class.csv", "mimeType": "text/csv", "buffer": csv.encode()})
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#csv-summary")).to_contain_text("Preview: 1 would be added, 1 would get an invite link")
    expect(page.locator("#csv-result")).to_contain_text("not an e-mail address")
    assert known not in {m["username"] for m in teacher.get(f"/workspaces/{ws}/members")["items"]}
    check_page(page, errors, f"{size}-people-preview")
    page.get_by_role("button", name="Add everyone listed").click()
    expect(page.locator("#csv-summary")).to_contain_text("1 were added, 1 got an invite link")
    expect(page.locator("#csv-result code")).to_contain_text("/invite/rin_")
    expect(page.locator("#people tbody tr", has_text=known)).to_contain_text("class list")
    check_page(page, errors, f"{size}-people-added")

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Remove {known}").click()
    expect(page.locator("#people tbody tr", has_text=known)).to_have_count(0)
    assert known not in {m["username"] for m in teacher.get(f"/workspaces/{ws}/members")["items"]}
    assert not errors, errors


def test_the_workspace_page_deletes_an_unused_dataset_and_names_the_version_using_another(
        portal: Portal, sized, base_image: str) -> None:
    page, errors, size = sized
    _, itoken, teacher = portal.user("pp-clean")
    ws = f"clean-{int(time.time() * 1000) % 10**8}"
    teacher.post("/workspaces", json={"slug": ws, "title": "Clean-up"})
    used = teacher.post(f"/workspaces/{ws}/datasets", params={"name": "used.csv"}, content=b"u\n1\n")
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "old.csv"}, content=b"o\n1\n")
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": base_image, "python": {"version": "3.11", "requirements": []},
        "datasets": [{"digest": used["digest"], "mount": "/data/used.csv"}]}})
    sign_in(page, portal.url, itoken)
    page.goto(f"{portal.url}/w/{ws}")
    check_page(page, errors, f"{size}-workspace-datasets")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete dataset old.csv").click()
    expect(page.locator("#flash")).to_contain_text("Dataset old.csv deleted.")
    expect(page.locator("#datasets tbody tr", has_text="old.csv")).to_have_count(0)
    assert [d["name"] for d in teacher.get(f"/workspaces/{ws}/datasets")["items"]] == ["used.csv"]
    page.get_by_role("button", name="Delete dataset used.csv").click()
    expect(page.locator("#flash")).to_contain_text(f"{ws}/py/v1")
    expect(page.locator("#datasets tbody tr", has_text="used.csv")).to_have_count(1)
    check_page(page, errors, f"{size}-workspace-dataset-in-use")
