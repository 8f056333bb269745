"""OIDC single sign-on against a real provider process (oidc-provider-mock: Authlib's server, RS256 keys,
discovery), the code flow driven by httpx as a browser would follow it: our login leg sends state, nonce
and an S256 PKCE challenge; the provider's form signs a person in and redirects back; the callback makes
(or finds, by issuer + subject) the account, maps groups to workspace roles and starts a session.
Refusals: a state from another browser, an ID token for another nonce, a code whose PKCE challenge was
altered (the provider, made to enforce RFC 7636 by oidc_provider_pkce.py, refuses the verifier), another
issuer or audience, a forged signature, a username that belongs to a local account."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from reprolab_gateway.auth.oidc import OidcError, OidcProvider, derive
from reprolab_gateway.core.config import GatewaySettings

from .authkit import OIDC_CLIENT_ID, SSO_COURSE


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _start(browser: httpx.Client, next: str = "/") -> tuple[str, dict[str, str]]:
    """The login leg: returns the provider's authorization URL and its query."""
    r = browser.get("/auth/oidc/login", params={"next": next})
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    return url, {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def _authorize(browser: httpx.Client, url: str, sub: str) -> httpx.Response:
    """The person signs in at the provider (its form posts the subject) and is sent back to the callback,
    which httpx follows like a browser."""
    page = browser.get(url)
    assert page.status_code == 200 and "form" in page.text.lower()
    return browser.post(url, data={"sub": sub}, follow_redirects=True)


@pytest.fixture(scope="module")
def sso_course(accounts) -> str:
    r = httpx.post(f"{accounts.url}/api/v1/workspaces", json={"slug": SSO_COURSE, "title": "SSO course"},
                   headers=_bearer(accounts.platform.admin_token()))
    assert r.status_code in (201, 409), r.text
    return SSO_COURSE


def test_code_flow_with_pkce_creates_links_and_signs_in_with_group_roles(accounts, sso_course) -> None:
    with accounts.browser() as browser:
        url, query = _start(browser, next=f"/w/{sso_course}")
        assert url.startswith(accounts.oidc_issuer + "/oauth2/authorize")
        assert query["client_id"] == OIDC_CLIENT_ID and query["response_type"] == "code"
        assert query["scope"] == "openid profile email"
        assert query["redirect_uri"] == f"{accounts.url}/auth/oidc/callback"
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["state"] and query["nonce"] and query["state"] != query["nonce"]
        key = browser.cookies["reprolab_oidc"].split(".")[0]  # PKCE: the challenge is S256 of the verifier
        verifier = derive(key, "pkce")
        assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() == \
            query["code_challenge"]
        r = _authorize(browser, url, "f3b0c1d2-alice")
        assert r.status_code == 200 and r.url.path == "/auth/oidc/callback", r.text
        assert r.headers["refresh"] == f"0; url=/w/{sso_course}"
        me = browser.get("/api/v1/me").json()
        assert me["username"] == "alice.sso" and me["display_name"] == "Alice Example"
        assert browser.cookies["reprolab_session"].startswith("rls_")
    members = accounts.admin.get(f"/workspaces/{sso_course}/members")["items"]
    assert {m["username"]: m["role"] for m in members}["alice.sso"] == "instructor"  # group "staff"
    # signing in again finds the same account by (issuer, subject): no second account, name kept current
    httpx.put(f"{accounts.oidc_issuer}/users/f3b0c1d2-alice",
              json={"preferred_username": "renamed", "name": "Alice Renamed", "email": "alice@uni.example",
                    "groups": ["staff"]}).raise_for_status()
    with accounts.browser() as browser:
        url, _ = _start(browser)
        assert _authorize(browser, url, "f3b0c1d2-alice").status_code == 200
        me = browser.get("/api/v1/me").json()
        assert me["username"] == "alice.sso" and me["display_name"] == "Alice Renamed"
    users = [u["username"] for u in accounts.admin.get("/users")["items"]]
    assert users.count("alice.sso") == 1 and "renamed" not in users
    signed_in = accounts.activity(type="account.signed_in", want=2, match=lambda e: e["actor_name"] == "alice.sso")
    details = signed_in[0]["event"]["details"]
    assert details["method"] == "oidc" and details["issuer"] == accounts.oidc_issuer
    assert details["external_subject"] == "f3b0c1d2-alice"
    granted = accounts.activity(type="account.role_granted", match=lambda e: e["actor_name"] == "alice.sso")
    assert granted[0]["event"]["details"]["role"] == f"{sso_course}:instructor"


def test_a_student_group_maps_to_the_student_role(accounts, sso_course) -> None:
    with accounts.browser() as browser:
        url, _ = _start(browser)
        assert _authorize(browser, url, "a9e8d7c6-bob").status_code == 200
    members = {m["username"]: m["role"] for m in accounts.admin.get(f"/workspaces/{sso_course}/members")["items"]}
    assert members["bob.sso"] == "student"


def test_a_callback_from_another_browser_or_for_another_nonce_is_refused(accounts) -> None:
    with accounts.browser() as browser:
        url, _ = _start(browser)
        # an attacker's callback (their code, their state) replayed into this browser: state mismatch
        r = browser.post(url, data={"sub": "a9e8d7c6-bob"})
        assert r.status_code == 302
        callback = _with(r.headers["location"], state="not-this-browsers-state")
        r = browser.get(callback)
        assert r.status_code == 401 and "state mismatch" in r.text and "reprolab_session" not in browser.cookies
    with accounts.browser() as browser:
        url, query = _start(browser)
        # the authorization request altered on its way (another nonce): the ID token does not match
        r = _authorize(browser, _with(url, nonce="a-nonce-of-someone-else"), "a9e8d7c6-bob")
        assert r.status_code == 401 and "nonce mismatch" in r.text and "reprolab_session" not in browser.cookies
    with accounts.browser() as browser:
        url, _ = _start(browser)
        # the challenge altered on its way: the gateway's verifier does not match it at the token endpoint
        other_challenge = derive("someone-elses-key", "pkce-challenge")
        r = _authorize(browser, _with(url, code_challenge=other_challenge), "a9e8d7c6-bob")
        assert r.status_code == 401 and "refused the sign-in code" in r.text
        assert "reprolab_session" not in browser.cookies
    with accounts.browser() as browser:  # no login leg in this browser at all
        r = browser.get("/auth/oidc/callback", params={"code": "x", "state": "y"})
        assert r.status_code == 400 and "did not start a sign-in" in r.text
    failures = accounts.activity(type="account.signin_failed", want=3,
                                 match=lambda e: e["event"]["details"].get("method") == "oidc")
    reasons = " ".join(e["event"]["details"]["reason"] for e in failures)
    assert "state mismatch" in reasons and "nonce mismatch" in reasons and "refused the sign-in code" in reasons


def test_a_username_of_a_local_account_is_not_taken_over(accounts) -> None:
    accounts.admin.post("/users", json={"username": "taken-name"})
    with accounts.browser() as browser:
        url, _ = _start(browser)
        r = _authorize(browser, url, "c0ffee-taken")
        assert r.status_code == 409 and "already exists here and is not linked" in r.text
        assert browser.get("/api/v1/me").status_code == 401


def _real_id_token(issuer: str, nonce: str) -> str:
    """An ID token the provider issues through its own endpoints (code flow, no gateway involved)."""
    with httpx.Client() as client:
        query = {"client_id": OIDC_CLIENT_ID, "response_type": "code", "scope": "openid profile",
                 "redirect_uri": "http://127.0.0.1/cb", "state": "s", "nonce": nonce}
        r = client.post(f"{issuer}/oauth2/authorize?{urlencode(query)}", data={"sub": "a9e8d7c6-bob"})
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        r = client.post(f"{issuer}/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                         "redirect_uri": "http://127.0.0.1/cb"},
                        auth=(OIDC_CLIENT_ID, "secret"))
        r.raise_for_status()
        return r.json()["id_token"]


def test_id_tokens_of_another_issuer_audience_or_signature_are_refused(accounts) -> None:
    issuer = accounts.oidc_issuer
    settings = GatewaySettings(oidc_issuer=issuer, oidc_client_id=OIDC_CLIENT_ID)
    token = _real_id_token(issuer, "n-1")
    provider = OidcProvider(settings)
    assert provider.verify_id_token(token, nonce="n-1")["sub"] == "a9e8d7c6-bob"
    with pytest.raises(OidcError, match="nonce mismatch"):
        provider.verify_id_token(token, nonce="n-2")
    # the provider names itself by the URL it is reached by: as "localhost" it is another issuer
    with pytest.raises(OidcError, match="issued by"):
        provider.verify_id_token(token, nonce="n-1", issuer=issuer.replace("127.0.0.1", "localhost"))
    with pytest.raises(OidcError, match="not meant for this site"):
        OidcProvider(GatewaySettings(oidc_issuer=issuer, oidc_client_id="another-client")).verify_id_token(
            token, nonce="n-1")
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-8] + ("A" * 8 if not signature.endswith("A" * 8) else "B" * 8)])
    with pytest.raises(OidcError, match="signature"):
        provider.verify_id_token(forged, nonce="n-1")
    # an issuer URL without a discovery document is a clear error, not a crash
    with pytest.raises(OidcError, match="did not answer properly"):
        OidcProvider(GatewaySettings(oidc_issuer=issuer + "/no-such-tenant", oidc_client_id=OIDC_CLIENT_ID)).metadata()
