"""Replicate what a student changed, through the whole platform: build an environment, run its image,
install a package inside as the student, ``reprolab env capture --submit`` → a derived version is
built and contains the package; the activity log links the captured changes to the new version; the
agent's own sync and a run's inside activity reach the activity log too."""

from __future__ import annotations

import hashlib
import io
import json
import re
import ssl
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import httpx
from reprolab_cli.client import Client

from .conftest import registry_creds

BASE = "localhost/reprolab/bookworm-python:latest"
CA = "/etc/ssl/certs/ca-certificates.crt"


def pypi_wheel(dest: Path, name: str, version: str) -> Path:
    """A real wheel from PyPI's simple index, fetched on the host: the container installs it offline."""
    ctx = ssl.create_default_context(cafile=CA) if Path(CA).exists() else True
    filename = f"{name}-{version}-py3-none-any.whl"
    page = httpx.get(f"https://pypi.org/simple/{name}/", verify=ctx, timeout=60, follow_redirects=True).text
    url = re.search(rf'href="([^"]*/{re.escape(filename)})#sha256=([0-9a-f]{{64}})"', page)
    assert url, f"{filename} is not on PyPI's simple index"
    data = httpx.get(url.group(1), verify=ctx, timeout=120, follow_redirects=True).content
    assert hashlib.sha256(data).hexdigest() == url.group(2)
    path = dest / filename
    path.write_bytes(data)
    return path


def token_of(client: Client) -> str:
    return client.http.headers["Authorization"].removeprefix("Bearer ")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=600)
    assert not check or proc.returncode == 0, f"podman {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc


def wait_build(client: Client, build: dict, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while build["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, build
        time.sleep(0.5)
        build = client.get(f"/builds/{build['id']}")
    return build


def activity(client: Client, ws: str, *, want, timeout: float = 60, **params) -> list[dict]:
    """Activity entries matching ``params`` once ``want(items)`` holds (the audit consumer is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.get(f"/workspaces/{ws}/activity", params={"limit": 1000, **params})["items"]
        if want(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.5)


def agent_entry(item: dict) -> dict:
    payload = item["event"]["details"]  # the AgentEntry payload (proto field names)
    return {**payload, "details": json.loads(payload["details_json"])}


def test_capture_submit_builds_a_version_with_the_students_additions(running, course, base_image, tmp_path):
    ws, (_, instructor), (sname, student) = course
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["pip==24.2"]}}})
    build = wait_build(instructor, instructor.post(f"/workspaces/{ws}/environments/py/versions/1/builds",
                                                   expect=(202,)))
    assert build["status"] == "succeeded", build
    image = instructor.get(f"/workspaces/{ws}/environments/py/versions/1")["image_ref"]
    podman("pull", "--tls-verify=false", *registry_creds(instructor), image)

    # the student works in a container of v1 (its entrypoint drops to the student) and adds idna
    token = token_of(student)
    name = f"reprolab-capture-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--network=host", "-e", f"REPROLAB_URL={running.platform.url}",
           "-e", f"REPROLAB_WORKSPACE={ws}", "-e", f"REPROLAB_TOKEN={token}", image, "sleep", "infinity")
    new_image = ""
    try:
        wheel = pypi_wheel(tmp_path, "idna", "3.7")
        podman("cp", str(wheel), f"{name}:/tmp/{wheel.name}")
        podman("exec", name, "chmod", "0644", f"/tmp/{wheel.name}")
        as_student = ["exec", "-u", "student", "-e", "HOME=/home/student", name]
        podman(*as_student, "pip", "install", "--user", "--no-index", "--break-system-packages", f"/tmp/{wheel.name}")

        # the agent's own sync (inside, with the student's token) puts the chain in the activity log
        synced = podman(*as_student, "reprolab", "activity", "sync")
        assert "synced" in synced.stdout, synced.stderr
        installs = activity(student, ws, type="agent.install", want=lambda items: len(items) >= 1)
        assert len(installs) == 1 and installs[0]["actor_name"] == sname
        assert agent_entry(installs[0])["details"]["changes"]["python"]["added"] == {"idna": "3.7"}

        # capture and submit with the CLI: the student cannot change the instructor's env → a fork
        reprolab = str(Path(sys.executable).with_name("reprolab"))
        cli = subprocess.run([reprolab, "env", "capture", ws, "py", "--container", name, "--submit", "--json",
                              "--url", running.platform.url, "--token", token],
                             capture_output=True, text=True, timeout=1800)
        assert cli.returncode == 0, cli.stderr[-3000:]
        result = json.loads(cli.stdout)
        assert result["changes"] == {"python": {"added": {"idna": "3.7"}}}
        assert result["source"] == f"{ws}/py/v1" and result["build"]["status"] == "succeeded"
        fork, number = result["version"].split("/")[1], int(result["version"].rsplit("/v", 1)[1])
        assert fork != "py"
        version = student.get(f"/workspaces/{ws}/environments/{fork}/versions/{number}")
        assert "idna==3.7" in version["spec"]["python"]["requirements"]
        assert "captured from container" in version["note"] and result["chain"]["id"] in version["note"]

        # the new image has the student's addition, installed by the build
        new_image = version["image_ref"]
        podman("pull", "--tls-verify=false", *registry_creds(student), new_image)
        out = podman("run", "--rm", "--network=none", new_image, "python3", "-c",
                     "import idna, os; print(idna.__version__, os.getuid())").stdout.split()
        assert out == ["3.7", "1000"]

        # the activity log links the captured changes to the new version; a second sync adds nothing
        links = activity(student, ws, type="agent.capture.submitted", want=lambda items: len(items) >= 1)
        assert len(links) == 1
        link = agent_entry(links[0])["details"]
        assert link["version"] == result["version"] and link["changes"]["python"]["added"] == {"idna": "3.7"}
        assert link["captured_seq"] == result["chain"]["seq"]
        assert links[0]["subject"] == f"containers/{result['chain']['id']}"
        podman(*as_student, "reprolab", "activity", "sync")
        time.sleep(2)
        assert len(activity(student, ws, type="agent.install", want=lambda items: False, timeout=0)) == 1
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
        for ref in (image, new_image):
            if ref:
                podman("rmi", "-f", ref, check=False)


def test_sync_refuses_an_edited_chain_and_non_members(running, course):
    ws, _, (_, student) = course
    chain = "ab" * 16

    def canonical(v):
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    prev = hashlib.sha256(f"reprolab-agent/1:{chain}".encode()).hexdigest()
    body = {"chain": chain, "seq": 1, "time": "2026-01-01T00:00:00Z", "kind": "note", "details": {"text": "a"}}
    entry = {**body, "prev": prev, "hash": hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()}
    ok = student.post(f"/workspaces/{ws}/activity/agent", json={"entries": [entry]})
    assert ok == {"chain": chain, "entries": 1, "published": 1}
    edited = {**entry, "details": {"text": "b"}}
    resp = httpx.post(f"{running.platform.url}/api/v1/workspaces/{ws}/activity/agent",
                      json={"entries": [edited]}, headers={"Authorization": f"Bearer {token_of(student)}"})
    assert resp.status_code == 422 and "hash does not match" in resp.json()["detail"]
    resp = httpx.post(f"{running.platform.url}/api/v1/workspaces/{ws}/activity/agent",
                      json={"entries": [{"seq": 1}]}, headers={"Authorization": f"Bearer {token_of(student)}"})
    assert resp.status_code == 422 and "entry 1" in resp.json()["detail"]
    _, outsider = running.user("out")
    resp = httpx.post(f"{running.platform.url}/api/v1/workspaces/{ws}/activity/agent",
                      json={"entries": [entry]}, headers={"Authorization": f"Bearer {token_of(outsider)}"})
    assert resp.status_code == 404


def test_a_run_that_records_inside_shows_it_in_the_runs_activity(running, course, base_image):
    ws, (_, instructor), (_, student) = course
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = wait_build(instructor, instructor.post(f"/workspaces/{ws}/environments/py/versions/1/builds",
                                                   expect=(202,)))
    assert build["status"] == "succeeded", build
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"import six\nprint('six', six.__version__)\n"
        info = tarfile.TarInfo("main.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    code = student.request("POST", f"/workspaces/{ws}/code", content=buf.getvalue(), expect=(201,))
    run = student.request("POST", f"/workspaces/{ws}/runs", expect=(202,), json={
        "environment": "py", "code": code["digest"], "command": ["reprolab", "run", "--", "python3", "main.py"]})
    deadline = time.monotonic() + 300
    while (run := student.get(f"/runs/{run['id']}"))["status"] not in ("succeeded", "failed", "cancelled",
                                                                         "timed_out"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert run["status"] == "succeeded", run
    items = activity(student, ws, subject=f"runs/{run['id']}",
                     want=lambda items: any(i["type"] == "agent.run.end" for i in items))
    kinds = [i["type"] for i in items]
    assert "agent.run.start" in kinds and "agent.run.end" in kinds, kinds
    end = agent_entry(next(i for i in items if i["type"] == "agent.run.end"))
    assert end["details"]["exit"] == 0 and end["details"]["command"] == ["python3", "main.py"]
    assert end["details"]["uid"] == 65534 and end["chain_ok"] is True and end["run_id"] == run["id"]
    # the chain is activity, not an output of the run
    names = [f["name"] for f in student.get(f"/runs/{run['id']}/outputs")["files"]]
    assert not any(n.startswith(".reprolab") for n in names), names
