"""The LTI tests' platform (SQLite, real processes) and the FAKE LMS (fake_lms.py) registered in it."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

from .fake_lms import FakeLms, form_fields

_counter = itertools.count(1)


@dataclass
class LtiLab:
    platform: Platform
    admin: Client
    lms: FakeLms
    platform_id: str

    @property
    def url(self) -> str:
        return self.platform.url

    def activity(self, path: str, *, type: str, want: int = 1, timeout: float = 15.0, match=lambda e: True
                 ) -> list[dict]:
        """Entries of an activity log (``/accounts/activity`` or ``/workspaces/<ws>/activity``), as the admin,
        waiting until ``want`` match (events go through the outbox, NATS and the audit consumer)."""
        headers = {"Authorization": f"Bearer {self.platform.admin_token()}"}
        deadline = time.monotonic() + timeout
        while True:
            r = httpx.get(f"{self.url}/api/v1{path}", params={"type": type, "limit": 1000}, headers=headers)
            assert r.status_code == 200, r.text
            found = [e for e in r.json()["items"] if match(e)]
            if len(found) >= want or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@dataclass
class LmsBrowser:
    """A browser at the LMS, driven over HTTP: keeps the gateway's cookies itself, since httpx (rightly)
    does not send ``Secure`` cookies over the tests' plain-HTTP loopback; the attributes each cookie was
    set with are kept too, so tests can check them."""

    lab: LtiLab
    cookies: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    address: str = field(default_factory=lambda: f"10.77.{next(_counter) // 250}.{next(_counter) % 250 + 1}")

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=15, headers={"X-Forwarded-For": self.address})

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            self.cookies[name.strip()] = value
            self.attributes[name.strip()] = header
        return response

    def send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if self.cookies and url.startswith(self.lab.url):
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return self._keep(self.http.request(method, url, headers=headers, **kw))

    def login(self, hint: str, target: str | None = None) -> httpx.Response:
        return self.send("POST", f"{self.lab.url}/lti/login", data=self.lab.lms.login_params(hint, target))

    def authorize(self, login: httpx.Response) -> tuple[str, dict[str, str]]:
        """Follow the tool's redirect to the LMS's authorization endpoint: (action, {id_token, state})."""
        assert login.status_code == 302, login.text
        page = httpx.get(login.headers["location"], timeout=15)
        assert page.status_code == 200, page.text
        return form_fields(page.text)

    def post_launch(self, action: str, fields: dict[str, str]) -> httpx.Response:
        return self.send("POST", action, data=fields)

    def launch(self, hint: str) -> tuple[httpx.Response, dict[str, str]]:
        """The whole launch: login initiation → authorization → the id_token posted to the tool."""
        action, fields = self.authorize(self.login(hint))
        return self.post_launch(action, fields), fields

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The API as this browser's signed-in session (cookie + CSRF header, like the portal's script)."""
        headers = {"X-Reprolab-CSRF": self.cookies.get("reprolab_csrf", "")}
        return self.send(method, f"{self.lab.url}/api/v1{path}", headers=headers, **kw)


def refusal(response: httpx.Response) -> str:
    """The check a refusal page names."""
    m = re.search(r'data-check="([^"]*)"', response.text)
    assert m, response.text[:500]
    return m.group(1)


@pytest.fixture(scope="session")
def lti_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LtiLab]:
    platform = Platform(tmp_path_factory.mktemp("platform-lti"))
    lms = FakeLms(tool_url=platform.url).start_server()
    platform.extra_env = {"REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
                          "REPROLAB_GATEWAY_LTI_PUBLIC_URL": platform.url,
                          "REPROLAB_GATEWAY_LTI_JWKS_REFETCH_SECONDS": "0",
                          "REPROLAB_GATEWAY_LTI_HTTP_TIMEOUT_SECONDS": "3"}
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        lms.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    made = admin.post("/lti/platforms", json=lms.registration())
    yield LtiLab(platform, admin, lms, made["id"])
    admin.close()
    platform.stop()
    lms.stop()


@pytest.fixture
def browser(lti_lab: LtiLab) -> Iterator[LmsBrowser]:
    b = LmsBrowser(lti_lab)
    yield b
    b.http.close()
