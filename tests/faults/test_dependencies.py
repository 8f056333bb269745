"""A dependency goes away under a running platform (PostgreSQL, NATS, the object store's disk): while it is
gone the API answers a 503/507 problem saying what is wrong, never a 500; when it is back the platform
recovers without a restart of any service, and the activity log has every change exactly once and verifies.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from reprolab_cli.main import app
from typer.testing import CliRunner

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}
PROBLEM = "application/problem+json"


def _http(faulty) -> httpx.Client:
    return httpx.Client(base_url=f"{faulty.platform.url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {faulty.platform.admin_token()}"})


def _workspace(faulty) -> str:
    ws = f"f-{uuid.uuid4().hex[:8]}"
    faulty.admin.post("/workspaces", json={"slug": ws, "title": f"Fault trial {ws}"})
    return ws


def _assert_unavailable(r: httpx.Response, *words: str, status: int = 503) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    detail = r.json()["detail"].lower()
    assert any(w in detail for w in words), detail


def _until_ok(send, timeout: float = 60.0) -> httpx.Response:
    """Recovery without a restart: the same request succeeds again within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        r = send()
        if r.status_code < 300:
            return r
        assert r.status_code in (502, 503, 504), (r.status_code, r.text)  # never a 500 on the way back
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.25)


def _assert_log(faulty, ws: str, tmp_path: Path, created: set[str]) -> None:
    """Every environment created appears exactly once in the activity log, and the exported bundle verifies."""
    def entries() -> list[dict]:
        return faulty.admin.get(f"/workspaces/{ws}/activity",
                                params={"type": "environment.created", "limit": 1000})["items"]

    deadline = time.monotonic() + 60  # events reach the log asynchronously (outbox, then the audit consumer)
    while len(entries()) < len(created) and time.monotonic() < deadline:
        time.sleep(0.25)
    time.sleep(1.0)  # a duplicate would arrive right behind
    entries = entries()
    subjects = Counter(e["subject"] for e in entries)
    assert len(entries) == len(created) and max(subjects.values(), default=1) == 1, subjects
    seqs = [e["seq"] for e in faulty.admin.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"the chain has gaps: {seqs}"
    bundle = tmp_path / f"{ws}.jsonl"
    cli = CliRunner()
    common = ["--url", faulty.platform.url, "--token", faulty.platform.admin_token()]
    out = cli.invoke(app, ["audit", "export", ws, "-o", str(bundle), *common], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, ["audit", "verify", str(bundle)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output


def _assert_no_service_restarted(faulty, before: dict[str, int]) -> None:
    now = {name: proc.pid for name, proc in faulty.platform.procs.items() if proc.poll() is None}
    assert now == before, f"services exited or were restarted: {before} -> {now}"


def _pids(faulty) -> dict[str, int]:
    return {name: proc.pid for name, proc in faulty.platform.procs.items()}


def test_postgresql_restart(faulty, tmp_path: Path) -> None:
    ws, before = _workspace(faulty), _pids(faulty)
    created = set()
    with _http(faulty) as http:
        assert http.post(f"/workspaces/{ws}/environments", json={"name": "before", "spec": SPEC}).status_code == 201
        created.add("before")

        assert http.get("/me").status_code == 200  # the token is now in the gateway's token cache
        faulty.pg.stop("fast")
        try:
            # the gateway's own database (tokens), a read and a write through the registry's database
            _assert_unavailable(http.get("/me/tokens"), "database")
            _assert_unavailable(http.get(f"/workspaces/{ws}"), "database")
            _assert_unavailable(http.post(f"/workspaces/{ws}/environments", json={"name": "during", "spec": SPEC}),
                                "database")
            # a token checked in the last REPROLAB_GATEWAY_TOKEN_CACHE_SECONDS needs no database
            assert http.get("/me").status_code == 200
        finally:
            faulty.pg.start()
        _until_ok(lambda: http.get("/me/tokens"))
        _until_ok(lambda: http.get(f"/workspaces/{ws}"))
        r = _until_ok(lambda: http.post(f"/workspaces/{ws}/environments", json={"name": "after", "spec": SPEC}))
        assert r.status_code == 201
        created.add("after")
    _assert_log(faulty, ws, tmp_path, created)
    _assert_no_service_restarted(faulty, before)


def test_nats_restart(faulty, tmp_path: Path) -> None:
    ws, before = _workspace(faulty), _pids(faulty)
    with _http(faulty) as http:
        faulty.platform.nats.stop()
        try:
            _assert_unavailable(http.get(f"/workspaces/{ws}"), "nats")
            _assert_unavailable(http.post(f"/workspaces/{ws}/environments", json={"name": "during", "spec": SPEC}),
                                "nats")
        finally:
            faulty.platform.nats.start()
        r = _until_ok(lambda: http.post(f"/workspaces/{ws}/environments", json={"name": "after", "spec": SPEC}))
        assert r.status_code == 201
    _assert_log(faulty, ws, tmp_path, {"after"})
    _assert_no_service_restarted(faulty, before)


def test_object_store_full(faulty, tmp_path: Path, request) -> None:
    ws, before = _workspace(faulty), _pids(faulty)
    filler = faulty.store_dir / "filler"
    with _http(faulty) as http:
        small = os.urandom(64 * 1024)
        assert http.post(f"/workspaces/{ws}/datasets", params={"name": "small.bin"}, content=small,
                         headers={"Content-Type": "application/octet-stream"}).status_code == 201
        # fill the disk the object store lives on (removed again whatever happens: later trials share it)
        request.addfinalizer(lambda: filler.unlink(missing_ok=True))
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        big = os.urandom(512 * 1024)
        r = http.post(f"/workspaces/{ws}/datasets", params={"name": "big.bin"}, content=big,
                      headers={"Content-Type": "application/octet-stream"})
        _assert_unavailable(r, "full", "space", status=507)
        kept = [p for p in (faulty.store_dir / "workspaces" / ws).rglob("*") if p.is_file()]
        partial = list((faulty.store_dir / ".tmp").iterdir())
        assert len(kept) == 1 and not partial, f"a failed upload left bytes behind: {kept} {partial}"
        names = [d["name"] for d in http.get(f"/workspaces/{ws}/datasets").json()["items"]]
        assert names == ["small.bin"], names

        filler.unlink()
        r = _until_ok(lambda: http.post(f"/workspaces/{ws}/datasets", params={"name": "big.bin"}, content=big,
                                        headers={"Content-Type": "application/octet-stream"}))
        assert r.json()["size"] == len(big)
        got = http.get(f"/workspaces/{ws}/datasets/{r.json()['digest']}/content")
        assert got.content == big
    _assert_no_service_restarted(faulty, before)
