"""Builds through the whole platform: REST → builder (lock, JOBS, buildah) → OCI registry → registry.

Real parts: the offline Debian base image, buildah, the CNCF registry, PyPI for wheels.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
import pytest
from reprolab_cli.client import ApiError, Client

from .conftest import registry_creds, registry_headers

BASE = "localhost/reprolab/bookworm-python:latest"


def spec(*reqs: str, base: str = BASE, marker: str = "") -> dict:
    """``marker`` (a file in the image) makes a lock no other test shares: identical locks join one build."""
    doc = {"base": base, "python": {"version": "3.11", "requirements": list(reqs)}}
    if marker:
        doc["files"] = [{"path": "marker.txt", "content": marker}]
    return doc


def wait_build(client: Client, build_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        build = client.get(f"/builds/{build_id}")
        if build["status"] in ("succeeded", "failed"):
            return build
        assert time.monotonic() < deadline, build
        time.sleep(0.5)


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def instructor(running, base_image):
    name, teacher = running.user("bt")
    ws = running.workspace(teacher, "bws")
    return ws, teacher


def test_build_pull_run_derive_and_join(running, instructor) -> None:
    ws, teacher = instructor
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "tiny", "spec": spec("six==1.16.0", marker=ws)})
    url = f"/workspaces/{ws}/environments/tiny/versions/1/builds"
    # two identical requests at once join one build
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(teacher.post(url, expect=(202,)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r["id"] for r in results}) == 1 and sorted(r["joined"] for r in results) == [False, True]
    build_id = results[0]["id"]
    # the live log (SSE) replays from the first line and ends with the status
    lines = list(teacher.sse(f"/builds/{build_id}/logs"))
    assert any("pushed" in line for line in lines), lines[-5:]
    build = wait_build(teacher, build_id)
    assert build["status"] == "succeeded", build
    assert build["image_ref"] == f"{running.platform.registry.address}/{ws}/tiny:v1"
    v1 = teacher.get(f"/workspaces/{ws}/environments/tiny/versions/1")
    assert v1["image_digest"] == build["image_digest"] and v1["lock_digest"] == build["lock_digest"]
    lock = teacher.http.get(f"/builds/{build_id}/lock")
    assert lock.headers["Reprolab-Lock-Digest"] == build["lock_digest"]
    six = next(p for p in lock.json()["python"]["packages"] if p["name"] == "six")
    assert six["version"] == "1.16.0" and all(h.startswith("sha256:") for h in six["hashes"])
    assert lock.json()["base"]["digest"].startswith("sha256:")
    sbom = teacher.http.get(f"/builds/{build_id}/sbom").json()
    assert {"name": "six", "version": "1.16.0"}.items() <= next(
        c for c in sbom["components"] if c["name"] == "six").items()

    # pull it like a student would, and run it with no network
    pulled = podman("pull", "--tls-verify=false", *registry_creds(teacher), build["pull"])
    assert pulled.returncode == 0, pulled.stderr
    ran = podman("run", "--rm", "--network=none", build["pull"], "python3", "-c", "import six; print(six.__version__)")
    assert ran.stdout.strip() == "1.16.0", ran.stderr

    # a derived version builds FROM its parent and shares every parent layer
    teacher.post(f"/workspaces/{ws}/environments/tiny/versions",
                 json={"spec": spec("six==1.16.0", "idna==3.7", marker=ws)})
    derived = wait_build(teacher, teacher.post(f"/workspaces/{ws}/environments/tiny/versions/2/builds",
                                               expect=(202,))["id"])
    assert derived["status"] == "succeeded", derived
    manifests = [_manifest(running, ws, "tiny", tag) for tag in ("v1", "v2")]
    parent_layers, child_layers = ([layer["digest"] for layer in m["layers"]] for m in manifests)
    assert child_layers[: len(parent_layers)] == parent_layers and len(child_layers) > len(parent_layers)

    # a rollback to v1 has v1's lock: it joins the finished build and gets the same image
    teacher.post(f"/workspaces/{ws}/environments/tiny/versions", json={"rollback_to": 1})
    again = teacher.post(f"/workspaces/{ws}/environments/tiny/versions/3/builds", expect=(202,))
    assert again["id"] == build_id and again["joined"] and again["status"] == "succeeded"
    deadline = time.monotonic() + 60
    while not teacher.get(f"/workspaces/{ws}/environments/tiny/versions/3").get("image_digest"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/workspaces/{ws}/environments/tiny/versions/3")["image_digest"] == build["image_digest"]
    assert _manifest_digest(running, ws, "tiny", "v3") == build["image_digest"]
    # joining a build is recorded in the joining workspace's log, naming the version it was asked for
    deadline = time.monotonic() + 60
    while not (joins := [e for e in teacher.get(f"/workspaces/{ws}/activity", params={"type": "build.joined"})[
            "items"] if e["subject"] == f"builds/{build_id}"]):
        assert time.monotonic() < deadline, "no build.joined entry"
        time.sleep(0.5)
    details = joins[0]["event"]["details"]
    assert (details["environment"], details["version"]) == ("tiny", 3), joins


def _manifest(running, ws: str, env: str, tag: str) -> dict:
    r = httpx.get(f"http://{running.platform.registry.address}/v2/{ws}/{env}/manifests/{tag}",
                  headers=registry_headers(running, f"{ws}/{env}"))
    assert r.status_code == 200, r.text
    return r.json()


def _manifest_digest(running, ws: str, env: str, tag: str) -> str:
    r = httpx.head(f"http://{running.platform.registry.address}/v2/{ws}/{env}/manifests/{tag}",
                   headers=registry_headers(running, f"{ws}/{env}"))
    return r.headers["Docker-Content-Digest"]


@pytest.mark.parametrize(("requirements", "base", "needle"), [
    (["reprolab-no-such-package-xyz"], BASE, "reprolab-no-such-package-xyz"),
    (["idna==3.6", "idna==3.7"], BASE, "idna"),
    (["six"], "localhost/reprolab/no-such-base:1", "no-such-base"),
])
def test_user_errors_fail_with_a_reason(running, instructor, requirements, base, needle) -> None:
    ws, teacher = instructor
    name = f"bad{abs(hash((tuple(requirements), base))) % 10_000}"
    teacher.post(f"/workspaces/{ws}/environments", json={"name": name, "spec": spec(*requirements, base=base)})
    with pytest.raises(ApiError) as info:
        teacher.post(f"/workspaces/{ws}/environments/{name}/versions/1/builds")
    assert info.value.status == 422 and needle in info.value.problem["detail"], info.value.problem
    failed = teacher.get(f"/builds/{info.value.problem['build_id']}")
    assert failed["status"] == "failed" and needle in failed["error"] and failed["image_digest"] is None
    assert not teacher.get(f"/workspaces/{ws}/environments/{name}/versions/1").get("image_digest")


def test_a_shared_build_is_visible_in_every_workspace_it_serves(running, base_image) -> None:
    """Two workspaces with the same spec share one build; members of either can follow it, others not."""
    _, a = running.user("sa")
    _, b = running.user("sb")
    _, outsider = running.user("so")
    ids = []
    for client in (a, b):
        ws = running.workspace(client, "shared")
        client.post(f"/workspaces/{ws}/environments", json={"name": "same", "spec": spec("six==1.16.0")})
        ids.append(client.post(f"/workspaces/{ws}/environments/same/versions/1/builds", expect=(202,))["id"])
    assert ids[0] == ids[1]
    assert wait_build(b, ids[0])["status"] == "succeeded"
    assert a.get(f"/builds/{ids[0]}")["id"] == ids[0]
    with pytest.raises(ApiError) as info:
        outsider.get(f"/builds/{ids[0]}")
    assert info.value.status == 404


def test_students_build_only_their_own(running, course, base_image) -> None:
    ws, (_, teacher), (_, student) = course
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "course", "spec": spec("six==1.16.0")})
    with pytest.raises(ApiError) as info:
        student.post(f"/workspaces/{ws}/environments/course/versions/1/builds")
    assert info.value.status == 403
    _, outsider = running.user("out")
    with pytest.raises(ApiError) as info:
        outsider.post(f"/workspaces/{ws}/environments/course/versions/1/builds")
    assert info.value.status == 404


def test_builder_killed_mid_build_finishes_once(running, instructor) -> None:
    ws, teacher = instructor
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "crash", "spec": spec("idna==3.6")})
    build = teacher.post(f"/workspaces/{ws}/environments/crash/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 120
    while teacher.get(f"/builds/{build['id']}")["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    running.platform.stop_service("builder", sig=signal.SIGKILL)
    running.platform.start_service("builder")
    running.platform.wait_ready()
    done = wait_build(teacher, build["id"])
    assert done["status"] == "succeeded", done
    events = teacher.get(f"/workspaces/{ws}/activity", params={"subject": f"builds/{build['id']}", "limit": 100})
    verbs = [e["type"] for e in events["items"]]
    assert verbs.count("build.succeeded") == 1 and "build.failed" not in verbs, verbs
    assert _manifest_digest(running, ws, "crash", "v1") == done["image_digest"]


def test_cli_add_package_build_and_pull(running, instructor) -> None:
    from reprolab_cli.main import app
    from typer.testing import CliRunner

    ws, teacher = instructor
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "clienv", "spec": spec("six==1.16.0")})
    common = ["--url", running.platform.url, "--token", teacher.http.headers["Authorization"].split()[1]]
    cli = CliRunner()
    added = cli.invoke(app, ["env", "add-package", ws, "clienv", "idna==3.7", *common])
    assert added.exit_code == 0, added.output
    v2 = teacher.get(f"/workspaces/{ws}/environments/clienv/versions/2")
    assert v2["spec"]["python"]["requirements"] == ["six==1.16.0", "idna==3.7"] and v2["origin"] == "update"
    built = cli.invoke(app, ["env", "build", ws, "clienv", "--json", *common], env={"COLUMNS": "200"})
    assert built.exit_code == 0, built.output
    assert "STEP" in built.output and '"status": "succeeded"' in built.output
    pulled = cli.invoke(app, ["env", "pull", ws, "clienv", *common])
    assert pulled.exit_code == 0 and "pulled" in pulled.output, pulled.output
    digest = teacher.get(f"/workspaces/{ws}/environments/clienv/versions/2")["image_digest"]
    assert podman("image", "exists", f"{running.platform.registry.address}/{ws}/clienv@{digest}").returncode == 0
    failing = cli.invoke(app, ["env", "add-package", ws, "clienv", "reprolab-no-such-pkg-abc", *common])
    assert failing.exit_code == 0, failing.output
    broken = cli.invoke(app, ["env", "build", ws, "clienv", *common])
    assert broken.exit_code == 1 and "reprolab-no-such-pkg-abc" in broken.output, broken.output
