"""kill -9 of a service in the middle of a dataset upload or an export: the client gets a 503 problem or a
dropped connection (never a 500), nothing half-done is left (no orphan object, no spool file, no dataset
row), the service comes back without touching the others, and the activity log has each change exactly
once and verifies. (Builder and runner killed mid build / mid run: tests/integration/test_builds.py and
test_runs.py, on the shared platform.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from .test_dependencies import _assert_log, _assert_unavailable, _http, _until_ok, _workspace

CHUNK = 64 * 1024


def _slow_body(data: bytes, killed: threading.Event, kill) -> Iterator[bytes]:
    """Send the first half, have the service killed, then the rest: the kill lands mid-upload."""
    half = len(data) // 2
    for i in range(0, half, CHUNK):
        yield data[i:i + CHUNK]
    kill()
    killed.set()
    for i in range(half, len(data), CHUNK):
        yield data[i:i + CHUNK]


def _dataset_objects(faulty, ws: str) -> list[Path]:
    return [p for p in (faulty.store_dir / "workspaces" / ws).rglob("*") if p.is_file()]


def _dataset_events(faulty, ws: str) -> list[dict]:
    return faulty.admin.get(f"/workspaces/{ws}/activity", params={"type": "dataset.uploaded"})["items"]


def _kill(faulty, name: str) -> None:
    proc = faulty.platform.procs[name]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_registry_killed_mid_upload(faulty, tmp_path: Path) -> None:
    ws = _workspace(faulty)
    data = os.urandom(1024 * 1024)
    killed = threading.Event()
    with _http(faulty) as http:
        r = http.post(f"/workspaces/{ws}/datasets", params={"name": "d.bin"},
                      content=_slow_body(data, killed, lambda: _kill(faulty, "registry")),
                      headers={"Content-Type": "application/octet-stream"})
        assert killed.is_set()
        _assert_unavailable(r, "registry")
        assert not _dataset_objects(faulty, ws), "the unregistered upload's object was kept"

        faulty.platform.start_service("registry")
        r = _until_ok(lambda: http.post(f"/workspaces/{ws}/datasets", params={"name": "d.bin"}, content=data,
                                        headers={"Content-Type": "application/octet-stream"}))
        assert r.status_code == 201
        assert [d["name"] for d in http.get(f"/workspaces/{ws}/datasets").json()["items"]] == ["d.bin"]
    assert len(_dataset_objects(faulty, ws)) == 1
    _assert_log(faulty, ws, tmp_path, set())
    deadline = time.monotonic() + 30
    while not _dataset_events(faulty, ws) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert len(_dataset_events(faulty, ws)) == 1


def test_gateway_killed_mid_upload(faulty, tmp_path: Path) -> None:
    ws = _workspace(faulty)
    data = os.urandom(1024 * 1024)
    killed = threading.Event()
    spool = faulty.platform.data_dir / "tmp" / "gateway"

    def kill_while_spooling() -> None:
        deadline = time.monotonic() + 15
        while not (spool.exists() and any(spool.iterdir())):
            assert time.monotonic() < deadline, "the gateway never started spooling the upload"
            time.sleep(0.01)
        _kill(faulty, "gateway")

    with _http(faulty) as http:
        try:
            r = http.post(f"/workspaces/{ws}/datasets", params={"name": "g.bin"},
                          content=_slow_body(data, killed, kill_while_spooling),
                          headers={"Content-Type": "application/octet-stream"})
            raise AssertionError(f"a killed gateway answered: {r.status_code} {r.text}")
        except httpx.TransportError:
            pass
    assert killed.is_set()
    faulty.platform.start_service("gateway")
    faulty.platform.wait_ready(60)
    leftovers = list(spool.iterdir()) if spool.exists() else []
    assert not leftovers, f"the killed gateway's half upload is still on disk: {leftovers}"
    with _http(faulty) as http:
        assert http.get(f"/workspaces/{ws}/datasets").json()["items"] == []
        r = http.post(f"/workspaces/{ws}/datasets", params={"name": "g.bin"}, content=data,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    assert len(_dataset_objects(faulty, ws)) == 1
    _assert_log(faulty, ws, tmp_path, set())


def test_audit_killed_then_export(faulty, tmp_path: Path) -> None:
    """Changes made while the activity log's service is dead are not lost: JetStream keeps them until it
    is back, and it stores each once. An export asked for meanwhile is a 503, not a 500."""
    ws = _workspace(faulty)
    spec = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}
    with _http(faulty) as http:
        _kill(faulty, "audit")
        for i in range(5):
            r = http.post(f"/workspaces/{ws}/environments", json={"name": f"e{i}", "spec": spec})
            assert r.status_code == 201, r.text
        _assert_unavailable(http.get(f"/workspaces/{ws}/activity/export"), "audit")
        faulty.platform.start_service("audit")
        _until_ok(lambda: http.get(f"/workspaces/{ws}/activity/export"))
    _assert_log(faulty, ws, tmp_path, {f"e{i}" for i in range(5)})
