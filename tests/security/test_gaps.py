"""The "other gaps" of issue 11, each proved on the running platform (tests/security/conftest.py)."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import io
import os
import re
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from reprolab_audit.exports import sweep_exports
from reprolab_cli.client import ApiError
from reprolab_common.db import make_engine
from reprolab_common.objectstore import LocalObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_gateway.core.config import GatewaySettings
from reprolab_gateway.main import create_app
from reprolab_gateway.recovery import RecoveryError, mint_admin_token
from sqlalchemy import text

# --- zips written by Python's zipfile.writestr ------------------------------------------------------

def _zip(entries: dict[str, bytes], *, special: tuple[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)  # external_attr = 0o600 << 16: permission bits, no file type
        zf.writestr(zipfile.ZipInfo("bare.txt"), b"no attributes at all")  # external_attr 0 (Windows-like)
        if special:
            info = zipfile.ZipInfo(special[0])
            info.external_attr = special[1] << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_writestr_zips_are_accepted_as_code_and_as_an_import(gaps) -> None:
    ws = gaps.workspace(gaps.admin)
    body = _zip({"main.py": b"print(1)\n", "requirements.txt": b"six==1.16.0\n", "pkg/": b""})
    code = gaps.admin.request("POST", f"/workspaces/{ws}/code", content=body, expect=(201,))
    assert code["format"] == "zip" and code["entries"] == 4
    imported = gaps.admin.request("POST", f"/workspaces/{ws}/environments/import", params={"name": "zipped"},
                                  content=body, headers={"Content-Type": "application/zip"}, expect=(201,))
    assert "requirements.txt" in imported["detected"]["files"]
    # real links and special files are still refused, on both paths
    for mode, word in ((0o120777, "link"), (0o020644, "link or special"), (0o010644, "special")):
        bad = _zip({"main.py": b"x"}, special=("evil", mode))
        for path, params, headers in ((f"/workspaces/{ws}/code", None, None),
                                      (f"/workspaces/{ws}/environments/import", {"name": "evil"},
                                       {"Content-Type": "application/zip"})):
            with pytest.raises(ApiError) as info:
                gaps.admin.request("POST", path, params=params, content=bad, headers=headers, expect=(201,))
            assert info.value.status == 422 and word in info.value.problem["detail"], info.value.problem


# --- the data directory and its databases are private ---------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_and_databases_are_private_to_the_platform(gaps) -> None:
    data = gaps.platform.data_dir
    gaps.admin.get("/me")  # every service has written by now (the gateway's token check too)
    assert _mode(data) == 0o700
    databases = sorted(data.glob("*.db*"))
    assert {p.name for p in databases} >= {f"{s}.db" for s in ("gateway", "registry", "audit", "builder", "runner")}
    assert any(p.name.endswith("-wal") for p in databases)
    secrets = [data / "admin-token", data / "audit-signing-key", data / "nats-credentials.json", data / "nats.conf"]
    assert {p: oct(_mode(p)) for p in databases + secrets if _mode(p) != 0o600} == {}


def test_an_older_world_readable_data_directory_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = data / "gateway.db"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    engine = make_engine(CommonSettings(data_dir=data), "gateway")
    with engine.begin() as conn:
        conn.execute(text("create table t (x int)"))
    engine.dispose()
    fresh = make_engine(CommonSettings(data_dir=data), "fresh")
    with fresh.begin() as conn:
        conn.execute(text("create table t (x int)"))
    assert _mode(data) == 0o700
    assert {p.name: oct(_mode(p)) for p in data.iterdir() if _mode(p) != 0o600} == {}
    fresh.dispose()


# --- a PUT and a DELETE of the same credential at once --------------------------------------------

AWS = {"secret": {"access_key_id": "AKIAEXAMPLEEXAMPLE", "secret_access_key": "s" * 40},
       "options": {"region": "us-east-1"}}


async def _race_credentials(lab, pairs: int = 8, rounds: int = 2) -> collections.Counter:
    _, token, user = lab.user("cred")
    ws = lab.workspace(user)
    path = f"/api/v1/me/credentials/aws?workspace={ws}"
    seen: collections.Counter = collections.Counter()
    async with httpx.AsyncClient(base_url=lab.platform.url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(rounds):
            calls = []
            for _ in range(pairs):
                calls += [client.put(path, json=AWS), client.delete(path)]
            answers = await asyncio.gather(*calls)
            for r in answers:
                seen[(r.request.method, r.status_code)] += 1
                assert r.status_code in (200, 204, 404), (r.request.method, r.status_code, r.text)
                if r.status_code == 404:
                    assert r.request.method == "DELETE" and "no aws credentials" in r.json()["detail"]
        # the end state is one of the two, and reads agree with it
        final = await client.get(path)
        listed = (await client.get(f"/api/v1/me/credentials?workspace={ws}")).json()["items"]
        assert final.status_code in (200, 404) and len(listed) == (final.status_code == 200)
        assert (await client.put(path, json=AWS)).status_code == 200
        assert (await client.delete(path)).status_code == 204
        assert (await client.delete(path)).status_code == 404
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_concurrent_put_and_delete_of_a_credential_never_fail(backend, request) -> None:
    lab = request.getfixturevalue("gaps" if backend == "sqlite" else "gaps_pg")
    seen = await _race_credentials(lab)
    assert seen[("PUT", 200)] == 16 and seen[("DELETE", 204)] >= 1, seen


# --- security headers on every response ------------------------------------------------------------

def test_every_kind_of_response_carries_the_security_headers(gaps) -> None:
    token = gaps.platform.admin_token()
    auth = {"Authorization": f"Bearer {token}"}
    url = gaps.platform.url
    with httpx.Client(base_url=url, timeout=30) as http:
        answers = {
            "health": http.get("/healthz"),
            "api 200": http.get("/api/v1/me", headers=auth),
            "api 401": http.get("/api/v1/me"),
            "api 404 route": http.get("/api/v1/no-such-thing", headers=auth),
            "api 404 object": http.get("/api/v1/workspaces/no-such-ws", headers=auth),
            "api 405": http.delete("/api/v1/me", headers=auth),
            "api 422": http.post("/api/v1/workspaces", json={"slug": "NOT A SLUG"}, headers=auth),
            "openapi": http.get("/api/v1/openapi.json"),
            "docs": http.get("/api/v1/docs"),
            "static": http.get("/static/app.js"),
            "static 404": http.get("/static/nope.js"),
            "swagger asset": http.get("/static/swagger/swagger-ui.css"),
            "portal page": http.get("/"),
            "portal 404": http.get("/w/x/y/z/nothing"),
        }
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {"health": 200, "api 200": 200, "api 401": 401, "api 404 route": 404, "api 404 object": 404,
                        "api 405": 405, "api 422": 422, "openapi": 200, "docs": 200, "static": 200,
                        "static 404": 404, "swagger asset": 200, "portal page": 200, "portal 404": 404}, statuses
    for name, r in answers.items():
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and r.headers.get("x-frame-options") == "DENY", (name, r.headers)
        assert r.headers.get("x-content-type-options") == "nosniff", (name, r.headers)
        assert r.headers.get("referrer-policy") in ("same-origin", "no-referrer"), (name, r.headers)
        if name not in ("docs", "portal page"):
            assert csp.startswith("default-src 'none'"), (name, csp)
    # the docs page's one inline script is allowed by its hash, nothing inline besides
    docs = answers["docs"]
    scripts = re.findall(rb"<script>(.*?)</script>", docs.content, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0]).digest()).decode()
    csp = docs.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp and "unsafe-inline" not in csp and "script-src 'self'" in csp
    # the portal's own, page-specific policy is kept (it allows its scripts and styles from here)
    assert "script-src 'self'" in answers["portal page"].headers["content-security-policy"]


# --- an admin cannot lock itself out by revoking tokens ---------------------------------------------

def _token_id(client, name: str | None = None) -> list[str]:
    return [t["id"] for t in client.get("/me/tokens")["items"] if not t.get("revoked") and name in (None, t["name"])]


def test_revoking_the_token_in_use_or_an_admins_last_one_is_refused(gaps) -> None:
    # the bootstrap admin's own token, with itself
    (boot,) = _token_id(gaps.admin, "bootstrap")
    with pytest.raises(ApiError) as info:
        gaps.admin.request("DELETE", f"/me/tokens/{boot}", expect=(204,))
    assert info.value.status == 409 and "authenticated with the token you are revoking" in info.value.problem["detail"]
    assert gaps.admin.get("/me")["username"] == "admin"
    # another admin: the token in use is refused, another one of its tokens is not
    _, first, admin = gaps.user("adm", admin=True)
    (first_id,) = _token_id(admin)
    with pytest.raises(ApiError) as info:
        admin.request("DELETE", f"/me/tokens/{first_id}", expect=(204,))
    assert info.value.status == 409
    second = admin.post("/me/tokens", json={"name": "second"})["token"]
    admin2 = gaps.admin.as_user(second)
    admin2.request("DELETE", f"/me/tokens/{first_id}", expect=(204,))
    with pytest.raises(ApiError):
        admin.get("/me")
    # signed in to the portal with its only token, it cannot revoke that one either (no password to come back with)
    with httpx.Client(base_url=gaps.platform.url, timeout=30) as browser:
        browser.get("/")
        csrf = browser.cookies["reprolab_csrf"]
        assert browser.post("/login", data={"token": second, "csrf": csrf}).status_code == 303
        headers = {"X-Reprolab-CSRF": browser.cookies["reprolab_csrf"]}
        (second_id,) = _token_id(admin2)
        r = browser.delete(f"/api/v1/me/tokens/{second_id}", headers=headers)
        assert r.status_code == 409 and "last API token" in r.json()["detail"], r.text
        assert browser.post("/api/v1/me/tokens", json={"name": "third"}, headers=headers).status_code == 201
        assert browser.delete(f"/api/v1/me/tokens/{second_id}", headers=headers).status_code == 204


# --- failed sign-ins with API tokens are throttled -------------------------------------------------

@contextlib.asynccontextmanager
async def _gateway(tmp_path: Path, nats_url: str):
    """The gateway app in this process, so its throttle is this test's alone (the shared platform's
    127.0.0.1 stays unthrottled for the other tests); ``client(address)`` speaks from a client address."""
    settings = GatewaySettings(common=CommonSettings(nats_url=nats_url, data_dir=tmp_path / "data"),
                               bootstrap_token_file=tmp_path / "admin-token", nats_connect_wait_seconds=5)
    app = create_app(settings)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected failure")

    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
            return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

        async def open_client(address: str) -> httpx.AsyncClient:
            return await stack.enter_async_context(client(address))

        yield settings, (tmp_path / "admin-token").read_text(), open_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_failed_token_sign_ins_are_throttled_per_token_and_per_address(tmp_path, nats_server) -> None:
    async with _gateway(tmp_path, nats_server.url) as (settings, admin_token, client):
        assert (settings.signin_account_failures, settings.signin_address_failures) == (5, 20)
        # one revoked/unknown token, again and again: 5 × 401, then 429 with the time to wait
        a = await client("10.0.0.1")
        bad = "rpl_" + "A" * 43
        codes = [(await a.get("/api/v1/me", headers=_bearer(bad))).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429], codes
        refused = await a.get("/api/v1/me", headers=_bearer(bad))
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 300
        assert "try again in" in refused.json()["detail"]
        # valid sign-ins from that address are not slowed: its budget (20) is not spent
        assert (await a.get("/api/v1/me", headers=_bearer(admin_token))).status_code == 200
        # many different tokens from one address: the address is refused after 20 failures, whatever it sends
        b = await client("10.0.0.2")
        assert (await b.get("/api/v1/me", headers=_bearer(admin_token))).status_code == 200  # checked, now cached
        codes = [(await b.get("/api/v1/me", headers=_bearer(f"rpl_{i:043d}"))).status_code for i in range(21)]
        assert codes == [401] * 20 + [429], codes
        other = (await client("10.0.0.9")).post("/api/v1/me/tokens", json={"name": "fresh"},
                                                headers=_bearer(admin_token))
        fresh = (await other).json()["token"]
        # a valid token still gets in from the throttled address (tokens cannot be guessed; people share
        # addresses), a bad one is told to wait
        assert (await b.get("/api/v1/me", headers=_bearer(fresh))).status_code == 200
        assert (await b.get("/api/v1/me", headers=_bearer(admin_token))).status_code == 200
        locked = await b.get("/api/v1/me", headers=_bearer("rpl_" + "C" * 43))
        assert locked.status_code == 429 and "from your address" in locked.json()["detail"]
        assert 0 < int(locked.headers["Retry-After"]) <= 600
        assert (await b.get("/api/v1/me")).status_code == 401  # no token is not a failed sign-in attempt
        # the portal's sign-in form, with a token: same rules
        c = await client("10.0.0.3")
        await c.get("/")
        csrf = c.cookies["reprolab_csrf"]
        other_bad = "rpl_" + "B" * 43
        codes = [(await c.post("/login", data={"token": other_bad, "csrf": csrf})).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429], codes
        page = await c.post("/login", data={"token": other_bad, "csrf": csrf})
        assert "Retry-After" in page.headers and "try again in" in page.text
        assert (await c.post("/login", data={"token": fresh, "csrf": csrf})).status_code == 303


# --- activity exports do not pile up ----------------------------------------------------------------

def _wait_for(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_activity_exports_are_removed_and_bounded_per_person(gaps) -> None:
    _, _, student = gaps.user("exp")
    ws = gaps.workspace(student)
    folder = gaps.platform.data_dir / "objects" / "exports" / ws
    for n in range(10):
        r = student.response("GET", f"/workspaces/{ws}/activity/export", expect=(200,))
        assert r.headers["content-type"].startswith("application/x-ndjson") and r.content.count(b"\n") >= 2
        if n == 0:  # once sent, the stored copy is gone
            _wait_for(lambda: not any(folder.glob("*")))
    with pytest.raises(ApiError) as info:
        student.response("GET", f"/workspaces/{ws}/activity/export", expect=(200,))
    assert info.value.status == 429 and "at most 10 activity exports" in info.value.problem["detail"]
    _wait_for(lambda: not any(folder.glob("*")))
    # what a cut-off download left behind goes once expired (the audit service sweeps every second here)
    stale, fresh = folder / f"{uuid.uuid4()}.jsonl", folder / f"{uuid.uuid4()}.jsonl"
    for path in (stale, fresh):
        path.write_text("{}\n")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    _wait_for(lambda: not stale.exists())
    assert fresh.exists()
    fresh.unlink()


def test_the_sweep_keeps_exports_under_their_total_size(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    now = time.time()
    for age, name in ((30, "a"), (20, "b"), (10, "c")):
        store.put_bytes(f"exports/ws/{name}.jsonl", b"x" * 100)
        os.utime(tmp_path / "objects" / "exports" / "ws" / f"{name}.jsonl", (now - age, now - age))
    store.put_bytes("datasets/keep.csv", b"y" * 1000)  # not an export: never touched
    assert sweep_exports(store, max_age=3600, max_total_bytes=1000, now=now) == 0
    assert sweep_exports(store, max_age=3600, max_total_bytes=250, now=now) == 1  # the oldest goes
    assert sorted(e.key for e in store.list_objects("exports/")) == ["exports/ws/b.jsonl", "exports/ws/c.jsonl"]
    assert sweep_exports(store, max_age=15, max_total_bytes=10_000, now=now) == 1  # b is older than 15 s
    assert [e.key for e in store.list_objects("exports/")] == ["exports/ws/c.jsonl"]
    assert store.exists("datasets/keep.csv")


def test_an_operator_on_the_host_can_mint_a_new_admin_token(gaps) -> None:
    env = {**os.environ, "REPROLAB_DATA_DIR": str(gaps.platform.data_dir)}
    run = subprocess.run([sys.executable, "-m", "reprolab_gateway", "admin-token"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    recovered = gaps.admin.as_user(token)
    assert recovered.get("/me")["platform_admin"] is True
    assert "recovery" in [t["name"] for t in recovered.get("/me/tokens")["items"]]
    name, _, _ = gaps.user("plain")
    with pytest.raises(RecoveryError, match=r"is not a platform admin here; platform admins: (.*, )?admin(,|$)"):
        mint_admin_token(CommonSettings(data_dir=gaps.platform.data_dir), name)


async def test_an_unexpected_error_carries_the_security_headers_too(tmp_path, nats_server) -> None:
    async with _gateway(tmp_path, nats_server.url) as (_, _, client):
        r = await (await client("10.0.0.5")).get("/test-only/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
