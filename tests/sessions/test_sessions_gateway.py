"""A session's whole life through the gateway only (issue 12): started with the REST API, used through the
gateway's ``/sessions/{id}/`` proxy (HTTP and a kernel websocket with Jupyter's v1 subprotocol running a cell
that imports the environment's package), stopped, started again with the home's file still there.

Everything is real: the platform's gateway (uvicorn, its ``RunnerResolver`` asking the runner over NATS), the
runner, the builder (the notebook layer), podman and the notebook server in the version's image. The test
never reads the server's token: it holds only what a student holds, their platform token.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid

import httpx
import pytest
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
from reprolab_cli.client import Client
from websockets.sync.client import connect

BASE = "localhost/reprolab/bookworm-python:latest"
SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def gw_lab(running, base_image):
    """A workspace with a built environment (six pinned) and two students, with their raw tokens."""
    _, teacher = running.user("gt")
    ws = running.workspace(teacher, "gws")
    students = []
    for _ in range(2):
        name = f"gs-{uuid.uuid4().hex[:8]}"
        token = running.admin.post("/users", json={"username": name})["token"]
        teacher.post(f"/workspaces/{ws}/members", json={"username": name, "role": "student"})
        students.append((running.admin.as_user(token), token))
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    homes: set[str] = set()
    yield ws, teacher, students, homes
    for s in teacher.get(f"/workspaces/{ws}/sessions")["items"]:
        if s["status"] not in ("stopped", "failed"):
            teacher.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
            wait_status(teacher, ws, s["id"], ("stopped", "failed"), timeout=300)
    for volume in homes:
        subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)


def wait_status(client: Client, ws: str, sid: str, wanted: tuple[str, ...], timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = client.get(f"/workspaces/{ws}/sessions/{sid}")
        if s["status"] in wanted:
            return s
        assert s["status"] != "failed" or "failed" in wanted, s
        assert time.monotonic() < deadline, s
        time.sleep(0.3)


def home_of(sid: str) -> str:
    out = subprocess.run(["podman", "inspect", "--format", '{{index .Config.Labels "org.reprolab.session-home"}}',
                          f"reprolab-session-{sid}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def run_cell(url: str, token: str, code: str, timeout: float = 120) -> tuple[str, str]:
    """One execute_request over the kernel websocket in v1 binary frames; (stdout, reply status)."""
    with connect(url, open_timeout=90, additional_headers=bearer(token), subprotocols=[SUBPROTOCOL]) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "t", "session": uuid.uuid4().hex,
                  "date": "2026-01-01T00:00:00Z", "version": "5.3"}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        ws.send(serialize_msg_to_ws_v1([json.dumps(x).encode() for x in (header, {}, {}, content)], "shell"))
        out, status, idle = "", "", False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = ws.recv(timeout=max(1.0, deadline - time.monotonic()))
            assert isinstance(frame, bytes), "the v1 protocol is binary frames"
            _, parts = deserialize_msg_from_ws_v1(frame)
            head, parent, body = json.loads(parts[0]), json.loads(parts[1]), json.loads(parts[3])
            if parent.get("msg_id") != msg_id:
                continue
            if head["msg_type"] == "stream":
                out += body["text"]
            elif head["msg_type"] == "error":
                out += "\n".join(body["traceback"])
            elif head["msg_type"] == "execute_reply":
                status = body["status"]
            elif head["msg_type"] == "status" and body["execution_state"] == "idle":
                idle = True
            # the reply comes on the shell channel and "idle" on iopub: either may arrive first
            if status and idle:
                return out, status
        raise AssertionError(f"no reply within {timeout} s: {out!r}")


def cell_details(event: object) -> dict:
    """The agent entry's details (a JSON text inside the event) wherever the event's JSON keeps it."""
    if isinstance(event, dict):
        for key, value in event.items():
            if key in ("detailsJson", "details_json") and isinstance(value, str):
                return json.loads(value)
            if isinstance(value, dict | list) and (found := cell_details(value)):
                return found
    elif isinstance(event, list):
        for value in event:
            if found := cell_details(value):
                return found
    return {}


@pytest.mark.timeout(900)  # the first start may build the notebook layer
def test_a_session_started_and_used_through_the_gateway_keeps_its_home(running, gw_lab) -> None:
    ws, teacher, ((alice, alice_token), (bob, bob_token)), homes = gw_lab
    gw = running.platform.url.rstrip("/")
    s = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    sid = s["id"]
    wait_status(alice, ws, sid, ("running",))
    homes.add(home_of(sid))
    base = f"{gw}/sessions/{sid}/"

    with httpx.Client(timeout=60) as c:
        status = c.get(base + "api/status", headers=bearer(alice_token))
        assert status.status_code == 200 and "started" in status.json(), status.text
        # JupyterLab's own page answers through the proxy, with the session's CSP
        lab = c.get(base + "lab", headers=bearer(alice_token))
        assert lab.status_code == 200 and "jupyter-config-data" in lab.text, lab.text[:500]
        assert lab.headers["content-security-policy"].startswith("default-src 'self'")
        # another student and nobody: as if there were no such session
        assert c.get(base + "api/status", headers=bearer(bob_token)).status_code == 404
        assert c.get(base + "api/status").status_code in (401, 403, 404)
        # an instructor only when the workspace's policy lets instructors open students' sessions
        helper = f"gi-{uuid.uuid4().hex[:8]}"
        helper_token = running.admin.post("/users", json={"username": helper})["token"]
        teacher.post(f"/workspaces/{ws}/members", json={"username": helper, "role": "instructor"})
        assert c.get(base + "api/status", headers=bearer(helper_token)).status_code == 404
        policy = teacher.get(f"/workspaces/{ws}/session-settings")
        assert policy["instructors_may_open"] is False
        for allowed, status in ((True, 200), (False, 404)):
            teacher.request("PUT", f"/workspaces/{ws}/session-settings",
                            json={**policy, "instructors_may_open": allowed})
            deadline = time.monotonic() + 30  # the gateway keeps a session's address for a few seconds
            while (got := c.get(base + "api/status", headers=bearer(helper_token)).status_code) != status:
                assert time.monotonic() < deadline, (allowed, got)
                time.sleep(0.5)
        # a student cannot change the policy
        assert bob.response("PUT", f"/workspaces/{ws}/session-settings", expect=(403,),
                            json={**policy, "instructors_may_open": True}).status_code == 403
        kernel = c.post(base + "api/kernels", headers=bearer(alice_token), json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        kid = kernel.json()["id"]

    cell = ("import os, six\n"
            "print('six', six.__version__)\n"
            "open(os.path.expanduser('~/kept.txt'), 'w').write('written through the gateway')\n")
    out, status = run_cell(base.replace("http", "ws", 1) + f"api/kernels/{kid}/channels", alice_token, cell)
    assert status == "ok", out
    assert "six 1.16.0" in out, out

    # the cell reaches the workspace's activity log while the session runs (the runner syncs the agent's
    # chain every culling pass), with its code digest, kernel and status; and the student's export has it
    digest = hashlib.sha256(cell.encode()).hexdigest()
    deadline = time.monotonic() + 90
    while True:
        items = alice.get(f"/workspaces/{ws}/activity", params={"type": "agent.cell",
                                                                "subject": f"sessions/{sid}"})["items"]
        if items:
            break
        assert time.monotonic() < deadline, "the executed cell never reached the activity log"
        time.sleep(1)
    details = cell_details(items[0]["event"])
    assert details["code_sha256"] == digest and details["status"] == "ok", details
    assert details["kernel"] and len(details["output_sha256"]) == 64, details
    assert items[0]["actor_name"] == alice.get("/me")["username"]
    with httpx.Client(timeout=60) as c:
        export = c.get(f"{gw}/api/v1/workspaces/{ws}/activity/export", headers=bearer(alice_token))
        assert export.status_code == 200 and digest in export.text

    alice.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
    wait_status(alice, ws, sid, ("stopped",), timeout=120)
    with httpx.Client(timeout=30) as c:
        gone = c.get(base + "api/status", headers=bearer(alice_token))
        assert gone.status_code == 404 and gone.headers["content-type"].startswith("application/problem+json")

    t0 = time.monotonic()
    s2 = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py", "version": 1}, expect=(201,))
    with httpx.Client(timeout=30) as c:  # click to ready: the POST until JupyterLab answers through the gateway
        while c.get(f"{gw}/sessions/{s2['id']}/api/status", headers=bearer(alice_token)).status_code != 200:
            assert time.monotonic() - t0 < 180
            time.sleep(0.1)
    print(f"click-to-ready through the gateway (layer cached): {time.monotonic() - t0:.2f} s")
    assert wait_status(alice, ws, s2["id"], ("running",), timeout=10)["status"] == "running"
    assert home_of(s2["id"]) in homes  # the same home volume
    with httpx.Client(timeout=60) as c:
        kept = c.get(f"{gw}/sessions/{s2['id']}/api/contents/kept.txt", headers=bearer(alice_token))
        assert kept.status_code == 200 and kept.json()["content"] == "written through the gateway", kept.text
        # the old session's address does not lead to the new one
        assert c.get(base + "api/status", headers=bearer(alice_token)).status_code == 404
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s2['id']}")
    wait_status(alice, ws, s2["id"], ("stopped",), timeout=120)


@pytest.mark.timeout(600)
def test_the_kubernetes_session_pod_runs_as_rendered_with_podman_kube_play(running, gw_lab, tmp_path) -> None:
    """The Pod ``manifests.pod`` renders for a session (restricted: uid 1000 from the start, read-only root,
    no capabilities, /tmp an emptyDir, the home a claim, the token from the Secret) executed by ``podman kube
    play`` with the very session image the platform built: JupyterLab answers with the token only, runs as
    1000, writes its file to the claim, and a second pod on the same claim finds it. Changes for podman are
    kubeplay.CHANGES' only (secretKeyRef made literal, ports dropped, emptyDirs per pod); the pod runs on
    podman's bridge. Its activity container is test_sessions_k8s_pod.py's."""
    from reprolab_runner.sessions import manifests
    from reprolab_runner.sessions.targets import PORT, SessionSpec

    from ..kube import kubeplay

    ws, _teacher, ((alice, _), _bob), homes = gw_lab
    s = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    wait_status(alice, ws, s["id"], ("running",), timeout=600)
    homes.add(home_of(s["id"]))
    image = subprocess.run(["podman", "inspect", "--format", "{{.ImageName}}", f"reprolab-session-{s['id']}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
    wait_status(alice, ws, s["id"], ("stopped",), timeout=120)

    home_key = uuid.uuid4().hex[:20]
    claim = manifests.claim_name(home_key)
    played: list[str] = []
    secrets: list[str] = []
    try:
        for round_ in (1, 2):
            sid = f"k{uuid.uuid4().hex[:10]}"
            spec = SessionSpec(session_id=sid, workspace=ws, owner_id="u1", image=image, token=uuid.uuid4().hex * 2,
                               cpu_millis=1000, memory_bytes=1 << 30, pids=512, network="index")
            secret = manifests.token_secret(spec, namespace="default", installation="kp", home_key=home_key,
                                            agent_token=uuid.uuid4().hex)
            values = {secret["metadata"]["name"]: kubeplay.secret_values(secret)}
            secrets += kubeplay.create_secrets(values, tmp_path)
            pod = kubeplay.for_podman(manifests.pod(spec, namespace="default", installation="kp", home_key=home_key),
                                      secrets=values)
            kubeplay.per_pod_empty_dirs(pod, tmp_path)
            name = kubeplay.play(pod, tmp_path, args=())
            played.append(name)
            assert kubeplay.process_user(name, manifests.CONTAINER) in ("1000:1000", "1000")
            address = ""
            deadline = time.monotonic() + 180
            url = ""
            while True:
                st = kubeplay.state(name, manifests.CONTAINER)
                assert st.get("Status") in ("running", "created", "configured", ""), \
                    (st, kubeplay.logs(name, manifests.CONTAINER))
                if not address:
                    address = subprocess.run(
                        ["podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                         f"{name}-{manifests.CONTAINER}"], capture_output=True, text=True).stdout.strip()
                    url = f"http://{address}:{PORT}/sessions/{sid}/"
                try:
                    if address and httpx.get(url + "api/status", headers={"Authorization": f"token {spec.token}"},
                                             timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, kubeplay.logs(name, manifests.CONTAINER)
                time.sleep(0.5)
            auth = {"Authorization": f"token {spec.token}"}
            assert httpx.get(url + "api/status", timeout=10).status_code == 403  # the token only
            # a kernel starts under the read-only root (its runtime files go to the home and /tmp)
            kernel = httpx.post(url + "api/kernels", headers=auth, json={"name": "python3"}, timeout=60)
            assert kernel.status_code == 201, (kernel.text, kubeplay.logs(name, manifests.CONTAINER))
            if round_ == 1:
                r = httpx.put(url + "api/contents/on-claim.txt", headers=auth, timeout=30,
                              json={"type": "file", "format": "text", "content": "kept on the claim"})
                assert r.status_code in (200, 201), r.text
            else:
                r = httpx.get(url + "api/contents/on-claim.txt", headers=auth, timeout=30)
                assert r.status_code == 200 and r.json()["content"] == "kept on the claim", r.text
            kubeplay.down(name)
    finally:
        for name in played:
            kubeplay.down(name)
        kubeplay.remove_secrets(secrets)
        kubeplay.remove_volumes([claim])
