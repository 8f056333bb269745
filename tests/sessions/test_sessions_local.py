"""JupyterLab sessions on the local target, through the whole platform (issue 12, items 1, 2, 4, 5).

Real parts: the gateway, NATS, the runner, the builder (it builds the notebook layer FROM the version's
image with its wheel cache and pushes it to the OCI registry), podman's Docker API and the notebook
server itself. The Jupyter REST API and the kernel websocket are called directly at the session's
upstream URL with its token (read over the bus as the operator, the way the gateway's proxy reads it);
going through the gateway's proxy is the proxy's tests'.

One platform (sqlite) and one built environment serve the module; the layer is built once (the
second start and the cull test find it in the runner's ``session_layers``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import httpx
import nats
import pytest
import websocket
from reprolab.v1 import runner_pb2
from reprolab_cli.client import ApiError, Client

BASE = "localhost/reprolab/bookworm-python:latest"
pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def lab(running, base_image):
    """A workspace with a built environment (six pinned OLDER than the notebook layer's own six) and two
    students."""
    _, teacher = running.user("st")
    ws = running.workspace(teacher, "sws")
    students = []
    for _ in range(2):
        name, client = running.user("ss")
        teacher.post(f"/workspaces/{ws}/members", json={"username": name, "role": "student"})
        students.append(client)
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    yield ws, teacher, students
    # whatever a failed test left: every session stopped, then the homes removed (stopping keeps them)
    for s in teacher.get(f"/workspaces/{ws}/sessions")["items"]:
        if s["status"] not in ("stopped", "failed"):
            teacher.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
            wait_status(teacher, ws, s["id"], ("stopped", "failed"), timeout=300)
    for volume in HOMES:
        subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)


HOMES: set[str] = set()


def remember_home(sid: str) -> None:
    """The home volume of a running session (its container's label), for the module's clean-up."""
    out = subprocess.run(["podman", "inspect", "--format", '{{index .Config.Labels "org.reprolab.session-home"}}',
                          f"reprolab-session-{sid}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    HOMES.add(out.stdout.strip())


def wait_status(client: Client, ws: str, sid: str, wanted: tuple[str, ...], timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = client.get(f"/workspaces/{ws}/sessions/{sid}")
        if s["status"] in wanted:
            return s
        assert s["status"] != "failed" or "failed" in wanted, s
        assert time.monotonic() < deadline, s
        time.sleep(0.3)


def connect(running, sid: str) -> runner_pb2.SessionConnection:
    """runner.session.connect as the gateway's proxy does (here as the operator identity)."""
    async def _call() -> runner_pb2.SessionConnection:
        nc = await nats.connect(running.platform.nats.url, user="operator",
                                password=running.platform.nats_credentials()["operator"])
        try:
            msg = await nc.request("runner.session.connect", runner_pb2.ConnectSessionRequest(
                session_id=sid).SerializeToString(), timeout=10)
        finally:
            await nc.close()
        reply = runner_pb2.SessionConnection()
        reply.ParseFromString(msg.data)
        return reply

    return asyncio.run(_call())


def execute(upstream: str, token: str, kernel_id: str, code: str, timeout: float = 60) -> tuple[str, str]:
    """Run ``code`` over the kernel's websocket (Jupyter's v5 JSON protocol); (stdout, reply status)."""
    ws = websocket.create_connection(
        upstream.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"], timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "t", "session": uuid.uuid4().hex,
                                       "msg_type": "execute_request", "version": "5.3"},
                            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                            "content": {"code": code, "silent": False, "store_history": False,
                                        "user_expressions": {}, "allow_stdin": False}}))
        out, status, idle = [], "", False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = json.loads(ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                out.append("\n".join(m["content"]["traceback"]))
            elif m["msg_type"] == "execute_reply":
                status = m["content"]["status"]
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                idle = True
            if status and idle:  # the reply (shell) and "idle" (iopub) may come in either order
                break
        return "".join(out), status
    finally:
        ws.close()


@pytest.mark.timeout(900)  # the first start builds the notebook layer (1-3 min on a busy machine)
def test_a_session_runs_the_environment_keeps_the_home_and_is_private(running, lab) -> None:
    ws, _teacher, (alice, bob) = lab
    t0 = time.monotonic()
    s = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    assert s["status"] == "starting" and s["version"] == 1 and s["url"] == f"/sessions/{s['id']}/"
    sid = s["id"]
    s = wait_status(alice, ws, sid, ("running",))
    remember_home(sid)
    print(f"first start (layer build included): {time.monotonic() - t0:.1f} s")
    assert s["idle_timeout_seconds"] == 3600 and s["cull_warning"] is False

    # a second session of the same environment is refused while this one is active
    with pytest.raises(ApiError) as exc:
        alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py"})
    assert exc.value.status == 409

    conn = connect(running, sid)
    upstream, token = conn.upstream_url, conn.server_token
    assert upstream.endswith(f"/sessions/{sid}/") and len(token) >= 32
    assert token not in json.dumps(alice.get(f"/workspaces/{ws}/sessions/{sid}"))
    assert token not in json.dumps(alice.get(f"/workspaces/{ws}/sessions"))

    # the notebook server answers with the token only
    assert httpx.get(f"{upstream}api/status").status_code == 403
    r = httpx.get(f"{upstream}api/status", headers={"Authorization": f"token {token}"})
    assert r.status_code == 200, r.text
    specs = httpx.get(f"{upstream}api/kernelspecs", headers={"Authorization": f"token {token}"}).json()
    assert specs["default"] == "python3" and list(specs["kernelspecs"]) == ["python3"], specs

    kernel = httpx.post(f"{upstream}api/kernels", json={"name": "python3"},
                        headers={"Authorization": f"token {token}"}, timeout=30).json()
    # the kernel imports the environment's six 1.16.0, not the 1.17.0 the notebook layer carries
    out, status = execute(upstream, token, kernel["id"], (
        "import os, six, sys, subprocess\n"
        "print('six', six.__version__, six.__file__)\n"
        "print('user', os.getuid(), os.getcwd())\n"
        "print('layer-after-env', sys.path.index('/opt/reprolab/session/site')"
        " > sys.path.index('/usr/local/lib/python3.11/dist-packages'))\n"
        "open(os.path.expanduser('~/kept.txt'), 'w').write('written in session 1')\n"
        "print('dists', subprocess.run([sys.executable, '-c', 'import importlib.metadata as m; print(sorted("
        "d.metadata[\\'Name\\'].lower() for d in m.distributions()))'], capture_output=True, text=True).stdout)\n"))
    assert status == "ok", out
    assert "six 1.16.0 /usr/local/lib/python3.11/dist-packages/six.py" in out, out
    assert "user 1000 /home/student" in out, out
    assert "layer-after-env True" in out, out
    # tools in the session (pip, env capture) see the environment only: the server's packages are not "installed"
    dists = next(line for line in out.splitlines() if line.startswith("dists"))
    assert "'six'" in dists and "jupyterlab" not in dists and "ipykernel" not in dists, out

    # another student: as if it did not exist
    for method in ("GET", "DELETE"):
        with pytest.raises(ApiError) as exc:
            bob.request(method, f"/workspaces/{ws}/sessions/{sid}")
        assert exc.value.status == 404
    assert all(x["id"] != sid for x in bob.get(f"/workspaces/{ws}/sessions")["items"])

    stopped = alice.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
    assert stopped["status"] in ("stopping", "stopped")
    wait_status(alice, ws, sid, ("stopped",), timeout=60)
    assert connect(running, sid).server_token == ""  # a stopped session has no upstream

    # a new session finds the file in the home
    t1 = time.monotonic()
    s2 = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py", "version": 1}, expect=(201,))
    wait_status(alice, ws, s2["id"], ("running",), timeout=180)
    print(f"second start (layer cached): {time.monotonic() - t1:.1f} s")
    conn2 = connect(running, s2["id"])
    r = httpx.get(f"{conn2.upstream_url}api/contents/kept.txt",
                  headers={"Authorization": f"token {conn2.server_token}"})
    assert r.status_code == 200 and r.json()["content"] == "written in session 1", r.text
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s2['id']}")
    wait_status(alice, ws, s2["id"], ("stopped",), timeout=60)
    names = subprocess.run(["podman", "--url", f"unix://{running.platform.podman_socket}", "ps", "-a",
                            "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
    assert f"reprolab-session-{s2['id']}" not in names


@pytest.mark.timeout(600)
def test_an_idle_session_is_warned_then_culled_and_keeps_its_files(running, lab) -> None:
    ws, teacher, (_alice, bob) = lab
    # students cannot change the workspace's session settings
    with pytest.raises(ApiError) as exc:
        bob.request("PUT", f"/workspaces/{ws}/session-settings", json={"idle_timeout_seconds": 10})
    assert exc.value.status == 403
    with pytest.raises(ApiError) as exc:
        teacher.request("PUT", f"/workspaces/{ws}/session-settings", json={"idle_timeout_seconds": 3})
    assert exc.value.status == 422
    teacher.request("PUT", f"/workspaces/{ws}/session-settings",
                    json={"idle_timeout_seconds": 20, "max_per_environment": 1, "network": "none"})
    s = bob.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    assert s["idle_timeout_seconds"] == 20 and s["network"] == "none"
    s = wait_status(bob, ws, s["id"], ("running",), timeout=180)
    remember_home(s["id"])
    conn = connect(running, s["id"])
    r = httpx.put(f"{conn.upstream_url}api/contents/draft.txt", headers={"Authorization": f"token {conn.server_token}"},
                  json={"type": "file", "format": "text", "content": "unsaved work"})
    assert r.status_code in (200, 201), r.text
    seen_warning = False
    deadline = time.monotonic() + 120
    while True:
        s = bob.get(f"/workspaces/{ws}/sessions/{s['id']}")
        seen_warning |= s["cull_warning"]
        if s["status"] == "stopped":
            break
        assert time.monotonic() < deadline, s
        time.sleep(0.5)
    assert seen_warning, "the session was stopped without a warning first"
    # the file written before the cull is in the next session's home
    s2 = bob.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    wait_status(bob, ws, s2["id"], ("running",), timeout=180)
    conn2 = connect(running, s2["id"])
    r = httpx.get(f"{conn2.upstream_url}api/contents/draft.txt",
                  headers={"Authorization": f"token {conn2.server_token}"})
    assert r.status_code == 200 and r.json()["content"] == "unsaved work", r.text
    bob.request("DELETE", f"/workspaces/{ws}/sessions/{s2['id']}")
    wait_status(bob, ws, s2["id"], ("stopped",), timeout=60)
