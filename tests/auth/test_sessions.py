"""Password sign-in and server-side browser sessions against the real platform: the cookie holds a
random session id (never the password or an API token), sign-out and an admin revoke it for good, a
password change ends the other sessions, failures are throttled per account and per address, and every
attempt is in the accounts activity log."""

from __future__ import annotations

import re
import sqlite3

import httpx

from .authkit import PASSWORD, csrf_of, from_address, sign_in

CSRF = "X-Reprolab-CSRF"


def _cookie(r: httpx.Response) -> str:
    return next(h for h in r.headers.get_list("set-cookie") if h.startswith("reprolab_session="))


def test_password_sign_in_starts_a_session_the_api_and_pages_accept(accounts) -> None:
    name, token = accounts.user("pw")
    with accounts.browser() as browser:
        r = sign_in(browser, name, next="/w/x")
        assert r.status_code == 303 and r.headers["location"] == "/w/x"
        cookie = _cookie(r)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        value = browser.cookies["reprolab_session"]
        assert value.startswith("rls_") and token not in cookie and PASSWORD not in cookie
        assert browser.get("/api/v1/me").json()["username"] == name
        assert re.search(rf'Signed in as</span> <a class="account" href="/me/account"[^>]*><strong>{name}</strong>',
                         browser.get("/").text)
        # a change made with the cookie still needs the CSRF header
        assert browser.put("/api/v1/me/password", json={"current_password": "x", "new_password": "y"}
                           ).status_code == 403
        sessions = browser.get("/api/v1/me/sessions").json()["items"]
        assert [s["method"] for s in sessions if s["current"]] == ["password"]
    # only the session id's hash is stored, and the password only as an argon2id hash
    db = accounts.platform.data_dir / "gateway.db"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert value not in dump and PASSWORD not in dump and "$argon2id$" in dump


def test_signing_in_again_in_a_browser_ends_its_previous_session(accounts) -> None:
    first, _ = accounts.user("again")
    second, _ = accounts.user("other")
    with accounts.browser() as browser:
        sign_in(browser, first)
        before = browser.cookies["reprolab_session"]
        sign_in(browser, second)
        assert browser.get("/api/v1/me").json()["username"] == second
    r = httpx.get(f"{accounts.url}/api/v1/me", cookies={"reprolab_session": before})
    assert r.status_code == 401


def test_sign_out_revokes_the_session_server_side(accounts) -> None:
    name, _ = accounts.user("out")
    with accounts.browser() as browser:
        sign_in(browser, name)
        stolen = browser.cookies["reprolab_session"]  # a copy, as a thief would keep it
        r = browser.post("/logout", data={"csrf": browser.cookies["reprolab_csrf"]})
        assert r.status_code == 303 and "reprolab_session" not in browser.cookies
    r = httpx.get(f"{accounts.url}/api/v1/me", cookies={"reprolab_session": stolen})
    assert r.status_code == 401 and "session has ended" in r.json()["detail"]
    r = httpx.get(f"{accounts.url}/api/v1/me", cookies={"reprolab_session": "rpl_" + "x" * 43})
    assert r.status_code == 401 and "malformed session cookie" in r.json()["detail"]
    signed_out = accounts.activity(type="account.signed_out", match=lambda e: e["actor_name"] == name)
    assert signed_out and signed_out[0]["event"]["details"]["method"] == "password"


def test_an_admin_ends_every_session_of_a_user_and_tokens_keep_working(accounts) -> None:
    name, token = accounts.user("ended")
    one, two = accounts.browser(), accounts.browser()
    with one, two:
        sign_in(one, name)
        sign_in(two, name)
        assert one.get("/api/v1/me").status_code == 200 and two.get("/api/v1/me").status_code == 200
        r = httpx.delete(f"{accounts.url}/api/v1/users/{name}/sessions",
                         headers={"Authorization": f"Bearer {accounts.platform.admin_token()}"})
        assert r.status_code == 200 and r.json() == {"ended": 2}
        assert one.get("/api/v1/me").status_code == 401 and two.get("/api/v1/me").status_code == 401
        assert one.get("/w/x").status_code == 303  # pages send the browser to sign in again
    # API tokens are for scripts and are not browser sessions
    r = httpx.get(f"{accounts.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    # only an admin may do it
    r = httpx.delete(f"{accounts.url}/api/v1/users/{name}/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    ended = accounts.activity(type="account.sessions_ended", match=lambda e: name in e["canonical_json"])
    assert ended[0]["actor_name"] == "admin" and ended[0]["event"]["details"]["count"] == 2


def test_password_change_needs_the_current_one_and_ends_the_other_sessions(accounts) -> None:
    name, _ = accounts.user("chg")
    here, elsewhere = accounts.browser(), accounts.browser()
    with here, elsewhere:
        sign_in(here, name)
        sign_in(elsewhere, name)
        csrf = {CSRF: here.cookies["reprolab_csrf"]}
        r = here.put("/api/v1/me/password", json={"current_password": "wrong-password", "new_password": "x" * 12},
                     headers=csrf)
        assert r.status_code == 403 and "current password is wrong" in r.json()["detail"]
        r = here.put("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"},
                     headers=csrf)
        assert r.status_code == 422 and "at least 10 characters" in r.json()["detail"]
        r = here.put("/api/v1/me/password", json={"current_password": PASSWORD,
                                                  "new_password": "a new long passphrase"}, headers=csrf)
        assert r.status_code == 204, r.text
        assert here.get("/api/v1/me").status_code == 200  # this browser stays signed in
        assert elsewhere.get("/api/v1/me").status_code == 401
    with accounts.browser() as browser:
        assert sign_in(browser, name).status_code == 401
        assert sign_in(browser, name, "a new long passphrase").status_code == 303


def test_token_sign_in_also_makes_a_session_not_a_token_cookie(accounts) -> None:
    name, token = accounts.user("tok", password=None)
    with accounts.browser() as browser:
        r = browser.post("/login", data={"token": token, "csrf": csrf_of(browser)})
        assert r.status_code == 303 and token not in _cookie(r)
        assert browser.get("/api/v1/me").json()["username"] == name
        # the account has no password: password sign-in is refused like any wrong password
    with accounts.browser() as browser:
        r = sign_in(browser, name, "anything at all")
        assert r.status_code == 401 and "wrong username or password" in r.text


def test_failed_sign_ins_lock_the_account_then_the_address_and_are_logged(accounts) -> None:
    name, _ = accounts.user("lock")
    with accounts.browser() as browser:
        for _ in range(5):
            r = sign_in(browser, name, "not the password")
            assert r.status_code == 401 and "wrong username or password" in r.text
        # locked: even the right password is refused, with the time to wait
        r = sign_in(browser, name)
        assert r.status_code == 429 and "try again in" in r.text and int(r.headers["retry-after"]) > 0
    # an unknown name answers exactly like a wrong password
    with accounts.browser() as browser:
        r = sign_in(browser, f"nobody-{name}", "whatever it is")
        assert r.status_code == 401 and "wrong username or password" in r.text
    # one address trying many accounts: refused after 20 failures, whatever the account
    address = from_address()
    with accounts.browser(address) as browser:
        for i in range(20):
            assert sign_in(browser, f"{name}-guess{i}", "guess guess").status_code == 401
        other, _ = accounts.user("victim")
        r = sign_in(browser, other)
        assert r.status_code == 429 and "from your address" in r.text
    with accounts.browser() as browser:  # another address is not affected
        assert sign_in(browser, other).status_code == 303
    failed = accounts.activity(type="account.signin_failed", want=6, match=lambda e: e["actor_name"] == name)
    reasons = [e["event"]["details"]["reason"] for e in failed]
    assert reasons.count("wrong password") == 5 and "account locked" in reasons
    # a name that is no account is not written down (people type passwords into that field)
    assert not accounts.activity(type="account.signin_failed", want=1, timeout=0,
                                 match=lambda e: f"nobody-{name}" in e["canonical_json"])
    signed_in = accounts.activity(type="account.signed_in", match=lambda e: e["actor_name"] == other)
    assert signed_in[0]["event"]["details"]["method"] == "password"
    assert signed_in[0]["event"]["details"]["address"].startswith("10.")


def test_users_see_only_their_own_account_activity(accounts) -> None:
    name, token = accounts.user("own")
    with accounts.browser() as browser:
        sign_in(browser, name)
    mine = accounts.activity(token=token, want=1)
    assert mine and {e["actor_name"] for e in mine} == {name}
