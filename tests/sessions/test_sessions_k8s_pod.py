"""A Kubernetes session pod, both containers, executed with ``podman kube play`` (issue 12 item 6 and 7 on the
``kubernetes`` target): cells and installs are recorded by the ``activity`` container (uid 65534, same image)
and the runner reads the chain and the capture from it over HTTP, without ``pods/exec``.

The runner's ``KubernetesSessions`` creates the session's objects in a FAKE Kubernetes API server (kmock's
emulator); the Pod and Secret it created are then played for real with the very session image the platform
built (an environment with pip; its notebook layer built by the builder). Changes for podman are
``kubeplay.CHANGES``' only: the Secret's keys become literal env values, ports are dropped, each emptyDir
becomes a fresh 0777 directory of this pod, as the kubelet makes them. The pod runs on podman's bridge, and
the runner's address of the activity container is the pod's address there instead of the Service's DNS name.

Everything else is real: JupyterLab and its kernel in the image, a cell over the kernel websocket recorded by
the layer's IPython extension through the agent's socket, ``pip install --user`` of a local wheel (no
network) through the agent's pip wrapper, agentd serving /chain and /capture.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from reprolab_common.capture import parse_capture
from reprolab_runner.sessions import activity, manifests
from reprolab_runner.sessions.targets import PORT, SessionSpec

from ..builder.pep503 import make_wheel
from ..chart.podsecurity import restricted_violations
from ..kube import kubeplay
from .test_sessions_gateway import bearer, home_of, run_cell, wait_status
from .test_sessions_k8s import PODS, SECRETS, fake_k8s, make_target  # noqa: F401 - fake_k8s is a fixture

BASE = "localhost/reprolab/bookworm-python:latest"
PKG, PKG_VERSION = "rl-k8scap", "2.1"
# pip is not in the base image: the environment declares it, as a course that lets students install would
SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0", "pip==24.2"]}}
pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def session_image(running, base_image) -> str:
    """The session image the platform builds for a version (the builder's notebook layer, with agentd.py),
    found by starting one local session of it."""
    _, teacher = running.user("kt")
    ws = running.workspace(teacher, "kpod")
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    s = teacher.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    wait_status(teacher, ws, s["id"], ("running",), timeout=600)
    home = home_of(s["id"])
    image = subprocess.run(["podman", "inspect", "--format", "{{.ImageName}}", f"reprolab-session-{s['id']}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    teacher.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
    wait_status(teacher, ws, s["id"], ("stopped",), timeout=120)
    subprocess.run(["podman", "volume", "rm", "-f", home], capture_output=True)
    return image


def in_container(pod: str, container: str, script: str) -> subprocess.CompletedProcess:
    """``sh -c script`` in a container of the played pod, as its own user (what the student's terminal does)."""
    return subprocess.run(["podman", "exec", f"{pod}-{container}", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60)


def wait_served(played: str, sid: str, token: str) -> str:
    """The pod's address once JupyterLab answers with its token."""
    deadline = time.monotonic() + 180
    address = ""
    while True:
        for container in (manifests.AGENT_CONTAINER, manifests.CONTAINER):
            st = kubeplay.state(played, container)
            assert st.get("Status") in ("running", "created", "configured", ""), \
                (container, st, kubeplay.logs(played, container))
        if not address:
            address = subprocess.run(
                ["podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                 f"{played}-{manifests.CONTAINER}"], capture_output=True, text=True).stdout.strip()
        try:
            if address and httpx.get(f"http://{address}:{PORT}/sessions/{sid}/api/status", headers=bearer(token),
                                     timeout=5).status_code == 200:
                return address
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, kubeplay.logs(played, manifests.CONTAINER)
        time.sleep(0.5)


def scenario(kmock: Any, image: str, workdir: Path) -> None:
    addresses: dict[str, str] = {}
    target = make_target(kmock)
    target._agent_url = lambda name: addresses[name]  # the pod's address on podman's bridge, not the Service's
    sid = f"k{uuid.uuid4().hex[:10]}"
    spec = SessionSpec(session_id=sid, workspace="kpod", owner_id="u1", image=image, token=uuid.uuid4().hex * 2,
                       cpu_millis=1000, memory_bytes=1 << 30, pids=512, network="index")
    started = target.start(spec)
    name = started.handle.split("/", 1)[1]
    rendered = json.loads(json.dumps(kmock.objects[PODS, "sessions", name].raw))
    assert restricted_violations(rendered["spec"]) == []
    secret = kmock.objects[SECRETS, "sessions", name].raw
    values = {name: kubeplay.secret_values(secret)}
    pod = kubeplay.for_podman(rendered, secrets=values)
    kubeplay.per_pod_empty_dirs(pod, workdir)
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                 if "persistentVolumeClaim" in v)
    played = kubeplay.play(pod, workdir, args=())
    try:
        address = wait_served(played, sid, spec.token)
        assert kubeplay.process_user(played, manifests.CONTAINER) in ("1000:1000", "1000")
        assert kubeplay.process_user(played, manifests.AGENT_CONTAINER) in ("65534:65534", "65534")
        addresses[name] = f"http://{address}:{manifests.AGENT_PORT}"
        base = f"http://{address}:{PORT}/sessions/{sid}/"
        auth = bearer(spec.token)

        # a wheel uploaded into the home (as JupyterLab's upload does), a cell, then pip in a cell
        wheel = make_wheel(workdir / "wheels", PKG, PKG_VERSION, body="VERSION = 'k8s 2.1'\n")
        up = httpx.put(base + f"api/contents/{wheel.name}", headers=auth, timeout=60, json={
            "type": "file", "format": "base64", "content": base64.b64encode(wheel.read_bytes()).decode()})
        assert up.status_code in (200, 201), up.text
        kernel = httpx.post(base + "api/kernels", headers=auth, json={"name": "python3"}, timeout=60)
        assert kernel.status_code == 201, (kernel.text, kubeplay.logs(played, manifests.CONTAINER))
        url = base.replace("http", "ws", 1) + f"api/kernels/{kernel.json()['id']}/channels"
        out, status = run_cell(url, spec.token, "import six; print('six', six.__version__)", timeout=90)
        assert status == "ok" and "six 1.16.0" in out, out
        cell = ("import subprocess, os\n"
                "p = subprocess.run(['pip', 'install', '--user', '--no-index', '--break-system-packages', "
                f"os.path.expanduser('~/{wheel.name}')], capture_output=True, text=True)\n"
                "print('pip exit', p.returncode, p.stdout[-300:], p.stderr[-600:])\n")
        out, status = run_cell(url, spec.token, cell, timeout=120)
        assert status == "ok" and "pip exit 0" in out, out
        # where it landed: the home (the claim), the only writable place pip knows of under a read-only root
        landed = in_container(played, manifests.CONTAINER, "ls -d ~/.local/lib/python3*/site-packages/rl_k8scap")
        assert landed.returncode == 0, landed.stderr

        # GET /chain through the runner's target: it verifies, and holds the session, both cells and the install
        deadline = time.monotonic() + 30
        while True:
            entries, ok = activity.parse(target.activity_chain(started.handle))
            kinds = [e["kind"] for e in entries]
            if kinds.count("cell") >= 2 and "install" in kinds:
                break
            assert time.monotonic() < deadline, (kinds, kubeplay.logs(played, manifests.AGENT_CONTAINER))
            time.sleep(0.3)
        assert ok and kinds[:2] == ["chain.started", "session"], kinds
        assert entries[0]["details"]["image"]["lock_digest"].startswith("sha256:")
        cells = [e["details"] for e in entries if e["kind"] == "cell"]
        assert all(c["uid"] == 1000 and c["status"] == "ok" for c in cells), cells
        assert cells[0]["preview"].startswith("import six")
        (install,) = [e["details"] for e in entries if e["kind"] == "install"]
        assert install["uid"] == 1000 and install["exit"] == 0, install
        assert install["changes"] == {"python": {"added": {PKG: PKG_VERSION}}}, install

        # GET /capture: `reprolab env capture --json` against the lock, from the read-only view of the home
        raw = target.capture(started.handle)
        doc = json.loads(raw)
        assert parse_capture(raw)["changes"] == doc["changes"]  # what the runner's API accepts (sessions/api.py)
        assert doc["format"] == "reprolab-capture/1"
        assert doc["changes"] == {"python": {"added": {PKG: PKG_VERSION}}}, doc["changes"]
        assert f"{PKG}=={PKG_VERSION}" in doc["proposed_spec"]["python"]["requirements"]
        assert {"six==1.16.0", "pip==24.2"} <= set(doc["proposed_spec"]["python"]["requirements"])
        assert doc["chain"] == {"id": entries[-1]["chain"], "seq": entries[-1]["seq"], "hash": entries[-1]["hash"]}

        # the student cannot touch the chain: it is not in their container, its path cannot be made there,
        # the socket's directory is read-only, and the recorder's port wants a token they do not have
        for script, why in (
                ("cat /var/lib/reprolab-activity/activity.jsonl", "No such file"),
                ("mkdir -p /var/lib/reprolab-activity && echo forged >> /var/lib/reprolab-activity/activity.jsonl",
                 "Read-only file system"),
                ("rm -f /run/reprolab/agent.sock", "Read-only file system"),
                ("echo x > /run/reprolab/fake.sock", "Read-only file system")):
            r = in_container(played, manifests.CONTAINER, script)
            assert r.returncode != 0 and why in r.stderr, (script, r.returncode, r.stderr)
        r = in_container(played, manifests.CONTAINER, "env")
        assert r.returncode == 0 and "REPROLAB_AGENT_TOKEN" not in r.stdout
        probe = ("python3 -c \"import urllib.request as u, urllib.error as e\n"
                 f"try: u.urlopen('http://127.0.0.1:{manifests.AGENT_PORT}/chain')\n"
                 "except e.HTTPError as x: print(x.code)\"")
        r = in_container(played, manifests.CONTAINER, probe)
        assert r.stdout.strip() == "401", (r.stdout, r.stderr)
        # the recorder sees the home but cannot change it
        r = in_container(played, manifests.AGENT_CONTAINER, "touch /home/student/from-the-recorder")
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
        after = target.activity_chain(started.handle)
        entries2, ok2 = activity.parse(after)
        assert ok2 and entries2[: len(entries)] == entries  # nothing chained changed

        target.stop(started.handle)
        assert target.activity_chain(started.handle) == b""  # the Secret is gone with the session
    finally:
        kubeplay.down(played)
        kubeplay.remove_volumes([claim])


@pytest.mark.timeout(600)
async def test_the_activity_container_records_cells_and_installs_and_serves_chain_and_capture(
        running, session_image, fake_k8s, tmp_path) -> None:  # noqa: F811 - the fixture imported above
    t0 = time.monotonic()
    await asyncio.to_thread(scenario, fake_k8s, session_image, tmp_path)  # the FAKE serves on this loop
    print(f"pod played, recorded and captured in {time.monotonic() - t0:.1f} s")
