"""Invite links and admin-issued reset links against the real platform (gateway, registry, audit): a
new person registers through an invite and joins with its role, a signed-in person joins, links are
refused once used up, expired or revoked, only instructors and admins make them, and every step is in
the workspace's (or the accounts) activity log without the link's secret."""

from __future__ import annotations

import time
import uuid

import httpx

from .authkit import PASSWORD, csrf_of, sign_in


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _course(accounts) -> tuple[str, str, str]:
    """A workspace owned by a new instructor: (slug, instructor name, instructor token)."""
    iname, itoken = accounts.user("teach")
    slug = f"inv-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{accounts.url}/api/v1/workspaces", json={"slug": slug, "title": "Course"},
                   headers=_bearer(itoken))
    assert r.status_code == 201, r.text
    return slug, iname, itoken


def _members(accounts, slug: str, token: str) -> dict[str, str]:
    r = httpx.get(f"{accounts.url}/api/v1/workspaces/{slug}/members", headers=_bearer(token))
    assert r.status_code == 200, r.text
    return {m["username"]: m["role"] for m in r.json()["items"]}


def _workspace_log(accounts, slug: str, token: str, type: str, want: int) -> list[dict]:
    deadline = time.monotonic() + 15
    while True:
        r = httpx.get(f"{accounts.url}/api/v1/workspaces/{slug}/activity", params={"type": type},
                      headers=_bearer(token))
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        if len(items) >= want or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_an_invite_registers_a_new_person_and_signs_in_an_existing_one(accounts) -> None:
    slug, iname, itoken = _course(accounts)
    r = httpx.post(f"{accounts.url}/api/v1/workspaces/{slug}/invites",
                   json={"role": "student", "expires_in_days": 7, "max_uses": 2}, headers=_bearer(itoken))
    assert r.status_code == 201, r.text
    invite = r.json()
    url, secret = invite["url"], invite["url"].rsplit("/", 1)[1]
    assert url.startswith(accounts.url + "/invite/rin_") and invite["state"] == "open"
    newcomer = f"new-{uuid.uuid4().hex[:6]}"
    with accounts.browser() as browser:
        page = browser.get(url)
        assert page.status_code == 200 and f"Join {slug}" in page.text and "student" in page.text
        # a weak password is refused with what to fix, and nothing is created
        r = browser.post(f"/invite/{secret}/register", data={"username": newcomer, "password": "short",
                                                              "csrf": csrf_of(browser, f"/invite/{secret}")})
        assert r.status_code == 422 and "at least 10 characters" in r.text
        r = browser.post(f"/invite/{secret}/register",
                         data={"username": newcomer, "password": PASSWORD, "display_name": "New Person",
                               "email": "new@example.edu", "csrf": csrf_of(browser, f"/invite/{secret}")})
        assert r.status_code == 303 and r.headers["location"] == f"/w/{slug}"
        assert browser.get("/api/v1/me").json()["username"] == newcomer  # signed in
    # an existing user signs in and joins
    oldtimer, _ = accounts.user("old")
    with accounts.browser() as browser:
        sign_in(browser, oldtimer)
        r = browser.post(f"/invite/{secret}", data={"csrf": csrf_of(browser, f"/invite/{secret}")})
        assert r.status_code == 303 and r.headers["location"] == f"/w/{slug}"
        # joining twice is refused and does not use the link up
    assert _members(accounts, slug, itoken) == {iname: "admin", newcomer: "student", oldtimer: "student"}
    # the link is used up now
    third, third_token = accounts.user("third")
    r = httpx.post(f"{accounts.url}/api/v1/invites/{secret}/accept", headers=_bearer(third_token))
    assert r.status_code == 410 and "used up" in r.json()["detail"]
    listed = httpx.get(f"{accounts.url}/api/v1/workspaces/{slug}/invites", headers=_bearer(itoken)).json()["items"]
    assert [(i["uses"], i["state"]) for i in listed] == [(2, "used")] and "url" not in listed[0]
    accepted = _workspace_log(accounts, slug, itoken, "invite.accepted", 2)
    assert sorted(e["actor_name"] for e in accepted) == sorted([newcomer, oldtimer])
    created = _workspace_log(accounts, slug, itoken, "invite.created", 1)
    assert created[0]["actor_name"] == iname and created[0]["event"]["details"]["role"] == "student"
    assert all(secret not in e["canonical_json"] for e in accepted + created)
    registered = accounts.activity(type="account.registered", match=lambda e: e["actor_name"] == newcomer)
    assert registered[0]["event"]["details"]["method"] == "invite"
    # the link's secret travels in request paths; the gateway's access log does not keep it
    log = (accounts.platform.log_dir / "gateway.log").read_text()
    assert "/invite/rin_[redacted]" in log and secret not in log


def test_invites_are_refused_when_expired_revoked_unknown_or_not_allowed(accounts) -> None:
    slug, iname, itoken = _course(accounts)
    student, stoken = accounts.user("stud")
    create = f"{accounts.url}/api/v1/workspaces/{slug}/invites"
    # a student cannot make invites; an instructor cannot invite admins; a non-member gets 404
    r = httpx.post(create, json={"role": "student"}, headers=_bearer(itoken))
    secret = r.json()["url"].rsplit("/", 1)[1]
    assert httpx.post(f"{accounts.url}/api/v1/invites/{secret}/accept", headers=_bearer(stoken)).status_code == 200
    r = httpx.post(create, json={"role": "student"}, headers=_bearer(stoken))
    assert r.status_code == 403 and "instructor or admin" in r.json()["detail"]
    outsider, otoken = accounts.user("outsider")
    assert httpx.post(create, json={"role": "student"}, headers=_bearer(otoken)).status_code == 404
    r = httpx.post(create, json={"role": "student", "expires_in_days": 1000}, headers=_bearer(itoken))
    assert r.status_code == 422 and "at most 180" in r.json()["detail"]
    # revoked
    r = httpx.post(create, json={"role": "instructor"}, headers=_bearer(itoken))
    revoked = r.json()
    assert httpx.delete(f"{create}/{revoked['id']}", headers=_bearer(itoken)).status_code == 204
    r = httpx.post(f"{accounts.url}/api/v1/invites/{revoked['url'].rsplit('/', 1)[1]}/accept",
                   headers=_bearer(otoken))
    assert r.status_code == 410 and "revoked" in r.json()["detail"]
    # expired (a link valid for about a second)
    r = httpx.post(create, json={"role": "student", "expires_in_days": 1 / 86400}, headers=_bearer(itoken))
    expired = r.json()["url"]
    time.sleep(1.2)
    page = httpx.get(expired)
    assert page.status_code == 410 and "expired" in page.text
    # unknown
    page = httpx.get(f"{accounts.url}/invite/rin_{'x' * 43}")
    assert page.status_code == 404 and "not valid" in page.text
    assert _members(accounts, slug, itoken) == {iname: "admin", student: "student"}
    assert _workspace_log(accounts, slug, itoken, "invite.revoked", 1)[0]["actor_name"] == iname


def test_registration_by_invitation_only_refuses_the_open_form(accounts) -> None:
    page = httpx.get(f"{accounts.url}/register")
    assert page.status_code == 403 and "not open" in page.text
    with accounts.browser() as browser:
        r = browser.post("/register", data={"username": "walk-in", "password": PASSWORD, "csrf": csrf_of(browser)})
        assert r.status_code == 403
    assert httpx.get(f"{accounts.url}/api/v1/users", headers=_bearer(accounts.platform.admin_token())
                     ).json()["items"] and "walk-in" not in str(accounts.admin.get("/users"))


def test_a_reset_link_sets_a_new_password_once_and_ends_other_sessions(accounts) -> None:
    name, token = accounts.user("reset")
    admin = _bearer(accounts.platform.admin_token())
    with accounts.browser() as before:
        sign_in(before, name)
        r = httpx.post(f"{accounts.url}/api/v1/users/{name}/password-reset", headers=admin)
        assert r.status_code == 201, r.text
        url = r.json()["url"]
        secret = url.rsplit("/", 1)[1]
        assert httpx.post(f"{accounts.url}/api/v1/users/{name}/password-reset",
                          headers=_bearer(token)).status_code == 403  # admins only
        with accounts.browser() as browser:
            page = browser.get(url)
            assert page.status_code == 200 and name in page.text
            r = browser.post(f"/reset/{secret}", data={"password": "aaaaaaaaaaaa", "csrf": csrf_of(browser, url)})
            assert r.status_code == 422 and "repeat" in r.text and 'name="password"' in r.text
            r = browser.post(f"/reset/{secret}", data={"password": "reset passphrase 2", "csrf": csrf_of(browser, url)})
            assert r.status_code == 303 and browser.get("/api/v1/me").json()["username"] == name
        assert before.get("/api/v1/me").status_code == 401  # the session from before the reset ended
    page = httpx.get(url)
    assert page.status_code == 404 and "used or has expired" in page.text
    with accounts.browser() as browser:
        assert sign_in(browser, name).status_code == 401
        assert sign_in(browser, name, "reset passphrase 2").status_code == 303
    issued = accounts.activity(type="account.reset_issued", match=lambda e: name in e["canonical_json"])
    used = accounts.activity(type="account.reset_used", match=lambda e: e["actor_name"] == name)
    assert issued[0]["actor_name"] == "admin" and used
    assert all(secret not in e["canonical_json"] for e in issued + used)
    log = (accounts.platform.log_dir / "gateway.log").read_text()
    assert "/reset/rrs_[redacted]" in log and secret not in log
