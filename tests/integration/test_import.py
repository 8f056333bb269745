"""Import through the whole platform: each fixture repository is uploaded (one through the CLI, one
by path), built by the real builder, pulled, and its own ``verify`` script run inside the image as
the user, through its ``start`` if it has one: the data is the test, as in repo2docker's tests/.

The fixtures share the base and, mostly, the same Python layer (six==1.16.0), so the builds are
small; they run on SQLite only (the import path has no database code of its own to cover twice).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest
from reprolab_cli.import_cmd import pack

from .conftest import registry_creds
from .test_builds import podman, wait_build

REPOS = Path(__file__).parents[1] / "importer" / "repos"
BUILT = ["venv-requirements", "binder-dir", "dotbinder-dir", "runtime-python", "pipfile-lock", "pyproject-project",
         "conda-environment", "r-install-R"]
REFUSED = {"refuse-dockerfile": "Dockerfile", "refuse-nix": "binder/default.nix", "refuse-julia": "Project.toml",
           "refuse-conda-only": "cudatoolkit", "refuse-both-binder-dirs": "both a 'binder' and a '.binder'"}

pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


def _upload(client, ws: str, folder: Path, name: str, expect=(201,), **params) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "repo.tar.gz"
        pack(folder, archive)
        return client.upload(f"/workspaces/{ws}/environments/import", archive, params={"name": name, **params},
                             content_type="application/gzip", expect=expect)


@pytest.fixture
def teacher_ws(running, base_image):
    _name, teacher = running.user("imp")
    return running.workspace(teacher, "imp"), teacher


def test_imported_repositories_build_and_verify_inside_their_images(running, teacher_ws) -> None:
    ws, teacher = teacher_ws
    results = {}
    for fixture in BUILT:
        name = fixture.lower()
        if fixture == "pipfile-lock":  # by path: the platform reads a folder under its import roots
            results[fixture] = teacher.post(f"/workspaces/{ws}/environments/import", params={"name": name},
                                            json={"source": str(REPOS / fixture)})
        elif fixture != "venv-requirements":  # that one goes through the CLI below
            results[fixture] = _upload(teacher, ws, REPOS / fixture, name)
    cli = subprocess.run([str(Path(sys.executable).parent / "reprolab"), "env", "import", ws,
                          str(REPOS / "venv-requirements"), "--name", "venv-requirements", "--json",
                          "--url", running.platform.url, "--token", teacher.http.headers["Authorization"][7:]],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    results["venv-requirements"] = json.loads(cli.stdout)

    detected = {f: r["detected"]["buildpack"] for f, r in results.items()}
    assert detected == {f: ("conda" if f.startswith("conda") else "pipfile" if f.startswith("pipfile") else
                            "r" if f.startswith("r-") else "python") for f in BUILT}
    assert results["binder-dir"]["detected"]["bit_reproducible"] is False
    assert results["venv-requirements"]["detected"]["bit_reproducible"] is True
    assert any("not honoured" in n for n in results["r-install-R"]["detected"]["notes"])
    # the repository's files are a public dataset of the workspace, the spec points at it by digest
    digest = results["binder-dir"]["repository_digest"]
    assert teacher.get(f"/workspaces/{ws}/datasets/{digest}")["name"] == "binder-dir-repository.tar"
    assert teacher.get(f"/workspaces/{ws}/environments/binder-dir/versions/1")["spec"]["repository"] == {
        "digest": digest}

    builds = {f: teacher.post(f"/workspaces/{ws}/environments/{f.lower()}/versions/1/builds", expect=(202, 200, 201))
              for f in BUILT}
    pulled = []
    try:
        for fixture, build in builds.items():
            done = wait_build(teacher, build["id"])
            assert done["status"] == "succeeded", (fixture, done)
            got = podman("pull", "--tls-verify=false", *registry_creds(teacher), done["pull"])
            assert got.returncode == 0, got.stderr
            pulled.append(done["pull"])
            ran = podman("run", "--rm", "--network=none", done["pull"], "./verify")
            assert ran.returncode == 0 and f"verified {fixture}" in ran.stdout, (fixture, ran.stdout, ran.stderr)
            lock = teacher.get(f"/builds/{build['id']}/lock")
            steps = lock.get("build_steps")
            assert ("reproducibility" in lock) == bool(steps), fixture
            if steps:
                assert lock["reproducibility"]["bit_reproducible"] is False and lock["reproducibility"]["reasons"]
    finally:
        if pulled:
            podman("rmi", "-f", *pulled)

    created = teacher.get(f"/workspaces/{ws}/activity", params={"type": "environment.created", "limit": 100})
    assert len(created["items"]) == len(BUILT)

    # out again: a Binder-ready folder (through the CLI), pinned with hashes, that imports back
    out = Path(tempfile.mkdtemp()) / "binder.zip"
    cli = subprocess.run([str(Path(sys.executable).parent / "reprolab"), "env", "export-binder", ws, "binder-dir",
                          "-o", str(out), "--url", running.platform.url,
                          "--token", teacher.http.headers["Authorization"][7:]], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        requirements = zf.read("binder/requirements.txt").decode()
        post = zf.read("binder/postBuild").decode()
        assert (zf.getinfo("binder/start").external_attr >> 16) & 0o111
    assert {"verify", "binder/start", "binder/postBuild.repository", "binder/runtime.txt"} <= names
    assert "six==1.16.0" in requirements and "--hash=sha256:" in requirements
    assert "./binder/postBuild.repository" in post
    again = teacher.upload(f"/workspaces/{ws}/environments/import", out, params={"name": "round-trip"},
                           content_type="application/zip")
    assert again["spec"]["python"]["requirements"] == ["six==1.16.0"]
    assert again["spec"]["python"]["version"] == "3.11"
    exported = teacher.get(f"/workspaces/{ws}/activity", params={"type": "version.exported"})["items"]
    assert len(exported) == 1 and "binder-dir-v1-binder.zip" in json.dumps(exported[0])


def test_what_cannot_be_honoured_answers_422_naming_it(running, teacher_ws) -> None:
    ws, teacher = teacher_ws
    for fixture, needle in REFUSED.items():
        r = teacher.http.post(f"/workspaces/{ws}/environments/import", params={"name": "x" + uuid.uuid4().hex[:6]},
                              headers={"Content-Type": "application/gzip"},
                              content=_archive_bytes(REPOS / fixture))
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert needle in r.json()["detail"], (fixture, r.json())
    assert teacher.get(f"/workspaces/{ws}/environments")["items"] == []
    # strict: approximations are refused too; a path outside the import roots and a URL host not allowed
    r = teacher.http.post(f"/workspaces/{ws}/environments/import", params={"name": "strict", "strict": "true"},
                          headers={"Content-Type": "application/gzip"},
                          content=_archive_bytes(REPOS / "conda-environment"))
    assert r.status_code == 422 and "requirements.txt is ignored" in r.json()["detail"]
    for source, needle in (("/etc", "not under a folder"), ("http://127.0.0.1:1/x.tar.gz", "not one the platform")):
        r = teacher.http.post(f"/workspaces/{ws}/environments/import", params={"name": "src"}, json={"source": source})
        assert r.status_code == 422 and needle in r.json()["detail"], r.text
    # not an archive
    r = teacher.http.post(f"/workspaces/{ws}/environments/import", params={"name": "junk"},
                          headers={"Content-Type": "application/gzip"}, content=b"not an archive")
    assert r.status_code == 422 and "neither a .tar.gz nor a .zip" in r.json()["detail"]


def test_students_cannot_import(running, course) -> None:
    ws, _teacher, (_sname, student) = course
    r = student.http.post(f"/workspaces/{ws}/environments/import", params={"name": "mine"},
                          headers={"Content-Type": "application/gzip"},
                          content=_archive_bytes(REPOS / "venv-requirements"))
    assert r.status_code == 403, r.text


def _archive_bytes(folder: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "repo.tar.gz"
        pack(folder, archive)
        return archive.read_bytes()
