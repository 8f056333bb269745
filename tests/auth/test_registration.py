"""Self-registration as a setting, on an in-process gateway (real NATS, SQLite; no other service is
needed): ``open`` lets anyone make an account with a sound password and signs them in, ``off`` refuses
the form. (The platform in conftest.py runs the default, ``invite``: test_invites.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from reprolab_common.settings import CommonSettings
from reprolab_gateway.core.config import GatewaySettings
from reprolab_gateway.main import create_app


def _client(tmp_path: Path, nats_url: str, registration: str) -> TestClient:
    settings = GatewaySettings(common=CommonSettings(nats_url=nats_url, data_dir=tmp_path / "data"),
                               registration=registration, bootstrap_token_file=tmp_path / "admin-token",
                               nats_connect_wait_seconds=2)
    return TestClient(create_app(settings), base_url="http://gateway.test", follow_redirects=False)


def _csrf(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/register").text).group(1)


def test_open_registration_makes_an_account_and_signs_it_in(tmp_path, nats_server) -> None:
    with _client(tmp_path, nats_server.url, "open") as client:
        page = client.get("/")
        assert 'href="/register"' in page.text
        assert client.get("/register").status_code == 200
        form = {"username": "newstudent", "display_name": "New Student", "email": "n@uni.example"}
        r = client.post("/register", data=form | {"password": "short", "csrf": _csrf(client)})
        assert r.status_code == 422 and "at least 10 characters" in r.text
        r = client.post("/register", data=form | {"username": "Not Valid!", "password": "a long passphrase",
                                                  "csrf": _csrf(client)})
        assert r.status_code == 422 and "not a valid username" in r.text
        r = client.post("/register", data=form | {"password": "a long passphrase", "csrf": "forged"})
        assert r.status_code == 400
        r = client.post("/register", data=form | {"password": "a long passphrase", "csrf": _csrf(client)})
        assert r.status_code == 303 and client.cookies["reprolab_session"].startswith("rls_")
        me = client.get("/api/v1/me").json()
        assert me["username"] == "newstudent" and me["display_name"] == "New Student" and not me["platform_admin"]
    with _client(tmp_path, nats_server.url, "open") as client:
        r = client.post("/register", data=form | {"password": "another passphrase", "csrf": _csrf(client)})
        assert r.status_code == 409 and "is taken" in r.text


@pytest.mark.parametrize("registration", ["off", "invite"])
def test_registration_off_or_by_invitation_refuses_the_open_form(tmp_path, nats_server, registration) -> None:
    with _client(tmp_path, nats_server.url, registration) as client:
        assert 'href="/register"' not in client.get("/").text
        page = client.get("/register")
        assert page.status_code == 403 and "not open" in page.text
        r = client.post("/register", data={"username": "walkin", "password": "a long passphrase",
                                           "csrf": client.cookies.get("reprolab_csrf", "")})
        assert r.status_code == 403 and "reprolab_session" not in client.cookies


def test_get_login_leads_to_the_sign_in_form(tmp_path, nats_server) -> None:
    """People type /login: they land on the sign-in form at /, keeping a local next page (never another site)."""
    with _client(tmp_path, nats_server.url, "off") as client:
        r = client.get("/login", params={"next": "/workspaces/cs101"})
        assert r.status_code == 303 and r.headers["location"] == "/?next=%2Fworkspaces%2Fcs101"
        for elsewhere in ("//evil.example/", "https://evil.example/"):
            assert client.get("/login", params={"next": elsewhere}).headers["location"] == "/"
        page = client.get("/login", follow_redirects=True)
        assert page.status_code == 200 and 'name="password"' in page.text
