"""The gateway's own behaviour, in-process, against a real nats-server.

Auth, bootstrap, users and tokens, problem documents, probes and the upload limits need no other
service. Where a test needs the registry or audit to answer, a stand-in speaking their real NATS
contracts does (``fake_services``); the end-to-end tests run the real ones.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from reprolab.v1 import audit_pb2, common_pb2
from reprolab_common.errors import Conflict
from reprolab_common.natsserver import free_port
from reprolab_common.objectstore import LocalObjectStore, S3ObjectStore

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def problem(response: httpx.Response, status: int) -> dict:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def files_under(path: Path) -> list[Path]:
    if not path.exists():
        return []
    return [Path(d) / n for d, _, names in os.walk(path) for n in names]


async def new_user(gw, username: str) -> str:
    r = await gw.client.post("/api/v1/users", json={"username": username}, headers=gw.auth())
    assert r.status_code == 201, r.text
    return r.json()["token"]


# --- probes and documents -------------------------------------------------------------------


async def test_healthz(gateway):
    r = await gateway.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_openapi_and_docs_are_served(gateway):
    r = await gateway.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in [
        "/api/v1/users",
        "/api/v1/me/tokens/{token_id}",
        "/api/v1/workspaces/{ws}/members",
        "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}",
        "/api/v1/workspaces/{ws}/environments/{env}/fork",
        "/api/v1/workspaces/{ws}/datasets/{digest}/content",
        "/api/v1/workspaces/{ws}/activity/export",
        "/api/v1/activity/verify",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    body = paths["/api/v1/workspaces/{ws}/environments"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/yaml"} <= body.keys()
    assert "spec" in body["application/yaml"]["schema"]["required"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    # Errors are documented as what they are: problem+json, not FastAPI's default JSON shape.
    responses = paths["/api/v1/workspaces"]["post"]["responses"]
    assert list(responses["422"]["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    docs = await gateway.client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_readyz_names_missing_services(gateway):
    body = problem(await gateway.client.get("/readyz"), 503)
    assert body["checks"]["nats"] is True
    # The shared nats-server runs no platform service during these tests.
    for name in ["registry", "audit", "builder", "runner"]:
        assert body["checks"][name] is False
        assert name in body["detail"]


async def test_readyz_ready_when_every_service_answers(make_settings, run_gateway, quiet_nats):
    import nats
    from nats.micro import add_service

    async with run_gateway(make_settings(nats_url=quiet_nats.url)) as gw:
        body = problem(await gw.client.get("/readyz"), 503)
        assert body["checks"] == {
            "nats": True,
            "registry": False,
            "audit": False,
            "builder": False,
            "runner": False,
        }

        nc = await nats.connect(quiet_nats.url)
        services = [await add_service(nc, name=n, version="0.0.1") for n in ["registry", "audit", "builder"]]
        try:
            body = problem(await gw.client.get("/readyz"), 503)
            assert body["checks"]["runner"] is False and body["checks"]["registry"] is True
            assert "runner" in body["detail"] and "registry" not in body["detail"]
            services.append(await add_service(nc, name="runner", version="0.0.1"))
            r = await gw.client.get("/readyz")
            assert r.status_code == 200
            assert r.json() == {
                "status": "ready",
                "checks": {"nats": True, "registry": True, "audit": True, "builder": True, "runner": True},
            }
        finally:
            for s in services:
                await s.stop()
            await nc.close()


async def test_nats_down_gives_503_try_again(make_settings, run_gateway):
    dead = f"nats://127.0.0.1:{free_port()}"
    settings = make_settings(nats_url=dead, nats_connect_wait_seconds=0.2)
    async with run_gateway(settings) as gw:
        body = problem(await gw.client.get("/api/v1/workspaces", headers=gw.auth()), 503)
        assert "try again shortly" in body["detail"]
        r = await gw.client.get("/api/v1/workspaces", headers=gw.auth())
        assert r.headers["retry-after"] == "2"
        ready = problem(await gw.client.get("/readyz"), 503)
        assert ready["checks"]["nats"] is False
        # Users and tokens live in the gateway's own database: they keep working without NATS.
        assert (await gw.client.get("/api/v1/me", headers=gw.auth())).status_code == 200


async def test_absent_registry_gives_503(gateway):
    body = problem(await gateway.client.get("/api/v1/workspaces/cs1", headers=gateway.auth()), 503)
    assert "registry" in body["detail"] and "try again shortly" in body["detail"]


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Token rpl_" + "a" * 43,
        "Bearer rpl_" + "a" * 43,  # well formed, unknown
    ],
)
async def test_unauthenticated_requests_get_401_with_challenge(gateway, header):
    headers = {"Authorization": header} if header is not None else {}
    r = await gateway.client.get("/api/v1/me", headers=headers)
    body = problem(r, 401)
    assert r.headers["www-authenticate"].startswith('Bearer realm="reprolab"')
    assert "Authorization: Bearer" in body["detail"]
    if header:
        # Whatever was sent is never echoed back.
        token_part = header.partition(" ")[2].strip()
        if token_part:
            assert token_part not in r.text


async def test_revoked_token_gets_401(gateway):
    created = await gateway.client.post("/api/v1/me/tokens", json={"name": "laptop"}, headers=gateway.auth())
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["id"]
    assert (await gateway.client.get("/api/v1/me", headers=gateway.auth(token))).status_code == 200

    # not with itself (409: the caller would lock itself out), with the user's other token
    r = await gateway.client.delete(f"/api/v1/me/tokens/{token_id}", headers=gateway.auth(token))
    assert r.status_code == 409
    r = await gateway.client.delete(f"/api/v1/me/tokens/{token_id}", headers=gateway.auth())
    assert r.status_code == 204
    body = problem(await gateway.client.get("/api/v1/me", headers=gateway.auth(token)), 401)
    assert "revoked" in body["detail"]
    # The other token of the same user is unaffected.
    assert (await gateway.client.get("/api/v1/me", headers=gateway.auth())).status_code == 200


async def test_bootstrap_admin_created_once(make_settings, run_gateway, database_env):
    settings = make_settings(env=database_env)
    token_file = settings.bootstrap_token_file
    async with run_gateway(settings) as gw:
        token = token_file.read_text()
        assert token.startswith("rpl_") and len(token) == 4 + 43
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        me = (await gw.client.get("/api/v1/me", headers=gw.auth(token))).json()
        assert me["username"] == "admin" and me["platform_admin"] is True
    before = token_file.stat()

    # A restart with an existing admin changes nothing: same file, same token, still valid.
    async with run_gateway(settings) as gw:
        assert token_file.read_text() == token
        assert token_file.stat().st_mtime_ns == before.st_mtime_ns
        users = (await gw.client.get("/api/v1/users", headers=gw.auth(token))).json()["items"]
        assert [u["username"] for u in users] == ["admin"]

    # Even if the token file is gone, an existing admin is not re-created or re-keyed.
    token_file.unlink()
    async with run_gateway(settings) as gw:
        assert not token_file.exists()
        assert (await gw.client.get("/api/v1/me", headers=gw.auth(token))).status_code == 200


async def test_only_the_token_hash_is_stored(gateway):
    from reprolab_gateway.core.security import hash_token
    from sqlalchemy import create_engine, text

    data_dir = gateway.settings.common.data_dir
    engine = create_engine(f"sqlite:///{data_dir / 'gateway.db'}")
    with engine.connect() as conn:
        rows = conn.execute(text("select token_hash from api_tokens")).scalars().all()
    engine.dispose()
    assert rows == [hash_token(gateway.admin_token)]
    # Nowhere in the database files (main file and write-ahead log) does the token itself appear.
    db_files = list(data_dir.glob("gateway.db*"))
    assert db_files
    for path in db_files:
        assert gateway.admin_token.encode() not in path.read_bytes()


# --- users and tokens -------------------------------------------------------------------------


async def test_users_endpoints(gateway):
    c, admin = gateway.client, gateway.auth()
    r = await c.post("/api/v1/users", json={"username": "alice", "display_name": "Alice A."}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    assert created["user"]["username"] == "alice" and created["user"]["platform_admin"] is False
    assert created["user"]["created_at"].endswith("Z") or "+00:00" in created["user"]["created_at"]
    alice = gateway.auth(created["token"])

    me = (await c.get("/api/v1/me", headers=alice)).json()
    assert me == created["user"]

    problem(await c.post("/api/v1/users", json={"username": "bob"}, headers=alice), 403)
    problem(await c.get("/api/v1/users", headers=alice), 403)
    body = problem(await c.post("/api/v1/users", json={"username": "alice"}, headers=admin), 409)
    assert "alice" in body["detail"]

    names = [u["username"] for u in (await c.get("/api/v1/users", headers=admin)).json()["items"]]
    assert names == ["admin", "alice"]

    for bad in ["A", "Alice", "-x", "a", "a" * 40, "al ice", "../x"]:
        body = problem(await c.post("/api/v1/users", json={"username": bad}, headers=admin), 422)
        assert body["errors"][0]["loc"] == "body.username"


async def test_tokens_endpoints(gateway):
    c = gateway.client
    alice_token = await new_user(gateway, "alice")
    alice = gateway.auth(alice_token)

    r = await c.post("/api/v1/me/tokens", json={"name": "ci"}, headers=alice)
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("rpl_") and created["name"] == "ci" and created["revoked"] is False

    listed = (await c.get("/api/v1/me/tokens", headers=alice)).json()["items"]
    assert [t["name"] for t in listed] == ["initial", "ci"]
    for t in listed:
        assert set(t) == {"id", "name", "created_at", "last_used_at", "revoked"}
    assert created["token"] not in (await c.get("/api/v1/me/tokens", headers=alice)).text
    # The token in use has been seen; the new one not yet.
    by_name = {t["name"]: t for t in listed}
    assert by_name["initial"]["last_used_at"] is not None and by_name["ci"]["last_used_at"] is None

    # Someone else's token id is not yours to revoke (and does not reveal it exists).
    admin_tokens = (await c.get("/api/v1/me/tokens", headers=gateway.auth())).json()["items"]
    problem(await c.delete(f"/api/v1/me/tokens/{admin_tokens[0]['id']}", headers=alice), 404)
    assert (await c.get("/api/v1/me", headers=gateway.auth())).status_code == 200

    assert (await c.delete(f"/api/v1/me/tokens/{created['id']}", headers=alice)).status_code == 204
    listed = (await c.get("/api/v1/me/tokens", headers=alice)).json()["items"]
    assert {t["name"]: t["revoked"] for t in listed} == {"initial": False, "ci": True}
    problem(await c.get("/api/v1/me", headers=gateway.auth(created["token"])), 401)

    body = problem(await c.post("/api/v1/me/tokens", json={}, headers=alice), 422)
    assert body["errors"] == [{"loc": "body.name", "msg": "field required"}]


# --- problem documents ------------------------------------------------------------------------


async def test_unknown_route_and_wrong_method_are_problems(gateway):
    body = problem(await gateway.client.get("/api/v1/no-such-thing"), 404)
    assert "/api/v1/no-such-thing" in body["detail"]
    r = await gateway.client.put("/api/v1/me", headers=gateway.auth())
    body = problem(r, 405)
    assert "GET" in r.headers["allow"] and "PUT" in body["detail"]
    # every method of the path, not only the first route's (GET and POST are two routes here)
    for path, allowed in (("/api/v1/users", "GET, POST"), ("/api/v1/workspaces/cs1/members", "GET, POST"),
                          ("/api/v1/me/credentials/aws", "DELETE, GET, PUT")):
        r = await gateway.client.patch(path, headers=gateway.auth())
        problem(r, 405)
        assert r.headers["allow"] == allowed, path


async def test_validation_errors_name_the_field(gateway):
    r = await gateway.client.post(
        "/api/v1/workspaces", json={"slug": "cs1", "tilte": "x"}, headers=gateway.auth()
    )
    body = problem(r, 422)
    locs = {e["loc"] for e in body["errors"]}
    assert locs == {"body.title", "body.tilte"}
    assert "body.title" in body["detail"] and "body.tilte" in body["detail"]
    # a pattern the document declares is refused in words, not as the regex
    r = await gateway.client.post("/api/v1/workspaces", json={"slug": "CS 101", "title": "x"}, headers=gateway.auth())
    assert problem(r, 422)["errors"] == [{"loc": "body.slug", "msg": "use 1-63 lower-case letters, digits and '-', "
                                                                    "starting with a letter or digit"}]
    body = problem(await gateway.client.get("/api/v1/workspaces/CS_101/members", headers=gateway.auth()), 422)
    assert body["errors"][0]["loc"] == "path.ws" and "^" not in body["detail"]


async def test_malformed_json_names_line_and_column(gateway):
    r = await gateway.client.post(
        "/api/v1/users",
        content=b'{\n  "username": "bob",\n  oops\n}',
        headers={**gateway.auth(), "Content-Type": "application/json"},
    )
    body = problem(r, 400)
    assert "line 3, column 3" in body["detail"]

    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/environments",
        content=b'{"name": "py",\n "spec": {,}}',
        headers={**gateway.auth(), "Content-Type": "application/json"},
    )
    body = problem(r, 400)
    assert "line 2, column 11" in body["detail"] and body["errors"][0]["loc"] == "body"


async def test_malformed_yaml_names_line_and_column(gateway):
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/environments",
        content=b"name: py\nspec:\n  base: python:3.12\n  apt: [git\n",
        headers={**gateway.auth(), "Content-Type": "application/yaml"},
    )
    body = problem(r, 400)
    assert "malformed YAML at line 5, column 1" in body["detail"]


async def test_document_bodies_are_checked_before_the_registry(gateway):
    auth = gateway.auth()
    url = "/api/v1/workspaces/cs1/environments"
    # Unknown top-level keys, in YAML and JSON.
    r = await gateway.client.post(
        url, content=b"name: py\nspec: {base: x}\nbase: y\n", headers={**auth, "Content-Type": "text/yaml"}
    )
    assert [e["loc"] for e in problem(r, 422)["errors"]] == ["body.base"]
    r = await gateway.client.post(url, json={"name": "py", "spec": [1, 2]}, headers=auth)
    assert [e["loc"] for e in problem(r, 422)["errors"]] == ["body.spec"]
    r = await gateway.client.post(url, json={"spec": {}}, headers=auth)
    assert [e["loc"] for e in problem(r, 422)["errors"]] == ["body.name"]
    # YAML aliases could expand into gigabytes of JSON: refused with their position.
    r = await gateway.client.post(
        url,
        content=b"name: py\nspec:\n  a: &x [1, 2]\n  b: *x\n",
        headers={**auth, "Content-Type": "application/x-yaml"},
    )
    assert "line 4, column 6" in problem(r, 400)["detail"]
    r = await gateway.client.post(url, content=b"name=py", headers={**auth, "Content-Type": "text/plain"})
    problem(r, 415)
    r = await gateway.client.post(f"{url}/py/versions", json={"spec": {}, "rollback_to": 1}, headers=auth)
    assert "exactly one" in problem(r, 422)["detail"]
    r = await gateway.client.post(f"{url}/py/versions", json={"rollback_to": 2**40}, headers=auth)
    assert [e["loc"] for e in problem(r, 422)["errors"]] == ["body.rollback_to"]
    r = await gateway.client.post(
        url,
        content=b'{"name": "py", "spec": {"x": NaN}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    problem(r, 400)


async def test_oversized_documents_get_413(make_settings, run_gateway):
    async with run_gateway(make_settings(max_document_bytes=2048)) as gw:
        spec = {"name": "py", "spec": {"apt": ["pkg"] * 1000}}
        r = await gw.client.post("/api/v1/workspaces/cs1/environments", json=spec, headers=gw.auth())
        problem(r, 413)

        # Bodies FastAPI reads itself are limited too, even before authentication, and when chunked.
        big = b'{"slug": "cs1", "title": "' + b"t" * 4000 + b'"}'
        r = await gw.client.post(
            "/api/v1/workspaces", content=big, headers={"Content-Type": "application/json"}
        )
        problem(r, 413)

        async def chunked() -> AsyncIterator[bytes]:
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        r = await gw.client.post(
            "/api/v1/workspaces", content=chunked(), headers={**gw.auth(), "Content-Type": "application/json"}
        )
        assert "2048" in problem(r, 413)["detail"]
        # A body under the limit still reaches validation.
        r = await gw.client.post("/api/v1/me/tokens", json={"name": "x" * 101}, headers=gw.auth())
        assert problem(r, 422)["errors"][0]["loc"] == "body.name"


async def test_unexpected_errors_are_500_problems_without_internals(gateway, caplog):
    from reprolab_gateway.api.deps import get_registry

    async def broken():
        raise RuntimeError("secret internal state /etc/shadow")

    app = gateway.app
    app.dependency_overrides[get_registry] = broken
    try:
        body = problem(await gateway.client.get("/api/v1/workspaces", headers=gateway.auth()), 500)
    finally:
        app.dependency_overrides.clear()
    assert "secret" not in str(body) and "RuntimeError" not in str(body)
    assert "secret internal state" in caplog.text


# --- environments: YAML and JSON reach the registry as the same JSON -------------------------


async def test_yaml_and_json_specs_reach_the_registry_alike(gateway, fake_services):
    yaml_body = b"""
name: py
description: course env
spec:
  base: python:3.12-slim
  apt: [git, "on"]
  python:
    version: "3.12"
    requirements: [numpy==2.1.0]
  released: 2024-05-01
  flag: yes
  ok: true
"""
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/environments",
        content=yaml_body,
        headers={**gateway.auth(), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    env = r.json()
    expected = {
        "base": "python:3.12-slim",
        "apt": ["git", "on"],
        "python": {"version": "3.12", "requirements": ["numpy==2.1.0"]},
        # Dates stay text and only true/false are booleans (no YAML 1.1 surprises).
        "released": "2024-05-01",
        "flag": "yes",
        "ok": True,
    }
    assert env["latest"]["spec"] == expected
    assert env["latest"]["parent"] is None and env["forked_from"] is None
    assert env["owner"] == "admin" and env["latest_version"] == 1 and env["kind"] == "workspace"

    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/environments",
        json={"name": "py", "description": "course env", "spec": expected},
        headers=gateway.auth(),
    )
    assert r.status_code == 201
    sent = [req.spec_json for req in fake_services.requests("registry.env.create")]
    assert len(sent) == 2 and sent[0] == sent[1]
    actor = fake_services.requests("registry.env.create")[0].actor
    assert actor.username == "admin" and actor.platform_admin is True and actor.user_id

    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/environments/py/versions",
        content=b"rollback_to: 1\nnote: back\n",
        headers={**gateway.auth(), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201
    assert r.json()["rollback_to"] == 1 and r.json()["note"] == "back"
    req = fake_services.requests("registry.version.create")[0]
    assert req.WhichOneof("source") == "rollback_to" and req.rollback_to == 1


async def test_member_with_unknown_username_is_422(gateway):
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/members",
        json={"username": "nobody", "role": "student"},
        headers=gateway.auth(),
    )
    body = problem(r, 422)
    assert "no user named 'nobody'" in body["detail"] and "POST /api/v1/users" in body["detail"]
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/members", json={"username": "admin", "role": "owner"}, headers=gateway.auth()
    )
    assert problem(r, 422)["errors"][0]["loc"] == "body.role"


async def test_member_change_and_removal_refuse_bad_input_before_the_registry(gateway):
    base = "/api/v1/workspaces/cs1/members"
    r = await gateway.client.patch(f"{base}/nobody", json={"role": "student"}, headers=gateway.auth())
    assert "no member named 'nobody'" in problem(r, 404)["detail"]
    assert problem(await gateway.client.delete(f"{base}/nobody", headers=gateway.auth()), 404)
    r = await gateway.client.patch(f"{base}/admin", json={"role": "owner"}, headers=gateway.auth())
    assert problem(r, 422)["errors"][0]["loc"] == "body.role"
    r = await gateway.client.patch(f"{base}/admin", json={"role": "student", "extra": 1}, headers=gateway.auth())
    assert problem(r, 422)["errors"][0]["loc"] == "body.extra"
    r = await gateway.client.delete(f"{base}/Not%20A%20Name", headers=gateway.auth())
    assert problem(r, 422)["errors"][0]["loc"] == "path.member"


# --- datasets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", ".hidden", "", "x" * 129, "a b", "..", "é"])
async def test_bad_dataset_names_are_422(gateway, name):
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets", params={"name": name}, content=b"data", headers=gateway.auth()
    )
    body = problem(r, 422)
    assert body["errors"][0]["loc"] == "query.name"
    assert files_under(gateway.settings.common.objects_dir()) == []


async def test_upload_stores_content_addressed_and_registers(gateway, fake_services):
    data = os.urandom(300_000)
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets",
        params={"name": "train.csv"},
        content=data,
        headers={**gateway.auth(), "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    ds = r.json()
    hexdigest = hashlib.sha256(data).hexdigest()
    assert ds["digest"] == f"sha256:{hexdigest}" and ds["size"] == len(data)
    assert ds["visibility"] == "hidden" and ds["media_type"] == "text/csv" and ds["uploaded_by"] == "admin"
    assert "object_key" not in ds
    key = f"workspaces/cs1/datasets/sha256/{hexdigest}"
    store = LocalObjectStore(gateway.settings.common.objects_dir())
    assert store.read_bytes(key) == data
    reg = fake_services.requests("registry.dataset.register")[0]
    assert reg.object_key == key and reg.name == "train.csv" and reg.actor.username == "admin"
    assert files_under(gateway.settings.upload_dir()) == []

    r = await gateway.client.get(
        f"/api/v1/workspaces/cs1/datasets/{ds['digest']}/content", headers=gateway.auth()
    )
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="train.csv"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["etag"] == f'"{ds["digest"]}"' and r.headers["content-length"] == str(len(data))
    assert fake_services.requests("registry.dataset.get")[-1].for_download is True
    r = await gateway.client.get(
        f"/api/v1/workspaces/cs1/datasets/{ds['digest']}/content",
        headers={**gateway.auth(), "If-None-Match": f'"{ds["digest"]}"'},
    )
    assert r.status_code == 304 and r.content == b""

    problem(
        await gateway.client.get("/api/v1/workspaces/cs1/datasets/sha256:xyz", headers=gateway.auth()), 422
    )


async def test_upload_media_type_ignores_client_defaults(gateway, fake_services):
    # curl --data-binary labels every body as a form; that says nothing about the data.
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets",
        params={"name": "a", "visibility": "hidden"},
        content=b"1,2\n",
        headers={**gateway.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 201
    assert r.json()["media_type"] == "application/octet-stream" and r.json()["visibility"] == "hidden"
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets",
        params={"name": "b"},
        content=b"{}",
        headers={**gateway.auth(), "Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert r.json()["media_type"] == "application/json"


async def test_failed_registration_removes_the_object(gateway, fake_services):
    fake_services.register_error = Conflict("a dataset named 'x' already exists with other content")
    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets", params={"name": "x"}, content=b"abc", headers=gateway.auth()
    )
    assert "already exists" in problem(r, 409)["detail"]
    assert files_under(gateway.settings.common.objects_dir()) == []


async def test_students_cannot_upload_and_the_body_is_not_read(gateway, fake_services):
    fake_services.role = common_pb2.ROLE_STUDENT
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * 65536

    r = await gateway.client.post(
        "/api/v1/workspaces/cs1/datasets", params={"name": "x"}, content=body(), headers=gateway.auth()
    )
    problem(r, 403)
    assert sent <= 1
    assert fake_services.requests("registry.dataset.register") == []
    assert files_under(gateway.settings.common.objects_dir()) == []

    r = await gateway.client.post(
        "/api/v1/workspaces/missing/datasets", params={"name": "x"}, content=b"abc", headers=gateway.auth()
    )
    problem(r, 404)


async def test_oversize_upload_by_content_length_is_413_before_anything(
    make_settings, run_gateway, start_fake
):
    async with run_gateway(make_settings(max_upload_bytes=1000)) as gw:
        fake = await start_fake(gw)
        r = await gw.client.post(
            "/api/v1/workspaces/cs1/datasets", params={"name": "big"}, content=b"x" * 5000, headers=gw.auth()
        )
        assert "REPROLAB_GATEWAY_MAX_UPLOAD_BYTES" in problem(r, 413)["detail"]
        # Refused on the declared length alone: the registry was not even asked.
        assert fake.calls == []
        assert files_under(gw.settings.common.objects_dir()) == []


async def test_oversize_streamed_upload_is_413_and_leaves_nothing(make_settings, run_gateway, start_fake):
    async with run_gateway(make_settings(max_upload_bytes=100_000)) as gw:
        fake = await start_fake(gw)

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
            for _ in range(10):
                yield b"y" * 16384

        r = await gw.client.post(
            "/api/v1/workspaces/cs1/datasets", params={"name": "big"}, content=body(), headers=gw.auth()
        )
        problem(r, 413)
        assert fake.requests("registry.workspace.get")  # checked first, then refused while streaming
        assert fake.requests("registry.dataset.register") == []
        assert files_under(gw.settings.common.objects_dir()) == []
        assert files_under(gw.settings.upload_dir()) == []

        # Exactly the limit is fine.
        r = await gw.client.post(
            "/api/v1/workspaces/cs1/datasets",
            params={"name": "ok"},
            content=b"z" * 100_000,
            headers=gw.auth(),
        )
        assert r.status_code == 201


# --- activity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (common_pb2.ROLE_STUDENT, audit_pb2.ACTIVITY_SCOPE_OWN),
        (common_pb2.ROLE_INSTRUCTOR, audit_pb2.ACTIVITY_SCOPE_WORKSPACE),
        (common_pb2.ROLE_ADMIN, audit_pb2.ACTIVITY_SCOPE_WORKSPACE),
    ],
)
async def test_activity_scope_follows_the_role(gateway, fake_services, role, scope):
    fake_services.role = role
    token = await new_user(gateway, "carol")
    r = await gateway.client.get(
        "/api/v1/workspaces/cs1/activity",
        params={"type": "workspace.created", "since": "2024-01-01T00:00:00Z", "after": 4, "limit": 1},
        headers=gateway.auth(token),
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["head_seq"] == 5 and page["next_after"] == 5
    assert page["items"][0]["event"] == {"type": "workspace.created"}
    q = fake_services.requests("audit.query")[0]
    assert q.scope == scope and q.type == "workspace.created" and q.after_seq == 4 and q.limit == 1
    assert q.time.since.seconds == 1704067200 and not q.time.HasField("until")
    assert q.actor.username == "carol"


async def test_activity_export_and_verify(gateway, fake_services):
    r = await gateway.client.get("/api/v1/workspaces/cs1/activity/export", headers=gateway.auth())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-disposition"] == 'attachment; filename="cs1-activity.jsonl"'
    assert r.content == b'{"type":"header"}\n{"type":"entry"}\n'

    r = await gateway.client.post("/api/v1/activity/verify", content=r.content, headers=gateway.auth())
    assert r.status_code == 200
    assert r.json() == {
        "ok": True,
        "entries": 2,
        "elided": 0,
        "checkpoints": 0,
        "workspace": "cs1",
        "origin": "",
        "root": "",
        "line": None,
        "seq": None,
        "reason": "",
        "keys_known": True,
        "matches_log": False,
        "against_size": None,
    }
    key = fake_services.requests("audit.verify")[0].object_key
    assert key.startswith("uploads/verify/") and key.endswith(".jsonl")
    assert not LocalObjectStore(gateway.settings.common.objects_dir()).exists(key)


# --- object store delete (both backends) ------------------------------------------------------


def test_object_store_delete_local(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("a/b", b"1")
    store.delete("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")  # idempotent
    with pytest.raises(ValueError):
        store.delete("../escape")


def test_object_store_delete_s3(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    store = S3ObjectStore("gateway-test", endpoint_url=moto_url, region="us-east-1")
    store.put_bytes("a/b", b"1")
    assert store.exists("a/b")
    store.delete("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")


# --- the process ------------------------------------------------------------------------------


def test_python_m_reprolab_gateway_serves(tmp_path, nats_server):
    port = free_port()
    env = {
        **os.environ,
        "REPROLAB_DATA_DIR": str(tmp_path / "data"),
        "REPROLAB_NATS_URL": nats_server.url,
        "REPROLAB_GATEWAY_PORT": str(port),
        "REPROLAB_GATEWAY_BOOTSTRAP_TOKEN_FILE": str(tmp_path / "tok"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprolab_gateway"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        token = (tmp_path / "tok").read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert (
                client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["username"]
                == "admin"
            )
        # Over a real socket, a declared 1 TiB upload is refused before a byte of it is sent.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/workspaces/cs1/datasets?name=x HTTP/1.1\r\nHost: gw\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b"Content-Length: 1099511627776\r\n\r\n"
            )
            head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"application/problem+json" in head
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 rather than 0.
    assert proc.returncode in (0, -15), out.decode()
    assert b"Application shutdown complete" in out
    assert token.encode() not in out  # tokens never reach the log
