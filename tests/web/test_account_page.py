"""The portal's account pages in a real browser: sign in with a password, change it, see the signed-in
browsers, make and revoke an API token (shown once); an instructor makes an invite link on the
workspace page, and a newcomer follows it, registers and lands in the workspace."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import expect


def _set_password(portal, name: str, password: str) -> None:
    r = httpx.put(f"{portal.url}/api/v1/users/{name}/password", json={"password": password},
                  headers={"Authorization": f"Bearer {portal.platform.admin_token()}"})
    assert r.status_code == 204, r.text


def _password_sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def test_account_page_changes_the_password_and_makes_tokens(portal, tab, shot) -> None:
    name, _, _ = portal.user("acct")
    _set_password(portal, name, "first passphrase")
    page = tab.page
    _password_sign_in(page, portal.url, name, "first passphrase")
    page.get_by_role("link", name=name, exact=True).click()  # the name in the top bar leads to the account page
    page.wait_for_url("**/me/account")
    expect(page.locator("#sessions")).to_contain_text("this browser")
    page.get_by_label("New token's name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-value")
    expect(token).to_have_text(re.compile(r"^rpl_"))
    value = token.text_content()
    assert httpx.get(f"{portal.url}/api/v1/me", headers={"Authorization": f"Bearer {value}"}).status_code == 200
    expect(page.locator("#tokens")).to_contain_text("laptop")
    page.get_by_label("Current password").fill("first passphrase")
    page.get_by_label("New password").fill("second passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#flash")).to_contain_text("Password changed")
    shot(page, "account")
    page.get_by_role("button", name="Revoke token laptop").click()
    expect(page.locator("#tokens")).to_contain_text("revoked")
    assert httpx.get(f"{portal.url}/api/v1/me", headers={"Authorization": f"Bearer {value}"}).status_code == 401
    assert not tab.errors, tab.errors


def test_an_invite_link_from_the_workspace_page_brings_a_newcomer_in(portal, tab, browser, shot) -> None:
    iname, itoken, instructor = portal.user("host")
    slug = f"invite-{uuid.uuid4().hex[:8]}"
    instructor.post("/workspaces", json={"slug": slug, "title": "Invited course"})
    _set_password(portal, iname, "host passphrase")
    page = tab.page
    _password_sign_in(page, portal.url, iname, "host passphrase")
    page.goto(f"{portal.url}/w/{slug}")
    page.get_by_label("They join as").select_option("student")
    page.get_by_label("How many people").fill("5")
    page.get_by_role("button", name="Make invite link").click()
    link = page.locator("#invite-link-value")
    expect(link).to_contain_text("/invite/rin_")
    url = link.text_content()
    # the newcomer: another browser, no account
    context = browser.new_context()
    try:
        other = context.new_page()
        other.goto(url)
        expect(other.get_by_role("heading", name=f"Join {slug}")).to_be_visible()
        newcomer = f"newbie-{uuid.uuid4().hex[:6]}"
        other.get_by_label("Username").fill(newcomer)
        other.get_by_label("Your name").fill("New Student")
        other.get_by_label("Password").fill("newcomer passphrase")
        shot(other, "invite")
        other.get_by_role("button", name="Create account and join").click()
        other.wait_for_url(f"**/w/{slug}")
        expect(other.get_by_text(f"Signed in as {newcomer}")).to_be_visible()
    finally:
        context.close()
    roles = {m["username"]: m["role"] for m in instructor.get(f"/workspaces/{slug}/members")["items"]}
    assert roles[newcomer] == "student"
    assert not tab.errors, tab.errors
