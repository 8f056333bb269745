"""The whole platform (sqlite) for the portal's tests, and a headless Chromium driven by Playwright.

The platform is the same ``Platform`` the integration tests and ``reprolab up`` start, one per
session; only SQLite here, since the portal talks to the REST API and the database makes no
difference to it (tests/integration covers PostgreSQL). The browser is Debian's chromium
(``scripts/test-deps.sh`` installs it), driven through Playwright's Python API: no browser
download, nothing from the internet.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

CHROMIUM = os.environ.get("REPROLAB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen
_counter = itertools.count()


@dataclass
class Portal:
    platform: Platform
    admin: Client

    @property
    def url(self) -> str:
        return self.platform.url

    def user(self, prefix: str) -> tuple[str, str, Client]:
        """A new user: (name, API token, client)."""
        name = f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"
        token = self.admin.post("/users", json={"username": name})["token"]
        return name, token, self.admin.as_user(token)


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    extra = {"REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
             # sessions: test_sessions_page watches a 40 s idle timeout, checked this often
             "REPROLAB_RUNNER_SESSION_CULL_INTERVAL_SECONDS": "2"}
    platform = Platform(tmp_path_factory.mktemp("platform-web"), extra_env=extra)
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    yield Portal(platform, admin)
    admin.close()
    platform.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class BrowserPage:
    page: Page
    errors: list[str]
    offsite: list[str]


@pytest.fixture
def tab(browser: Browser, portal: Portal) -> Iterator[BrowserPage]:
    """A fresh browser context (no cookies) at laptop size. Any request to another host is refused and
    recorded, so a page that needs a CDN fails; so does any script error."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    offsite: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text
            else None)

    def local_only(route) -> None:
        if route.request.url.startswith(portal.url):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    yield BrowserPage(page, errors, offsite)
    context.close()


# Every visible form control must have an accessible name (a <label>, aria-label or aria-labelledby), every
# image a text alternative; checked on each page a test screenshots.
UNLABELLED_JS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, img, svg[role=img]')]
  .filter((el) => el.offsetParent !== null || el.getClientRects().length)
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                    || el.getAttribute('aria-labelledby') || (el.tagName === 'IMG' && el.hasAttribute('alt'))))
  .map((el) => el.outerHTML.slice(0, 80))"""


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``shot(page, "name")`` checks the page's controls are labelled and saves a full-page screenshot as
    screenshots/<test>-<nn>-<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)
    seq = itertools.count(1)

    def take(page: Page, name: str) -> Path:
        unlabelled = page.evaluate(UNLABELLED_JS)
        assert not unlabelled, f"form controls without a label on {page.url}: {unlabelled}"
        path = SCREENSHOTS / f"{test}-{next(seq):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    return take
