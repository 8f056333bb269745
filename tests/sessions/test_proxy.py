"""The gateway's session proxy against a real Jupyter server and kernel (see conftest.py): auth (owner only,
404 for anyone else), the token kept from the browser, Origin and CSRF checks, HTTP streaming, the kernel
websocket with its v1 subprotocol and binary frames, close codes, and sparse activity reports."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

pytestmark = pytest.mark.timeout(180)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def portal_browser(world) -> Iterator[httpx.Client]:
    """A client signed in to the portal the way a browser is: the session cookie from POST /login."""
    with httpx.Client(base_url=world.gateway.url) as client:
        client.get("/")
        csrf = client.cookies.get("reprolab_csrf")
        assert csrf, "the sign-in page sets the CSRF cookie"
        r = client.post("/login", data={"token": world.owner_token, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303 and client.cookies.get("reprolab_session")
        yield client


def seen_everything(responses: list[httpx.Response]) -> str:
    return "\n".join(f"{r.headers!r}\n{r.text}" for r in responses)


def test_owner_reaches_jupyter_and_the_token_never_reaches_the_browser(proxy_world):
    w = proxy_world
    token = w.jupyter.token
    seen = []
    with httpx.Client() as c:
        status = c.get(w.base + "api/status", headers=bearer(w.owner_token))
        seen.append(status)
        assert status.status_code == 200 and "started" in status.json()
        me = c.get(w.base + "api/me", headers=bearer(w.owner_token))
        seen.append(me)
        assert me.status_code == 200
        # the bare id redirects to the base URL Jupyter serves
        bare = c.get(w.gateway.url + f"/sessions/{w.session_id}", headers=bearer(w.owner_token))
        assert bare.status_code == 308 and bare.headers["location"] == f"/sessions/{w.session_id}/"
    with portal_browser(w) as browser:
        page = browser.get(f"/sessions/{w.session_id}/api/contents")
        seen.append(page)
        assert page.status_code == 200 and page.json()["type"] == "directory"
        # the cookies Jupyter sets: _xsrf passes (JupyterLab echoes it), its login cookie does not
        cookies = page.headers.get_list("set-cookie")
        assert not [c for c in cookies if c.startswith("username-")], cookies
    for r in seen:
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert token not in seen_everything(seen)


def test_the_token_is_scrubbed_from_a_page_that_carries_it(proxy_world, tmp_path):
    """jupyterlab_server writes the token into the lab page's config; any HTML page is scrubbed. Here a page in
    the student's home that quotes the token stands in for it (jupyter_server serves it under /files/)."""
    w = proxy_world
    name = f"leak-{uuid.uuid4().hex[:6]}.html"
    config = json.dumps({"token": w.jupyter.token})
    body = f"<html><body><script id='jupyter-config-data' type='application/json'>{config}</script></body></html>"
    put = httpx.put(w.base + f"api/contents/{name}", headers=bearer(w.owner_token),
                    json={"type": "file", "format": "text", "content": body})
    assert put.status_code == 201, put.text
    page = httpx.get(w.base + f"files/{name}", headers=bearer(w.owner_token))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "jupyter-config-data" in page.text and w.jupyter.token not in page.text
    assert page.headers["content-length"] == str(len(page.content))
    direct = httpx.get(w.jupyter.url + w.jupyter.base_url + f"files/{name}",
                       headers={"Authorization": f"token {w.jupyter.token}"})
    assert w.jupyter.token in direct.text  # the scrub is the gateway's doing, not the file's


def test_anyone_but_the_owner_gets_404(proxy_world):
    w = proxy_world
    other = httpx.get(w.base + "api/status", headers=bearer(w.other_token))
    nobody = httpx.get(w.base + "api/status")
    unknown = httpx.get(w.gateway.url + "/sessions/nosuchsession/api/status", headers=bearer(w.owner_token))
    for r in (other, nobody, unknown):
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert w.jupyter.token not in r.text
    # not even a write
    r = httpx.post(w.base + "api/kernels", headers=bearer(w.other_token), json={})
    assert r.status_code == 404


def test_cross_site_and_unproven_changes_are_refused(proxy_world):
    w = proxy_world
    with portal_browser(w) as browser:
        browser.get(f"/sessions/{w.session_id}/")  # a page of the server sets _xsrf, as the lab page does
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf
        path = f"/sessions/{w.session_id}/api/contents"
        own = {"Origin": w.gateway.url}
        # a form on another site, riding on the cookie (even if it somehow had the header pair)
        evil = browser.post(path, json={"type": "notebook"},
                            headers={"Origin": "http://evil.example", "X-XSRFToken": xsrf})
        assert evil.status_code == 403, evil.text
        # no Origin at all on a cookie-authenticated change
        bare = browser.post(path, json={"type": "notebook"}, headers={"X-XSRFToken": xsrf})
        assert bare.status_code == 403
        # same site, but without the double-submit header (Jupyter would skip this check for a token request)
        noxsrf = browser.post(path, json={"type": "notebook"}, headers=own)
        assert noxsrf.status_code == 403 and "X-XSRFToken" in noxsrf.json()["detail"]
        wrong = browser.post(path, json={"type": "notebook"}, headers={**own, "X-XSRFToken": "forged"})
        assert wrong.status_code == 403
        ok = browser.post(path, json={"type": "notebook"}, headers={**own, "X-XSRFToken": xsrf})
        assert ok.status_code == 201, ok.text
        assert ok.json()["name"].endswith(".ipynb")
        for r in (evil, bare, noxsrf, wrong, ok):
            assert w.jupyter.token not in r.text
    # the portal's cookies never reach the session's server: it echoes nothing back, but its access log of
    # cookies is not available, so check what a kernel sees instead in test_kernel_websocket_*


def test_http_bodies_stream_both_ways(proxy_world):
    w = proxy_world
    blob = (hashlib.sha256(b"x").digest() * (3 * 1024 * 1024 // 32))  # 3 MiB, not compressible by accident
    name = f"blob-{uuid.uuid4().hex[:6]}.bin"
    import base64

    put = httpx.put(w.base + f"api/contents/{name}", headers=bearer(w.owner_token), timeout=60,
                    json={"type": "file", "format": "base64", "content": base64.b64encode(blob).decode()})
    assert put.status_code == 201, put.text
    got = bytearray()
    chunks = 0
    with httpx.stream("GET", w.base + f"files/{name}", headers=bearer(w.owner_token), timeout=60) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            got += chunk
            chunks += 1
    assert bytes(got) == blob
    assert chunks > 1  # it arrived in pieces, as the server sent it


def _execute(code: str) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "username": "t", "session":
                       uuid.uuid4().hex, "date": "2026-01-01T00:00:00Z", "version": "5.3"},
            "parent_header": {}, "metadata": {},
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}, "buffers": [], "channel": "shell"}


async def _run_cell(ws, code: str, binary: bool) -> tuple[str, list]:
    msg = _execute(code)
    msg_id = msg["header"]["msg_id"]
    if binary:
        await ws.send(serialize_msg_to_ws_v1([json.dumps(msg[k]).encode() for k in
                                              ("header", "parent_header", "metadata", "content")], "shell"))
    else:
        await ws.send(json.dumps(msg))
    out, kinds = "", []
    while True:
        frame = await asyncio.wait_for(ws.recv(), 60)
        if binary:
            assert isinstance(frame, bytes), "the v1 protocol is binary frames"
            channel, parts = deserialize_msg_from_ws_v1(frame)
            reply = {"channel": channel, "header": json.loads(parts[0]), "parent_header": json.loads(parts[1]),
                     "content": json.loads(parts[3])}
        else:
            assert isinstance(frame, str)
            reply = json.loads(frame)
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        kinds.append(reply["header"]["msg_type"])
        if reply["header"]["msg_type"] == "stream":
            out += reply["content"]["text"]
        if reply["header"]["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
            return out, kinds


@pytest.mark.parametrize("binary", [True, False], ids=["v1-subprotocol", "legacy-json"])
async def test_kernel_websocket_through_the_gateway(proxy_world, binary):
    w = proxy_world
    async with httpx.AsyncClient() as c:
        kernel = await c.post(w.base + "api/kernels", headers=bearer(w.owner_token), json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        kid = kernel.json()["id"]
    url = "ws" + w.base.removeprefix("http") + f"api/kernels/{kid}/channels"
    try:
        async with connect(url, open_timeout=90, additional_headers=bearer(w.owner_token),
                           subprotocols=[SUBPROTOCOL] if binary else None) as ws:
            assert ws.subprotocol == (SUBPROTOCOL if binary else None)
            code = "import os, json, sys\nprint(json.dumps({'env': sorted(k for k in os.environ if 'TOKEN' in k), " \
                   "'py': sys.version_info[0]}))"
            out, kinds = await _run_cell(ws, code, binary)
            assert "execute_input" in kinds
            assert json.loads(out.strip().splitlines()[-1])["py"] == 3
            assert w.jupyter.token not in out
        # closing from the browser's side reached the server: the kernel is still there, idle
        async with httpx.AsyncClient() as c:
            info = await c.get(w.base + f"api/kernels/{kid}", headers=bearer(w.owner_token))
            assert info.status_code == 200
    finally:
        async with httpx.AsyncClient() as c:
            await c.delete(w.base + f"api/kernels/{kid}", headers=bearer(w.owner_token))


def test_close_codes_sent_to_the_browser_are_legal():
    """Upstream's close code goes to the browser as is, unless it is one a peer may not send (1005, 1006, 1015,
    reserved ranges): those become 1000 (no status) or 1011 (abnormal)."""
    from reprolab_gateway.sessions_proxy.proxy import _close_code

    assert [_close_code(c) for c in (1000, 1001, 1008, 1011, 4001, 3000)] == [1000, 1001, 1008, 1011, 4001, 3000]
    assert [_close_code(c) for c in (None, 1005, 1006, 1015, 1004, 2000, 5000)] == [1000, 1000, 1011, 1011, 1011,
                                                                                    1011, 1011]


async def test_websockets_from_another_site_or_another_user_are_refused(proxy_world):
    w = proxy_world
    with portal_browser(w) as browser:
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    async with httpx.AsyncClient() as c:
        kid = (await c.post(w.base + "api/kernels", headers=bearer(w.owner_token), json={})).json()["id"]
    url = "ws" + w.base.removeprefix("http") + f"api/kernels/{kid}/channels"
    try:
        for headers in ({"Cookie": cookie, "Origin": "http://evil.example"},  # another site's page
                        {"Cookie": cookie},  # a browser always sends Origin: a cookie without one is not a page's
                        {**bearer(w.other_token)},  # another user
                        {}):  # nobody
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, open_timeout=90, additional_headers=headers, subprotocols=[SUBPROTOCOL]):
                    pass
            assert refused.value.response.status_code == 403, headers
            assert w.jupyter.token.encode() not in (refused.value.response.body or b"")
        # the portal's own page may
        async with connect(url, open_timeout=90, additional_headers={"Cookie": cookie, "Origin": w.gateway.url},
                           subprotocols=[SUBPROTOCOL]) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            out, _ = await _run_cell(ws, "print(6*7)", binary=True)
            assert out.strip() == "42"
    finally:
        async with httpx.AsyncClient() as c:
            await c.delete(w.base + f"api/kernels/{kid}", headers=bearer(w.owner_token))


def test_activity_is_reported_sparingly(proxy_world):
    """Dozens of requests, one report: the runner hears of activity at most every session_touch_seconds."""
    w = proxy_world
    before = len([t for t in w.gateway.resolver.touches if t[0] == w.session_id])
    for _ in range(20):
        assert httpx.get(w.base + "api/status", headers=bearer(w.owner_token)).status_code == 200
    touches = [t for t in w.gateway.resolver.touches if t[0] == w.session_id]
    assert 1 <= len(touches) <= before + 1
    assert re.match(r"^\d+\.\d+$", str(touches[-1][1]))


def test_without_the_fake_the_runner_is_asked_and_nothing_breaks(proxy_world):
    """The gateway's own resolver asks the runner over the bus (none runs in this test): an unknown session is a
    clear 404 (or 503 when the runner does not answer), never a 500."""
    w = proxy_world
    state = w.gateway.app.state
    fake, state.session_resolver = state.session_resolver, None
    try:
        r = httpx.get(w.gateway.url + "/sessions/nosuch1/api/status", headers=bearer(w.owner_token), timeout=30)
        assert r.status_code in (404, 503), r.text
        assert r.headers["content-type"] == "application/problem+json"
    finally:
        state.session_resolver = fake
