"""Users' cloud credentials through the whole platform (gateway REST -> runner over NATS -> database),
on SQLite and PostgreSQL: write-only, private to their owner, validated without echoing values, and
the canary test: a unique secret, sent through every path, is then searched for in every log file,
every message of every JetStream stream, the activity export, every API response, a full dump of
every database and every file under the platform's data directory. It must be nowhere, while the
test also shows each search would have found it (the ciphertext decrypts back to it, and a
non-secret marker sent alongside is found by the same searches)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import nats
from nats.js.errors import NotFoundError
from reprolab_cli.main import app
from reprolab_common.nats import Stream
from reprolab_runner import credentials as crypto
from reprolab_runner.credentials import Keyring
from sqlalchemy import create_engine, text
from typer.testing import CliRunner


class Recorder:
    """Every response body this test receives, for the final search."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, client, method: str, path: str, **kw) -> httpx.Response:
        r = client.http.request(method, path, **kw)
        self.bodies.append(r.content + json.dumps(dict(r.headers)).encode())
        return r


def aws(secret_access_key: str, access_key_id: str = "AKIAIOSFODNN7EXAMPLE", **options: str) -> dict:
    return {"secret": {"access_key_id": access_key_id, "secret_access_key": secret_access_key},
            "options": {"region": "us-east-1", **options}}


def test_credentials_are_write_only_private_and_validated(running, course) -> None:
    ws, (iname, teacher), (sname, student) = course
    call = Recorder()
    url = "/me/credentials/aws"
    secret = f"sk-{uuid.uuid4().hex}"

    r = call(student, "PUT", url, params={"workspace": ws}, json=aws(secret, image_id="ami-1"))
    assert r.status_code == 200, r.text
    put = r.json()
    assert put["vendor"] == "aws" and put["workspace"] == ws and put["key_hint"] == "****MPLE"
    assert put["options"] == {"region": "us-east-1", "image_id": "ami-1"}
    assert put["secret_fields"] == ["access_key_id", "secret_access_key"] and put["key_id"]
    assert set(put) == {"workspace", "vendor", "options", "secret_fields", "key_hint", "key_id", "created_at",
                        "updated_at"}

    got = call(student, "GET", url, params={"workspace": ws}).json()
    assert got == put
    listed = call(student, "GET", "/me/credentials", params={"workspace": ws}).json()
    assert listed == {"items": [put]}

    # update: same row, new secret and options
    r = call(student, "PUT", url, params={"workspace": ws}, json=aws(f"sk-{uuid.uuid4().hex}", "AKIAOTHERKEY00001234"))
    assert r.status_code == 200 and r.json()["key_hint"] == "****1234"
    assert r.json()["options"] == {"region": "us-east-1"}
    assert r.json()["created_at"] == put["created_at"]

    # another member sees none of it and cannot delete it
    assert call(teacher, "GET", url, params={"workspace": ws}).status_code == 404
    assert call(teacher, "GET", "/me/credentials", params={"workspace": ws}).json() == {"items": []}
    assert call(teacher, "DELETE", url, params={"workspace": ws}).status_code == 404
    assert call(student, "GET", url, params={"workspace": ws}).status_code == 200
    # a non-member cannot use the workspace at all; the workspace parameter is required
    _, outsider = running.user("out")
    for method in ("GET", "PUT", "DELETE"):
        r = call(outsider, method, url, params={"workspace": ws}, **({"json": aws("x")} if method == "PUT" else {}))
        assert r.status_code == 404 and "not found" in r.json()["detail"], (method, r.text)
    r = call(student, "GET", url)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "query.workspace"

    # bad input: 422 naming what to send, never echoing a value
    canary = f"CANARY-{uuid.uuid4().hex}"
    cases = [
        ("/me/credentials/gcp", {"secret": {"key": canary}}, "unknown vendor"),
        (url, {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_acess_key": canary},
               "options": {"region": "x"}}, "did you mean 'secret_access_key'"),
        (url, {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", canary: "x"}, "options": {"region": "x"}},
         "not one of its fields"),
        (url, {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": canary}}, "region"),
        (url, {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": 12345, canary: [canary]},
               "options": {"region": "x"}}, "must be a string"),
        (url, {"secret": {"secret_access_key": canary}, "options": {"region": "x"}, "extra": canary},
         "takes only secret and options"),
        (url, {"secret": canary}, "body.secret"),
    ]
    for path, body, needle in cases:
        r = call(student, "PUT", path, params={"workspace": ws}, json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert needle in r.text and canary not in r.text, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert "secret_access_key" in call(student, "PUT", url, params={"workspace": ws}, json={
        "secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, "options": {"region": "x"}}).json()["detail"]
    r = call(student, "PUT", url, params={"workspace": ws}, content=b'{"secret": {"secret_access_key": "' +
             canary.encode() + b'"', headers={"content-type": "application/json"})
    assert r.status_code == 400 and canary not in r.text
    assert all(canary.encode() not in body for body in call.bodies)

    assert call(student, "DELETE", url, params={"workspace": ws}).status_code == 204
    assert call(student, "GET", url, params={"workspace": ws}).status_code == 404
    assert call(student, "DELETE", url, params={"workspace": ws}).status_code == 404
    types = [e["type"] for e in student.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
    deadline = 30
    while "credential.deleted" not in types and deadline:
        deadline -= 1
        time.sleep(1)
        types = [e["type"] for e in student.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
    assert types.count("credential.set") == 2 and types.count("credential.deleted") == 1, types
    assert secret not in json.dumps(student.get(f"/workspaces/{ws}/activity", params={"limit": 1000}))


def test_cli_prompts_reads_files_lists_and_deletes(running, course, tmp_path: Path) -> None:
    ws, _, (sname, student) = course
    token = student.http.headers["Authorization"].split()[1]
    common = ["--workspace", ws, "--url", running.platform.url, "--token", token]
    cli = CliRunner()
    secret = f"sk-{uuid.uuid4().hex}"
    r = cli.invoke(app, ["credentials", "set", "aws", *common, "-o", "region=eu-west-1", "--json"],
                   input=f"AKIACLIPROMPTED0042\n{secret}\n")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout[r.stdout.index("{"):])
    assert shown["key_hint"] == "****0042" and shown["options"] == {"region": "eu-west-1"}
    assert secret not in r.output
    # openstack from a file, then the listing shows both (metadata only)
    doc = tmp_path / "os.json"
    doc.write_text(json.dumps({"secret": {"application_credential_id": "app-cred-id-000777",
                                          "application_credential_secret": secret},
                               "options": {"auth_url": "https://keystone.example:5000/v3"}}))
    assert cli.invoke(app, ["credentials", "set", "openstack", *common, "--from-file", str(doc)]).exit_code == 0
    r = cli.invoke(app, ["credentials", "list", *common, "--json"])
    assert r.exit_code == 0 and secret not in r.output
    assert {(c["vendor"], c["key_hint"]) for c in json.loads(r.stdout)} == {("aws", "****0042"),
                                                                         ("openstack", "****0777")}
    # mistakes say what to fix
    r = cli.invoke(app, ["credentials", "set", "aws", *common, "--from-file", str(doc)])
    assert r.exit_code == 1 and "422" in r.output and "aws needs {access_key_id, secret_access_key}" in r.output
    assert secret not in r.output
    r = cli.invoke(app, ["credentials", "set", "aws", *common, "-o", "region"], input="a\nb\n")
    assert r.exit_code == 1 and "key=value" in r.output
    r = cli.invoke(app, ["credentials", "set", "gcp", *common])
    assert r.exit_code == 1 and "aws, azure, openstack" in r.output
    assert cli.invoke(app, ["credentials", "delete", "aws", *common]).exit_code == 0
    r = cli.invoke(app, ["credentials", "show", "aws", *common])
    assert r.exit_code == 1 and "404" in r.output and f"reprolab credentials set aws --workspace {ws}" in r.output


# --- the canary test ------------------------------------------------------------------------------


def _stream_messages(nats_url: str, password: str) -> list[bytes]:
    """Subjects, headers and data of every message still stored in every JetStream stream (read as
    the operator identity: the bus requires credentials)."""

    async def read() -> list[bytes]:
        nc = await nats.connect(nats_url, user="operator", password=password)
        js = nc.jetstream()
        out: list[bytes] = []
        try:
            for stream in Stream:
                try:
                    info = await js.stream_info(stream.value)
                except NotFoundError:
                    continue
                if not info.state.messages:
                    continue
                for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                    try:
                        msg = await js.get_msg(stream.value, seq)
                    except NotFoundError:
                        continue
                    out.append(msg.subject.encode() + json.dumps(dict(msg.headers or {})).encode() + (msg.data or b""))
        finally:
            await nc.close()
        return out

    return asyncio.run(read())


def _database_dump(running) -> bytes:
    """Every row of every table of every service: SQLite ``iterdump`` of each .db file, or every table of
    every schema of this platform on PostgreSQL (bytea as raw bytes and as hex)."""
    env = running.platform.env()
    parts: list[bytes] = []
    if running.backend == "postgres":
        engine = create_engine(env["REPROLAB_DATABASE_URL"])
        prefix = env["REPROLAB_DATABASE_SCHEMA_PREFIX"]
        with engine.connect() as conn:
            tables = conn.execute(text("select table_schema, table_name from information_schema.tables "
                                       "where table_schema like :p"), {"p": prefix + "%"}).all()
            assert {s for s, _ in tables} >= {f"{prefix}runner", f"{prefix}audit", f"{prefix}gateway"}
            for schema, table in tables:
                for row in conn.execute(text(f'select * from "{schema}"."{table}"')):
                    for value in row:
                        if isinstance(value, (bytes, memoryview)):
                            parts += [bytes(value), bytes(value).hex().encode()]
                        else:
                            parts.append(str(value).encode())
        engine.dispose()
    else:
        files = sorted(running.platform.data_dir.rglob("*.db"))
        assert {f.name for f in files} >= {"runner.db", "audit.db", "gateway.db", "registry.db"}
        for path in files:
            with path.open("rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    parts.append(path.read_bytes())  # a .db that is not SQLite (a tool's cache): its raw bytes
                    continue
            conn = sqlite3.connect(path)
            parts += [line.encode() for line in conn.iterdump()]
            conn.close()
    return b"\n".join(parts)


def _runner_rows(running) -> list[tuple]:
    env = running.platform.env()
    if running.backend == "postgres":
        engine = create_engine(env["REPROLAB_DATABASE_URL"])
        with engine.connect() as conn:
            rows = conn.execute(text(f'select id, workspace, user_id, vendor, ciphertext, key_id from '
                                     f'"{env["REPROLAB_DATABASE_SCHEMA_PREFIX"]}runner".credentials')).all()
        engine.dispose()
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
    conn = sqlite3.connect(running.platform.data_dir / "runner.db")
    rows = conn.execute("select id, workspace, user_id, vendor, ciphertext, key_id from credentials").fetchall()
    conn.close()
    return rows


def _files(root: Path) -> list[tuple[Path, bytes]]:
    out = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.endswith(".sock"):
            try:
                out.append((path, path.read_bytes()))
            except OSError:  # a file removed while we walked
                continue
    return out


def test_canary_secret_appears_nowhere(running, course, tmp_path: Path) -> None:
    ws, (iname, teacher), (sname, student) = course
    canary = f"CANARY{uuid.uuid4().hex}"
    marker = f"visible{uuid.uuid4().hex[:12]}"  # a non-secret option: the searches must find it
    forms = [canary.encode(), canary.encode().hex().encode(), canary.encode().hex().upper().encode()]
    call = Recorder()
    url = "/me/credentials/aws"
    q = {"workspace": ws}

    # every path the secret can take
    assert call(student, "PUT", url, params=q, json=aws(canary, image_id=marker)).status_code == 200
    assert call(student, "GET", url, params=q).status_code == 200
    assert call(student, "GET", "/me/credentials", params=q).status_code == 200
    assert call(student, "PUT", url, params=q, json=aws(canary + "2", image_id=marker)).status_code == 200  # update
    assert call(student, "PUT", url, params=q, json=aws(canary, image_id=marker)).status_code == 200
    azure = {"secret": {"client_id": "00000000-0000-0000-0000-00000000abcd", "client_secret": canary},
             "options": {"tenant_id": "t", "subscription_id": "s", "resource_group": "rg", "location": "eastus"}}
    assert call(student, "PUT", "/me/credentials/azure", params=q, json=azure).status_code == 200
    assert call(teacher, "PUT", "/me/credentials/openstack", params=q, json={
        "secret": {"username": "teacher", "password": canary},
        "options": {"auth_url": "https://keystone.example:5000/v3", "project": "p"}}).status_code == 200
    for bad in ({"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_acess_key": canary},
                 "options": {"region": "x"}},
                {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", canary: canary}, "options": {"region": "x"}},
                {"secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": [canary]}},
                {"secret": {"secret_access_key": canary}, "options": {"regoin": canary}, canary: canary}):
        assert call(student, "PUT", url, params=q, json=bad).status_code == 422
    assert call(student, "PUT", "/me/credentials/gcp", params=q, json={"secret": {"k": canary}}).status_code == 422
    assert call(student, "PUT", url, params=q, content=b'{"secret": {"k": "' + canary.encode() + b'" ',
                headers={"content-type": "application/json"}).status_code == 400
    # the CLI, taking the secret from the environment (never from argv)
    cli = subprocess.run(
        [sys.executable, "-m", "reprolab_cli.main", "credentials", "set", "aws", "--workspace", ws, "--from-env",
         "--option", f"image_id={marker}", "--url", running.platform.url],
        env={**os.environ, "REPROLAB_TOKEN": student.http.headers["Authorization"].split()[1],
             "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": canary, "AWS_REGION": "us-east-1"},
        capture_output=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    call.bodies += [cli.stdout, cli.stderr]
    for args in (["list"], ["show", "aws"]):
        out = subprocess.run([sys.executable, "-m", "reprolab_cli.main", "credentials", *args, "--workspace", ws,
                              "--json", "--url", running.platform.url],
                             env={**os.environ, "REPROLAB_TOKEN": student.http.headers["Authorization"].split()[1]},
                             capture_output=True, timeout=120)
        assert out.returncode == 0 and marker.encode() in out.stdout, out.stderr
        call.bodies += [out.stdout, out.stderr]

    # rotation: a new key becomes current in the keyring file, the command re-encrypts every row
    key_file = running.platform.data_dir / "runner" / "credential-keys.json"
    old = Keyring.from_json(key_file.read_text())
    new_id = f"r{uuid.uuid4().hex[:8]}"
    rotated = Keyring(current=new_id, keys={**old.keys, new_id: os.urandom(32)})
    key_file.write_text(rotated.to_json())
    env = {k: v for k, v in running.platform.env().items() if k not in (crypto.ENV_KEYS, crypto.ENV_KEYS_FILE)}
    done = subprocess.run([sys.executable, "-m", "reprolab_runner", "rotate-credentials"], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert b"re-encrypted" in done.stdout and f"'{new_id}'".encode() in done.stdout
    call.bodies += [done.stdout, done.stderr]
    after = call(student, "GET", url, params=q).json()
    assert after["key_id"] == new_id and after["options"]["image_id"] == marker
    assert call(student, "DELETE", "/me/credentials/azure", params=q).status_code == 204
    assert call(student, "GET", "/me/credentials/azure", params=q).status_code == 404

    # wait until the audit service has the deletion, so its tables and the export are complete
    for _ in range(60):
        types = [e["type"] for e in student.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
        if "credential.deleted" in types:
            break
        time.sleep(0.5)
    assert "credential.deleted" in types and "credential.set" in types
    bundle = tmp_path / "activity.jsonl"
    teacher.download(f"/workspaces/{ws}/activity/export", bundle)
    student.download(f"/workspaces/{ws}/activity/export", tmp_path / "own.jsonl")
    exports = bundle.read_bytes() + (tmp_path / "own.jsonl").read_bytes()

    # the check can fail: the secret is stored, and decrypts back under the rotated key ...
    rows = [r for r in _runner_rows(running) if r[1] == ws]
    assert {r[3] for r in rows} == {"aws", "openstack"} and {r[5] for r in rows} == {new_id}
    for cid, workspace, user_id, vendor, blob, _ in rows:
        plain = crypto.decrypt(blob, rotated, workspace_id=workspace, credential_id=cid, user_id=user_id,
                               vendor=vendor)
        assert canary in plain.values()
    # ... and the same searches find what is not secret
    logs = _files(running.platform.log_dir)
    events = _stream_messages(running.platform.nats.url, running.platform.nats_credentials()["operator"])
    dump = _database_dump(running)
    everything = _files(running.platform.data_dir)
    assert logs and events and dump and everything
    assert any(f"workspace={ws}".encode() in data for _, data in logs)  # the gateway's access log
    assert any(ws.encode() in m and b"credential.set" in m for m in events)
    assert b"credential.set" in exports and b"credential.deleted" in exports and b"****MPLE" in exports
    assert marker.encode() in dump and any(marker.encode() in body for body in call.bodies)

    # the canary itself, in any of its forms, is nowhere
    places: list[tuple[str, bytes]] = (
        [(f"log {p.name}", d) for p, d in logs] + [("EVENTS/LOGS/JOBS message", m) for m in events]
        + [("activity export", exports), ("database dump", dump)]
        + [(f"response {i}", b) for i, b in enumerate(call.bodies)]
        + [(f"file {p.relative_to(running.platform.data_dir)}", d) for p, d in everything])
    leaks = sorted({where for where, data in places if any(form in data for form in forms)})
    assert not leaks, f"the canary secret leaked into: {leaks}"


def test_openapi_documents_the_credential_routes(running) -> None:
    spec = httpx.get(f"{running.platform.url}/api/v1/openapi.json").json()
    ops = spec["paths"]["/api/v1/me/credentials/{vendor}"]
    assert set(ops) == {"put", "get", "delete"} and "get" in spec["paths"]["/api/v1/me/credentials"]
    body = json.dumps(spec["components"]["schemas"]["CredentialPut"])
    for key in ("access_key_id", "client_secret", "application_credential_secret", "auth_url"):
        assert key in body
