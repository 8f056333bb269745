"""Helpers of the accounts tests. conftest.py starts one platform (SQLite) for them, with the
counterparts sign-in talks to on loopback.

The gateway is the real one with the real registry and audit services, so sign-ins, invites and reset
links are checked through HTTP as a browser does, and their records in the real activity log. Requests
come from 127.0.0.1, which uvicorn trusts as a proxy: a test that needs its own client address sends
``X-Forwarded-For`` (``from_address``), so the per-address throttle of one test cannot refuse another.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

PASSWORD = "correct horse battery staple"
OIDC_CLIENT_ID = "reprolab-test"
SSO_COURSE = "sso-course"
# the provider's people; "groups" is mapped to workspace roles by the gateway's settings
OIDC_USERS = [
    {"sub": "f3b0c1d2-alice", "preferred_username": "Alice.Sso", "name": "Alice Example",
     "email": "alice@uni.example", "groups": ["staff", "unrelated"]},
    {"sub": "a9e8d7c6-bob", "preferred_username": "bob.sso", "name": "Bob Example", "email": "bob@uni.example",
     "groups": ["students-2026"]},
    {"sub": "c0ffee-taken", "preferred_username": "taken-name", "name": "Someone", "email": "t@uni.example"},
]
LDAP_COURSE = "ldap-course"
LDAP_GROUP_ROLES = {"cs-staff": f"{LDAP_COURSE}:instructor", "cs-students": f"{LDAP_COURSE}:student"}
OIDC_GROUP_ROLES = {"staff": f"{SSO_COURSE}:instructor", "students-2026": f"{SSO_COURSE}:student,nowhere:student"}
_counter = itertools.count(1)


def from_address() -> dict[str, str]:
    """Headers giving this client an address of its own (10.x.y.z, unique per call)."""
    n = next(_counter)
    return {"X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}


@dataclass
class Accounts:
    platform: Platform
    admin: Client
    oidc_issuer: str = ""
    slapd: Any = None

    @property
    def url(self) -> str:
        return self.platform.url

    def user(self, prefix: str, password: str | None = PASSWORD) -> tuple[str, str]:
        """A new user with ``password`` set by the admin: (username, API token)."""
        name = f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"
        token = self.admin.post("/users", json={"username": name})["token"]
        if password is not None:
            r = httpx.put(f"{self.url}/api/v1/users/{name}/password", json={"password": password},
                          headers={"Authorization": f"Bearer {self.platform.admin_token()}"})
            assert r.status_code == 204, r.text
        return name, token

    def browser(self, address: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=address or from_address())

    def activity(self, *, type: str = "", token: str | None = None, want: int = 1, timeout: float = 15.0,
                 match=lambda e: True) -> list[dict]:
        """Entries of the accounts log (as the admin unless ``token``) satisfying ``match``; waits until
        at least ``want`` are there (events travel through the outbox, NATS and the audit consumer)."""
        headers = {"Authorization": f"Bearer {token or self.platform.admin_token()}"}
        deadline = time.monotonic() + timeout
        while True:
            r = httpx.get(f"{self.url}/api/v1/accounts/activity", params={"type": type, "limit": 1000},
                          headers=headers)
            assert r.status_code == 200, r.text
            found = [e for e in r.json()["items"] if match(e)]
            if len(found) >= want or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def csrf_of(browser: httpx.Client, path: str = "/") -> str:
    """GET a page and return the CSRF value its forms carry."""
    r = browser.get(path)
    assert r.status_code == 200, r.text
    return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def sign_in(browser: httpx.Client, username: str, password: str = PASSWORD, next: str = "/") -> httpx.Response:
    return browser.post("/login", data={"username": username, "password": password, "csrf": csrf_of(browser),
                                        "next": next})
