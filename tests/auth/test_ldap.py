"""LDAP sign-in against a real slapd (Debian's, started by the tests with their own config and data) over
StartTLS with the certificate checked: the service account finds the person, a bind with their password
proves it, their groups map to workspace roles; wrong passwords, unknown people, empty passwords and
filter metacharacters are refused alike; an untrusted certificate or a refused service account is a
clear "directory unavailable", never a sign-in."""

from __future__ import annotations

import httpx
import pytest
from reprolab_gateway.auth.ldap import DirectoryUnavailable, lookup
from reprolab_gateway.core.config import GatewaySettings

from .authkit import LDAP_COURSE, LDAP_GROUP_ROLES, csrf_of, sign_in
from .slapd import PEOPLE, READER_DN, READER_PASSWORD, SUFFIX


@pytest.fixture(scope="module")
def ldap_course(accounts) -> str:
    r = httpx.post(f"{accounts.url}/api/v1/workspaces", json={"slug": LDAP_COURSE, "title": "LDAP course"},
                   headers={"Authorization": f"Bearer {accounts.platform.admin_token()}"})
    assert r.status_code in (201, 409), r.text
    return LDAP_COURSE


def _members(accounts, ws: str) -> dict[str, str]:
    return {m["username"]: m["role"] for m in accounts.admin.get(f"/workspaces/{ws}/members")["items"]}


def test_directory_people_sign_in_and_their_groups_become_roles(accounts, ldap_course) -> None:
    with accounts.browser() as browser:
        r = sign_in(browser, "carol", PEOPLE["carol"][1], next=f"/w/{ldap_course}")
        assert r.status_code == 303 and r.headers["location"] == f"/w/{ldap_course}", r.text
        me = browser.get("/api/v1/me").json()
        assert me["username"] == "carol" and me["display_name"] == "Carol Teacher"
    with accounts.browser() as browser:
        assert sign_in(browser, "dave", PEOPLE["dave"][1]).status_code == 303
    with accounts.browser() as browser:
        assert sign_in(browser, "erin", PEOPLE["erin"][1]).status_code == 303
    members = _members(accounts, ldap_course)
    assert members["carol"] == "instructor" and members["dave"] == "student" and "erin" not in members
    # the second sign-in finds the linked account (no duplicate, no error on the existing membership)
    with accounts.browser() as browser:
        assert sign_in(browser, "carol", PEOPLE["carol"][1]).status_code == 303
    assert [u["username"] for u in accounts.admin.get("/users")["items"]].count("carol") == 1
    signed_in = accounts.activity(type="account.signed_in", want=2, match=lambda e: e["actor_name"] == "carol")
    details = signed_in[0]["event"]["details"]
    assert details["method"] == "ldap" and details["issuer"] == f"ldap:{accounts.slapd.url}"
    assert len(details["external_subject"]) == 36  # the entry's entryUUID, not its name
    member_added = accounts.admin.get(f"/workspaces/{ldap_course}/activity", params={"type": "member.added"})
    assert {e["actor_name"] for e in member_added["items"] if e["subject"] != ""} >= {"sso:ldap"}


def test_wrong_password_unknown_person_and_tricks_are_refused(accounts) -> None:
    with accounts.browser() as browser:
        r = sign_in(browser, "dave", "not-daves-password")
        assert r.status_code == 401 and "wrong username or password" in r.text
        r = sign_in(browser, "zoe-not-in-the-directory", "whatever-it-is")
        assert r.status_code == 401 and "wrong username or password" in r.text
        for name in ("*", "dav*", "dave)(uid=*"):  # escaped: no wildcard, no injected filter
            assert sign_in(browser, name, PEOPLE["dave"][1]).status_code == 401
        # per directory account: after 5 failures even the right password waits
        for _ in range(5):
            assert sign_in(browser, "erin", "guessing erin").status_code == 401
        r = sign_in(browser, "erin", PEOPLE["erin"][1])
        assert r.status_code == 429 and "try again in" in r.text
        # an empty password would be an unauthenticated bind, which LDAP servers accept: refused first
        r = browser.post("/login", data={"username": "dave", "password": "", "csrf": csrf_of(browser)})
        assert r.status_code == 401 and "reprolab_session" not in browser.cookies
    failed = accounts.activity(type="account.signin_failed", want=2,
                               match=lambda e: e["event"]["details"].get("method") == "ldap")
    assert all(e["event"]["details"]["issuer"].startswith("ldap:") for e in failed)
    assert all("not-daves-password" not in e["canonical_json"] for e in failed)


def _settings(slapd, **overrides) -> GatewaySettings:
    base = dict(ldap_url=slapd.url, ldap_start_tls=True, ldap_ca_file=slapd.ca_file, ldap_bind_dn=READER_DN,
                ldap_bind_password=READER_PASSWORD, ldap_base_dn=f"ou=people,{SUFFIX}",
                ldap_group_base_dn=f"ou=groups,{SUFFIX}", ldap_group_roles=LDAP_GROUP_ROLES, ldap_timeout_seconds=5)
    return GatewaySettings(**(base | overrides))


def test_tls_is_checked_and_a_refused_service_account_is_not_a_sign_in(accounts) -> None:
    slapd = accounts.slapd
    person = lookup(_settings(slapd), "carol", PEOPLE["carol"][1])
    assert person is not None and person.groups == ["cs-staff"] and person.email == "carol@uni.example"
    # LDAPS with the same CA works too
    assert lookup(_settings(slapd, ldap_url=slapd.ldaps_url, ldap_start_tls=False), "dave", PEOPLE["dave"][1])
    # a certificate the gateway cannot trust (the system CAs do not know the test CA)
    with pytest.raises(DirectoryUnavailable):
        lookup(_settings(slapd, ldap_ca_file=None), "carol", PEOPLE["carol"][1])
    with pytest.raises(DirectoryUnavailable):
        lookup(_settings(slapd, ldap_url=slapd.ldaps_url, ldap_start_tls=False, ldap_ca_file=None), "carol",
               PEOPLE["carol"][1])
    # the service account's password is wrong: an operator's problem, said so
    with pytest.raises(DirectoryUnavailable, match="service account"):
        lookup(_settings(slapd, ldap_bind_password="wrong"), "carol", PEOPLE["carol"][1])
    assert lookup(_settings(slapd), "carol", "wrong") is None
