"""Issue 16 item 6: every way in and out has a CLI command, and every import, publish and download is in
the workspace's activity log.

One R environment is imported (an upload through the CLI; a second one by path) and built, then taken out
by each command: `env export-renv`, `env export-binder`, `env download-image`, `env publish` (to a second
local registry with htpasswd, logged in with `registry login`, forgotten with `registry rm`). The
activity log is then read back: environment.created says where each import came from, and there is one
version.exported entry per download and publish, naming its kind. `index rm` is covered here too (set and
list are in test_private_index)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import activity_entries
from .test_builds import wait_build
from .test_publish import PASSWORD, USER, auth_registry  # noqa: F401 - the fixture is used by name

REPOS = Path(__file__).parents[1] / "importer" / "repos"

pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)


def _cli(running, client, *args: str, stdin: str = "", timeout: float = 900) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([str(Path(sys.executable).parent / "reprolab"), *args, "--url", running.platform.url,
                           "--token", client.http.headers["Authorization"][7:]], input=stdin, capture_output=True,
                          text=True, timeout=timeout)




def test_every_import_publish_and_download_has_a_command_and_an_activity_entry(
        running, base_image, auth_registry, tmp_path) -> None:  # noqa: F811 - the fixture imported above
    _name, teacher = running.user("out")
    ws = running.workspace(teacher, "out")

    # in: an upload (the CLI packs the folder) and a path the platform reads
    cli = _cli(running, teacher, "env", "import", ws, str(REPOS / "r-install-R"), "--name", "r-course", "--json")
    assert cli.returncode == 0, cli.stderr
    uploaded = json.loads(cli.stdout)
    teacher.post(f"/workspaces/{ws}/environments/import", params={"name": "by-path"},
                 json={"source": str(REPOS / "venv-requirements")})
    created = {e["event"]["details"]["name"]: e["event"]["details"]
               for e in activity_entries(teacher, ws, "environment.created", 2)}
    assert created["r-course"]["imported_from"] == "upload"
    assert created["r-course"]["repository_digest"] == uploaded["repository_digest"]
    assert created["by-path"]["imported_from"] == f"path {REPOS / 'venv-requirements'}"

    build = wait_build(teacher, teacher.post(f"/workspaces/{ws}/environments/r-course/versions/1/builds",
                                             expect=(202, 200))["id"], timeout=1200)
    assert build["status"] == "succeeded", build

    # out: renv.lock (the R packages at their exact versions)
    renv = tmp_path / "r.lock"
    cli = _cli(running, teacher, "env", "export-renv", ws, "r-course", "-o", str(renv))
    assert cli.returncode == 0, cli.stderr
    doc = json.loads(renv.read_text())
    assert doc["Packages"]["jsonlite"]["Version"] and doc["R"]["Version"].startswith("4."), doc
    # a Binder-ready folder, the image as one file
    binder = tmp_path / "binder.zip"
    cli = _cli(running, teacher, "env", "export-binder", ws, "r-course", "-o", str(binder))
    assert cli.returncode == 0 and binder.stat().st_size > 0, cli.stderr
    archive = tmp_path / "image.tar"
    cli = _cli(running, teacher, "env", "download-image", ws, "r-course", "-o", str(archive))
    assert cli.returncode == 0 and archive.stat().st_size > 0, cli.stderr
    assert f"podman load -i {archive}" in cli.stderr

    # publish: log in (password on stdin), list without the secret, publish, forget
    cli = _cli(running, teacher, "registry", "login", ws, auth_registry, "-u", USER, "--password-stdin",
               stdin=PASSWORD + "\n")
    assert cli.returncode == 0, cli.stderr
    cli = _cli(running, teacher, "registry", "list", ws)
    assert cli.returncode == 0 and f"{auth_registry}  {USER}" in cli.stdout and PASSWORD not in cli.stdout, cli.stderr
    dest = f"{auth_registry}/out/{ws}:v1"
    cli = _cli(running, teacher, "env", "publish", ws, "r-course", dest, "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"destination": dest, "digest": build["image_digest"]}
    cli = _cli(running, teacher, "registry", "rm", ws, auth_registry)
    assert cli.returncode == 0, cli.stderr
    assert teacher.get(f"/workspaces/{ws}/registry-credentials")["items"] == []
    # publishing without the login now fails, plainly, and is not logged as a publish
    cli = _cli(running, teacher, "env", "publish", ws, "r-course", dest)
    assert cli.returncode != 0 and f"registry {auth_registry} needs credentials" in cli.stderr + cli.stdout

    exported = activity_entries(teacher, ws, "version.exported", 4)
    kinds = {}
    for e in exported:
        body = e["event"]["details"]
        assert e["subject"].startswith("environments/r-course"), e
        kinds[body["kind"]] = body
    assert set(kinds) == {"renv-lock", "binder", "oci-archive", "publish"}, exported
    assert len(exported) == 4, exported
    assert kinds["publish"]["destination"] == dest and kinds["publish"]["image_digest"] == build["image_digest"]
    assert kinds["oci-archive"]["destination"] == "r-course-v1.oci.tar"
    assert kinds["renv-lock"]["destination"] == "r-course-v1-renv.lock"
    assert PASSWORD not in json.dumps(exported)


def test_index_rm_forgets_an_index(running) -> None:
    _name, teacher = running.user("ixrm")
    ws = running.workspace(teacher, "ixrm")
    teacher.request("PUT", f"/workspaces/{ws}/package-indexes/corp", json={"url": "https://pkgs.example.org/simple"})
    cli = _cli(running, teacher, "index", "rm", ws, "corp")
    assert cli.returncode == 0 and "removed index corp" in cli.stderr, cli.stderr
    assert teacher.get(f"/workspaces/{ws}/package-indexes")["items"] == []
    cli = _cli(running, teacher, "index", "rm", ws, "corp")
    assert cli.returncode != 0 and "corp" in cli.stderr + cli.stdout
