"""A workspace's private package index through the whole platform: set with the CLI (password on
stdin), listed without the secret, locked and built by the real builder over NATS, a wrong password
fails the build naming the index. The private index is a real PEP 503 server with basic auth
(``tests/builder/pep503.py``); the anonymous second index is NAMED "fake public index" (it stands for
PyPI). The password is then searched for in every file the platform wrote (logs, databases, NATS
streams, objects) and in the activity log."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ..builder.pep503 import SimpleIndex
from .test_builds import wait_build

pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)

USER = "pindex-it-" + uuid.uuid4().hex[:6]
PASSWORD = "pindex-it-pw-" + uuid.uuid4().hex
WRONG = "pindex-it-wrong-" + uuid.uuid4().hex
BASE = "localhost/reprolab/bookworm-python:latest"


def _cli(running, teacher, *args: str, stdin: str = "") -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([str(Path(sys.executable).parent / "reprolab"), *args, "--url", running.platform.url,
                           "--token", teacher.http.headers["Authorization"][7:]], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_private_index_through_the_platform(running, base_image, tmp_path) -> None:
    private = SimpleIndex(tmp_path / "private", USER, PASSWORD)
    private.add("acme-secret", "1.0", requires=["acme-helper"], body="VERSION = '1.0'\n")
    public = SimpleIndex(tmp_path / "public")  # the fake public index
    public.add("acme-secret", "99.0")
    public.add("acme-helper", "2.0")
    private.start()
    public.start()
    try:
        _check(running, private, public)
    finally:
        private.stop()
        public.stop()


def _check(running, private: SimpleIndex, public: SimpleIndex) -> None:  # noqa: ANN001
    _name, teacher = running.user("pix")
    ws = running.workspace(teacher, "pix")
    base = f"/workspaces/{ws}/package-indexes"

    cli = _cli(running, teacher, "index", "set", ws, "corp", private.url, "-u", USER, "--password-stdin",
               stdin=PASSWORD + "\n")
    assert cli.returncode == 0, cli.stderr
    assert PASSWORD not in cli.stdout + cli.stderr
    teacher.request("PUT", f"{base}/public", json={"url": public.url, "kind": "primary"})
    listed = teacher.http.get(base)
    assert listed.status_code == 200 and PASSWORD not in listed.text
    assert [(i["name"], i["kind"], i["username"], i["has_secret"]) for i in listed.json()["items"]] == [
        ("corp", "extra", USER, True), ("public", "primary", "", False)]

    # what a person can get wrong is a 422 saying what to fix
    for name, body, says in (
        ("corp", {"url": f"http://{USER}:{PASSWORD}@127.0.0.1:1/simple"}, "without credentials"),
        ("pypi", {"url": public.url}, "'pypi' is reserved"),
        ("other", {"url": public.url, "kind": "primary"}, "already has a primary index ('public')"),
        ("corp", {"url": private.url, "password": "x", "token": "y"}, "not both"),
    ):
        r = teacher.http.put(f"{base}/{name}", json=body)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert says in r.text and PASSWORD not in r.text

    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["acme-secret"]},
            "files": [{"path": "marker.txt", "content": ws}]}
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "corp-env", "spec": spec})
    build = wait_build(teacher, teacher.post(f"/workspaces/{ws}/environments/corp-env/versions/1/builds",
                                             expect=(202, 200))["id"])
    assert build["status"] == "succeeded", build
    lock = teacher.http.get(f"/builds/{build['id']}/lock")
    assert PASSWORD not in lock.text and USER not in lock.text
    got = {p["name"]: (p["version"], p["index"]) for p in lock.json()["python"]["packages"]}
    assert got == {"acme-secret": ("1.0", "corp"), "acme-helper": ("2.0", "public")}
    log = "\n".join(teacher.sse(f"/builds/{build['id']}/logs"))
    assert "pushed" in log and PASSWORD not in log
    ran = subprocess.run(["podman", "run", "--rm", "--network=none", "--tls-verify=false", "--entrypoint", "",
                          build["image_ref"], "python3", "-c", "import acme_secret; print(acme_secret.VERSION)"],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stdout.strip() == "1.0", ran.stderr

    # a wrong password: the build fails naming the index, never the secret
    cli = _cli(running, teacher, "index", "set", ws, "corp", private.url, "-u", USER, "--password-stdin",
               stdin=WRONG + "\n")
    assert cli.returncode == 0, cli.stderr
    teacher.post(f"/workspaces/{ws}/environments/corp-env/versions",
                 json={"spec": {**spec, "files": [{"path": "marker.txt", "content": ws + "-2"}]}})
    failed = teacher.http.post(f"/workspaces/{ws}/environments/corp-env/versions/2/builds")
    assert failed.status_code == 422 and failed.headers["content-type"].startswith("application/problem+json")
    assert f"package index 'corp' ({private.url}) refused the stored credentials (HTTP 401)" in failed.text
    assert "reprolab index set" in failed.text and WRONG not in failed.text and PASSWORD not in failed.text
    builds = teacher.get(f"/workspaces/{ws}/environments/corp-env/builds")["items"]
    assert WRONG not in json.dumps(builds) and any("refused the stored credentials" in b["error"] for b in builds)

    sname, student = running.user("pixs")
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    assert student.http.get(base).status_code == 403
    assert student.http.put(f"{base}/corp", json={"url": private.url}).status_code == 403

    activity = teacher.http.get(f"/workspaces/{ws}/activity", params={"limit": 500})
    assert activity.status_code == 200 and PASSWORD not in activity.text and WRONG not in activity.text
    for path in Path(running.platform.data_dir).rglob("*"):
        if path.is_file() and path.stat().st_size < 50e6:  # logs, databases (+WAL), NATS streams, objects
            data = path.read_bytes()
            assert PASSWORD.encode() not in data and WRONG.encode() not in data, f"an index secret leaked into {path}"

    cli = _cli(running, teacher, "index", "list", ws)
    assert cli.returncode == 0 and "corp" in cli.stdout and WRONG not in cli.stdout, cli.stderr
    teacher.request("DELETE", f"{base}/corp", expect=(204,))
    teacher.request("DELETE", f"{base}/public", expect=(204,))
    assert teacher.get(base)["items"] == []
    assert teacher.http.delete(f"{base}/corp").status_code == 404
