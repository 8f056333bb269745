"""The portal's session cookie and CSRF rules, and the offline API docs, against the real platform.

Signing in with an API token starts a server-side session (tests/auth covers passwords): the cookie
carries the session's random id, never the token, and is accepted by the same dependency as
``Authorization: Bearer``, so it gives exactly the user's roles; what it adds is the double-submit CSRF
check on state-changing requests (a browser sends cookies on its own) and a sign-in form another site
cannot post to.
"""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import expect

from .conftest import VIEWPORT

CSRF = "X-Reprolab-CSRF"


def login_page(client: httpx.Client) -> str:
    """GET / and return the CSRF value the sign-in form carries (the cookie is set with it)."""
    r = client.get("/")
    assert r.status_code == 200 and "Sign in" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    value = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    assert client.cookies["reprolab_csrf"] == value
    return value


def test_sign_in_sets_an_httponly_strict_cookie_that_the_api_accepts(portal) -> None:
    name, token, _ = portal.user("cookie")
    with httpx.Client(base_url=portal.url) as browser:
        csrf = login_page(browser)
        r = browser.post("/login", data={"token": token, "csrf": csrf, "next": "/w/x"})
        assert r.status_code == 303 and r.headers["location"] == "/w/x"
        session = next(h for h in r.headers.get_list("set-cookie") if h.startswith("reprolab_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session and token not in session
        csrf = browser.cookies["reprolab_csrf"]  # a fresh one per session
        assert browser.get("/api/v1/me").json()["username"] == name
        # a change authenticated by the cookie needs the CSRF header equal to the cookie
        slug = f"ck-{uuid.uuid4().hex[:8]}"
        r = browser.post("/api/v1/workspaces", json={"slug": slug, "title": "t"})
        assert r.status_code == 403 and CSRF in r.json()["detail"]
        r = browser.post("/api/v1/workspaces", json={"slug": slug, "title": "t"}, headers={CSRF: "wrong" + csrf})
        assert r.status_code == 403
        r = browser.post("/api/v1/workspaces", json={"slug": slug, "title": "t"}, headers={CSRF: csrf})
        assert r.status_code == 201, r.text
        # the cookie has the token's roles, no more: a non-admin cannot create users
        r = browser.post("/api/v1/users", json={"username": "nope"}, headers={CSRF: csrf})
        assert r.status_code == 403
        # pages render for the signed-in user
        assert re.search(rf'Signed in as</span> <a class="account" href="/me/account"[^>]*><strong>{name}</strong>',
                         browser.get(f"/w/{slug}").text)
        # signing out needs the form's CSRF value, then clears the cookies
        browser.post("/logout", data={"csrf": "forged"})
        assert browser.get("/api/v1/me").status_code == 200
        r = browser.post("/logout", data={"csrf": csrf})
        assert r.status_code == 303 and "reprolab_session" not in browser.cookies
        assert browser.get("/api/v1/me").status_code == 401
        r = browser.get(f"/w/{slug}/activity")
        assert r.status_code == 303 and r.headers["location"] == f"/?next=/w/{slug}/activity"


def test_bearer_clients_need_no_csrf_and_a_bad_cookie_is_401(portal) -> None:
    _, token, _ = portal.user("bearer")
    slug = f"br-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{portal.url}/api/v1/workspaces", json={"slug": slug, "title": "t"},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    r = httpx.get(f"{portal.url}/api/v1/me", cookies={"reprolab_session": "rls_" + "x" * 43})
    assert r.status_code == 401 and "session has ended" in r.json()["detail"]
    # an API token is not a session: scripts send it as a header
    r = httpx.get(f"{portal.url}/api/v1/me", cookies={"reprolab_session": token})
    assert r.status_code == 401 and "malformed session cookie" in r.json()["detail"]


def test_sign_in_form_refuses_bad_tokens_forged_posts_and_offsite_redirects(portal) -> None:
    _, token, _ = portal.user("form")
    with httpx.Client(base_url=portal.url) as browser:
        csrf = login_page(browser)
        r = browser.post("/login", data={"token": "hunter2", "csrf": csrf})
        assert r.status_code == 401 and "tokens start with" in r.text and "reprolab_session" not in browser.cookies
        r = browser.post("/login", data={"token": "rpl_" + "A" * 43, "csrf": csrf})
        assert r.status_code == 401 and "unknown or has been revoked" in r.text
        # a form posted from another site has no matching CSRF value: nobody is signed in
        r = browser.post("/login", data={"token": token, "csrf": "forged"})
        assert r.status_code == 400 and "reprolab_session" not in browser.cookies
        r = browser.post("/login", data={"token": token, "csrf": csrf, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_keyboard_only_sign_in_and_skip_link(portal, tab, shot) -> None:
    name, token, _ = portal.user("keys")
    r = httpx.put(f"{portal.url}/api/v1/users/{name}/password", json={"password": "keyboard passphrase"},
                  headers={"Authorization": f"Bearer {portal.platform.admin_token()}"})
    assert r.status_code == 204, r.text
    page = tab.page
    page.goto(portal.url + "/")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard passphrase")
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")  # the page's script has wired the form
    # the first Tab reaches the skip link, which moves focus to the main content
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # then the create-workspace form, by keyboard alone
    page.get_by_label("Short name (URL)").focus()
    page.keyboard.type(f"kb-{uuid.uuid4().hex[:8]}")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Title", exact=True)).to_be_focused()
    page.keyboard.type("Keyboard course")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create workspace")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/w/kb-*")
    expect(page.locator("#ws-title")).to_contain_text("Keyboard course")
    shot(page, "keyboard-workspace")
    assert not tab.errors, tab.errors


# Swagger UI (5.35) draws the operations list as a virtual list once it has 150 rows or more (one per tag group
# plus one per operation): only the rows near the screen are in the page, under .operations-virtual__item
# instead of .opblock-tag-section, and the rest are drawn as the reader scrolls. Our document crosses that line
# with its 128th operation (22 groups + 128 = 150 rows; POST .../image.tar/prepare was the one), which looked
# like "drawing stops after the 'workspaces' group" to a test that looked for rows far below the screen. So the
# test scrolls, as a reader does, and checks that every operation of the document is drawn on the way, in
# either mode.
OPERATIONS_DRAWN_JS = """() => [...document.querySelectorAll('.opblock')].map((op) => [
  [...op.classList].find((c) => c.startsWith('opblock-') && c !== 'opblock-deprecated').slice('opblock-'.length),
  op.querySelector('.opblock-summary-path').dataset.path])"""
NEXT_FRAME_JS = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def drawn_operations(page) -> set[tuple[str, str]]:
    """Scroll from the top of the docs page to its end, half a screen at a time, and return every operation
    (method, path) Swagger UI drew on the way."""
    drawn: set[tuple[str, str]] = set()
    page.evaluate("() => window.scrollTo(0, 0)")
    for _ in range(1000):
        page.evaluate(NEXT_FRAME_JS)
        drawn |= {(method, path) for method, path in page.evaluate(OPERATIONS_DRAWN_JS)}
        at_end = page.evaluate("""() => window.scrollY + window.innerHeight
                                        >= document.documentElement.scrollHeight - 1""")
        if at_end:
            return drawn
        page.evaluate("() => window.scrollBy(0, window.innerHeight / 2)")
    raise AssertionError("the docs page never reached its end while scrolling")


def test_api_docs_work_offline_from_the_gateways_own_assets(portal, tab, shot) -> None:
    html = httpx.get(f"{portal.url}/api/v1/docs").text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert "/static/swagger/swagger-ui-bundle.js" in assets and "/static/swagger/swagger-ui.css" in assets
    for asset in assets:
        r = httpx.get(portal.url + asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    document = httpx.get(f"{portal.url}/api/v1/openapi.json").json()
    operations = {(method, path) for path, item in document["paths"].items() for method in item
                  if method in HTTP_METHODS}
    assert ("get", "/api/v1/workspaces/{ws}/runs") in operations
    # Swagger UI 5 renders FastAPI's OpenAPI 3.1 document with no network beyond the gateway
    page = tab.page
    page.goto(f"{portal.url}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Reprolab", timeout=30_000)
    expect(page.locator(".swagger-ui .opblock-tag").first).to_be_visible()
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    drawn = drawn_operations(page)
    assert drawn == operations, {"not drawn": sorted(operations - drawn), "not in the document": sorted(
        drawn - operations)}
    # a window as tall as the page shows every operation at once (and a screenshot of all of it)
    page.evaluate("() => window.scrollTo(0, 0)")
    for _ in range(10):
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.evaluate(NEXT_FRAME_JS)
        if page.evaluate("() => document.documentElement.scrollHeight") == height:
            break
    assert {tuple(op) for op in page.evaluate(OPERATIONS_DRAWN_JS)} == operations
    shot(page, "docs")
    page.set_viewport_size(VIEWPORT)
    # the filter box narrows the operations to the tags, or the paths, that contain what is typed
    tags = {op["tags"][0] for item in document["paths"].values() for method, op in item.items()
            if method in HTTP_METHODS}
    matching = {op["tags"][0] for path, item in document["paths"].items() for method, op in item.items()
                if method in HTTP_METHODS and ("runs" in op["tags"][0] or "runs" in path)}
    assert "runs" in matching and len(tags) > len(matching) + 5, (tags, matching)
    page.locator(".swagger-ui input.operation-filter-input").fill("runs")
    expect(page.locator(".swagger-ui .opblock-tag")).to_have_count(len(matching))
    assert set(page.locator(".swagger-ui .opblock-tag").all_inner_texts()) == matching
    assert not tab.offsite, tab.offsite
    assert not tab.errors, tab.errors


def test_pages_load_nothing_from_elsewhere(portal) -> None:
    for path in ("/", "/static/app.js", "/static/app.css"):
        r = httpx.get(portal.url + path)
        assert r.status_code == 200, path
        assert not re.search(r"https?://(?!127\.0\.0\.1)", r.text.replace("http://www.w3.org/2000/svg", "")), path
