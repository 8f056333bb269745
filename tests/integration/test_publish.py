"""Publishing a built version to an external registry: a second, real registry (CNCF distribution)
with htpasswd authentication stands for Docker Hub/GHCR. No credentials and bad credentials give a
clear 422; good ones push the image with the platform's digest; the password never comes back
(responses, listings, the activity log, the services' logs)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from reprolab_common.localregistry import registry_binary
from reprolab_common.natsserver import free_port

from .conftest import activity_entries
from .test_builds import spec, wait_build

pytestmark = pytest.mark.parametrize("running", ["sqlite"], indirect=True)

USER = "publisher"
PASSWORD = "s3cret-" + uuid.uuid4().hex  # unique, so finding it anywhere is a real leak


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("auth-registry")
    (root / "htpasswd").write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    port = free_port()
    (root / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / "data"}
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: reprolab-test
    path: {root / "htpasswd"}
""")
    proc = subprocess.Popen([registry_binary(), "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=open(root / "registry.log", "wb"), start_new_session=True)  # noqa: SIM115
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=0.5).status_code == 401:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, (root / "registry.log").read_text()
        time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def _problem(response) -> str:  # noqa: ANN001
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json"), \
        response.text
    return response.json()["detail"]


def test_publish_to_an_authenticated_registry(running, base_image, auth_registry) -> None:
    _name, teacher = running.user("pub")
    ws = running.workspace(teacher, "pub")
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "course", "spec": spec("six==1.16.0", marker=ws)})
    build = wait_build(teacher, teacher.post(f"/workspaces/{ws}/environments/course/versions/1/builds",
                                             expect=(202, 200))["id"])
    assert build["status"] == "succeeded", build
    url = f"/workspaces/{ws}/environments/course/versions/1/publish"
    dest = f"{auth_registry}/course/{ws}:week1"

    # no credentials stored for that host: the registry answers 401, the API says what to do
    detail = _problem(teacher.http.post(url, json={"destination": dest}))
    assert f"registry {auth_registry} needs credentials" in detail and "reprolab registry login" in detail
    # wrong ones
    teacher.request("PUT", f"/workspaces/{ws}/registry-credentials/{auth_registry}",
                    json={"username": USER, "password": "wrong-password"})
    detail = _problem(teacher.http.post(url, json={"destination": dest}))
    assert "refused the credentials stored for it" in detail
    # a bad destination is named
    assert "is not a destination" in _problem(teacher.http.post(url, json={"destination": "Not A Ref"}))

    # the right ones (through the CLI, password on stdin), then publish: the digest is the platform's
    cli = subprocess.run([str(Path(sys.executable).parent / "reprolab"), "registry", "login", ws, auth_registry,
                          "-u", USER, "--password-stdin",
                          "--url", running.platform.url, "--token", teacher.http.headers["Authorization"][7:]],
                         input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    listed = teacher.get(f"/workspaces/{ws}/registry-credentials")["items"]
    assert [(c["registry"], c["username"]) for c in listed] == [(auth_registry, USER)]
    result = teacher.post(url, json={"destination": dest})
    assert result == {"destination": dest, "digest": build["image_digest"]}
    inspected = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                                f"{USER}:{PASSWORD}", f"docker://{dest}"], capture_output=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    assert "sha256:" + hashlib.sha256(inspected.stdout).hexdigest() == build["image_digest"]

    # in the activity log, without the secret; the secret is nowhere the platform writes text
    exported = activity_entries(teacher, ws, "version.exported", 1)
    assert len(exported) == 1 and dest in json.dumps(exported[0]) and "publish" in json.dumps(exported[0])
    for path in Path(running.platform.data_dir).rglob("*"):
        if path.is_file() and path.stat().st_size < 50e6:  # logs, databases (+WAL), NATS streams, objects
            assert PASSWORD.encode() not in path.read_bytes(), f"the registry password leaked into {path}"
    # students cannot publish or read the logins
    sname, student = running.user("pubs")
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    assert student.http.post(url, json={"destination": dest}).status_code == 403
    assert student.http.get(f"/workspaces/{ws}/registry-credentials").status_code == 403
    # offline: the image as an OCI archive (through the CLI) loads into podman and runs, same digest
    archive = Path(running.platform.data_dir).parent / f"{ws}.oci.tar"
    cli = subprocess.run([str(Path(sys.executable).parent / "reprolab"), "env", "download-image", ws, "course",
                          "-o", str(archive), "--url", running.platform.url,
                          "--token", teacher.http.headers["Authorization"][7:]], capture_output=True, text=True,
                         timeout=600)
    assert cli.returncode == 0, cli.stderr
    loaded = subprocess.run(["podman", "load", "-i", str(archive)], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    image = loaded.stdout.strip().splitlines()[-1].split("Loaded image:")[-1].strip()
    try:
        ran = subprocess.run(["podman", "run", "--rm", "--network=none", image, "python3", "-c",
                              "import six; print(six.__version__)"], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and ran.stdout.strip() == "1.16.0", ran.stderr
        # the archive holds the platform's manifest itself (podman's storage may re-digest on load)
        with tarfile.open(archive) as tar:
            index = json.load(tar.extractfile("index.json"))
        assert [m["digest"] for m in index["manifests"]] == [build["image_digest"]]
    finally:
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True, timeout=120)
        archive.unlink(missing_ok=True)
    kinds = sorted(e["details"]["kind"] if "details" in e else json.dumps(e) for e in
                   teacher.get(f"/workspaces/{ws}/activity", params={"type": "version.exported"})["items"])
    assert len(kinds) == 2 and any("oci-archive" in k for k in kinds), kinds
    # forgetting them
    teacher.request("DELETE", f"/workspaces/{ws}/registry-credentials/{auth_registry}", expect=(204,))
    assert teacher.get(f"/workspaces/{ws}/registry-credentials")["items"] == []
