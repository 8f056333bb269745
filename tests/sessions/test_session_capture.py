""""Save as a new version" of a JupyterLab session (issue 12 item 7), through the whole platform.

A student uploads a wheel into their session (the contents API, as JupyterLab's upload does), installs it
with pip in a notebook cell over the kernel websocket (no network needed: ``--no-index``), and saves the
session: the runner asks the image's agent what was installed beyond the lock, the gateway derives the spec
(the CLI's ``env capture`` logic), puts the version in the student's fork (they cannot change the course
environment) whose lineage leads to the session's version, and builds it. The build resolves the package
from the workspace's package index (a real PEP 503 server on this host, ``tests/builder/pep503.py``), as a
course's own packages would be. An instructor's save goes into the environment itself, with the session's
version as parent even when a later version exists.

Everything is real: platform, builder, runner, podman, the notebook server, pip in the image.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import Client

from ..builder.pep503 import SimpleIndex
from .test_sessions_gateway import bearer, home_of, run_cell, wait_status

BASE = "localhost/reprolab/bookworm-python:latest"
PKG, PKG_VERSION = "rl-captest", "1.0"
# pip is not in the base image: the environment declares it, as a course that lets students install would
SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0", "pip==24.2"]}}
pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


def wait_build(client: Client, build_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while (build := client.get(f"/builds/{build_id}"))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, build
        time.sleep(0.5)
    return build


@pytest.fixture(scope="module")
def cap_lab(running, base_image, tmp_path_factory):
    """A course with its own package index (holding the wheel the students will install), a built
    environment with pip, and two students with their raw tokens."""
    index = SimpleIndex(tmp_path_factory.mktemp("capture-index"))
    wheel = index.add(PKG, PKG_VERSION, body="VERSION = 'captured 1.0'\n")
    index.start()
    _, teacher = running.user("ct")
    ws = running.workspace(teacher, "cap")
    teacher.request("PUT", f"/workspaces/{ws}/package-indexes/course", json={"url": index.url})
    students = []
    for _ in range(2):
        name = f"cs-{uuid.uuid4().hex[:8]}"
        token = running.admin.post("/users", json={"username": name})["token"]
        teacher.post(f"/workspaces/{ws}/members", json={"username": name, "role": "student"})
        students.append((running.admin.as_user(token), token))
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
    t0 = time.monotonic()
    build = wait_build(teacher, teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds",
                                             expect=(202,))["id"])
    assert build["status"] == "succeeded", build
    print(f"environment built in {time.monotonic() - t0:.1f} s")
    homes: set[str] = set()
    yield ws, teacher, students, wheel, homes
    for s in teacher.get(f"/workspaces/{ws}/sessions")["items"]:
        if s["status"] not in ("stopped", "failed"):
            teacher.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
            wait_status(teacher, ws, s["id"], ("stopped", "failed"), timeout=300)
    for volume in homes:
        subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)
    index.stop()


def save(gw: str, token: str, ws: str, sid: str, body: dict | None = None) -> httpx.Response:
    with httpx.Client(timeout=180) as c:
        return c.post(f"{gw}/api/v1/workspaces/{ws}/sessions/{sid}/capture", headers=bearer(token),
                      **({"json": body} if body is not None else {}))


def start(client: Client, gw: str, ws: str, homes: set[str], version: int = 1) -> str:
    t0 = time.monotonic()
    sid = client.post(f"/workspaces/{ws}/sessions", json={"environment": "py", "version": version},
                      expect=(201,))["id"]
    wait_status(client, ws, sid, ("running",), timeout=600)
    homes.add(home_of(sid))
    print(f"session running in {time.monotonic() - t0:.1f} s")
    return sid


def install_wheel(gw: str, token: str, sid: str, wheel: Path) -> None:
    """Upload the wheel into the home through the proxy and ``pip install --user`` it in a notebook cell."""
    base = f"{gw}/sessions/{sid}/"
    with httpx.Client(timeout=60) as c:
        up = c.put(base + f"api/contents/{wheel.name}", headers=bearer(token), json={
            "type": "file", "format": "base64", "content": base64.b64encode(wheel.read_bytes()).decode()})
        assert up.status_code in (200, 201), up.text
        kernel = c.post(base + "api/kernels", headers=bearer(token), json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
    cell = ("import subprocess, os\n"
            f"p = subprocess.run(['pip', 'install', '--user', '--no-index', '--break-system-packages', "
            f"os.path.expanduser('~/{wheel.name}')], capture_output=True, text=True)\n"
            "print('pip exit', p.returncode, p.stdout[-400:], p.stderr[-800:])\n"
            "import importlib, site; importlib.invalidate_caches()\n"
            "import sys; sys.path.append(site.getusersitepackages())\n"
            "import rl_captest; print('imported', rl_captest.VERSION)\n")
    url = base.replace("http", "ws", 1) + f"api/kernels/{kernel.json()['id']}/channels"
    try:
        out, status = run_cell(url, token, "print('kernel up')", timeout=60)
        assert status == "ok" and "kernel up" in out, out
        out, status = run_cell(url, token, cell, timeout=60)
    except (AssertionError, TimeoutError) as exc:
        logs = subprocess.run(["podman", "logs", "--tail", "30", f"reprolab-session-{sid}"], capture_output=True,
                              text=True)
        raise AssertionError(f"{exc!r}; the server's log: {logs.stdout}{logs.stderr}") from exc
    assert status == "ok" and "pip exit 0" in out and "imported captured 1.0" in out, out


@pytest.mark.timeout(900)
def test_a_student_saves_what_they_installed_as_a_built_version_of_their_fork(running, cap_lab) -> None:
    ws, teacher, ((alice, alice_token), (_bob, bob_token)), wheel, homes = cap_lab
    teacher_token = teacher.http.headers["Authorization"].removeprefix("Bearer ")
    gw = running.platform.url.rstrip("/")
    sid = start(alice, gw, ws, homes)

    # nothing installed yet: a 422 that says so; only the owner may save (another student, the instructor: 404)
    r = save(gw, alice_token, ws, sid)
    assert r.status_code == 422 and "nothing was installed beyond the lock" in r.json()["detail"], r.text
    for token in (bob_token, teacher_token):
        r = save(gw, token, ws, sid)
        assert r.status_code == 404, r.text
    r = save(gw, alice_token, ws, sid, {"note": "x", "bild": True})
    assert r.status_code == 422, r.text  # a typo in the body is named, not ignored

    install_wheel(gw, alice_token, sid, wheel)
    t0 = time.monotonic()
    r = save(gw, alice_token, ws, sid, {"note": "with my helper package"})
    assert r.status_code == 201, r.text
    saved = r.json()
    print(f"save answered in {time.monotonic() - t0:.2f} s")
    assert saved["changes"] == {"python": {"added": {PKG: PKG_VERSION}}}, saved["changes"]
    assert saved["source"] == f"{ws}/py/v1" and saved["forked"] is True
    version = saved["version"]
    fork = version["environment"]
    assert fork != "py" and version["number"] == 2
    assert f"{PKG}=={PKG_VERSION}" in version["spec"]["python"]["requirements"]
    assert {"six==1.16.0", "pip==24.2"} <= set(version["spec"]["python"]["requirements"])
    assert version["note"].startswith("with my helper package") and sid in version["note"], version["note"]
    # lineage: the new version's parent is the fork's first version, a copy of exactly the session's version
    assert version["parent"] == f"{ws}/{fork}/v1"
    first = alice.get(f"/workspaces/{ws}/environments/{fork}/versions/1")
    assert first["parent"] == f"{ws}/py/v1" and first["spec"] == alice.get(f"/workspaces/{ws}/environments/py/"
                                                                             "versions/1")["spec"]
    assert saved["build"] and saved["build"]["environment"] == fork and saved["build"]["version"] == 2

    build = wait_build(alice, saved["build"]["id"])
    assert build["status"] == "succeeded", build
    print(f"saved version built in {time.monotonic() - t0:.1f} s after the click")
    lock = alice.get(f"/builds/{build['id']}/lock")
    got = {p["name"]: (p["version"], p.get("index")) for p in lock["python"]["packages"]}
    assert got[PKG] == (PKG_VERSION, "course"), got
    assert alice.get(f"/workspaces/{ws}/environments/{fork}/versions/2")["image_digest"] == build["image_digest"]

    # saving again reuses the fork (no second fork), and may skip the build
    r = save(gw, alice_token, ws, sid, {"build": False})
    assert r.status_code == 201, r.text
    again = r.json()
    assert again["version"]["environment"] == fork and again["version"]["number"] == 3
    assert again["version"]["parent"] == f"{ws}/{fork}/v1" and again["build"] is None
    forks = [e for e in alice.get(f"/workspaces/{ws}/environments")["items"] if e.get("forked_from")]
    assert [e["name"] for e in forks] == [fork], forks

    # a stopped session has nothing to save: 409
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
    wait_status(alice, ws, sid, ("stopped",), timeout=120)
    r = save(gw, alice_token, ws, sid)
    assert r.status_code == 409 and "not running" in r.json()["detail"], r.text


@pytest.mark.timeout(600)
def test_an_instructors_save_derives_from_the_session_version_not_the_latest(running, cap_lab) -> None:
    ws, teacher, _students, wheel, homes = cap_lab
    token = teacher.http.headers["Authorization"].removeprefix("Bearer ")
    gw = running.platform.url.rstrip("/")
    # a later version exists; the session runs version 1
    v2 = teacher.post(f"/workspaces/{ws}/environments/py/versions",
                      json={"spec": {**SPEC, "files": [{"path": "later.txt", "content": "v2"}]}})
    sid = start(teacher, gw, ws, homes, version=1)
    install_wheel(gw, token, sid, wheel)
    r = save(gw, token, ws, sid, {"build": False})
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["forked"] is False and saved["build"] is None
    version = saved["version"]
    assert (version["environment"], version["number"]) == ("py", v2["number"] + 1)
    assert version["parent"] == f"{ws}/py/v1", version["parent"]
    assert "files" not in version["spec"] and f"{PKG}=={PKG_VERSION}" in version["spec"]["python"]["requirements"]
    teacher.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
    wait_status(teacher, ws, sid, ("stopped",), timeout=120)
