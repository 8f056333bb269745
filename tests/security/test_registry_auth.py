"""The OCI registry serves nobody the platform did not authorise (issue 11, item 2).

Real parts: the whole platform as ``reprolab up`` starts it (nats-server, the five services, Debian's
docker-registry with ``auth: token:`` pointing at the gateway's realm), real podman and skopeo doing
the token dance themselves. Images are pushed with the builder's service credentials exactly as the
builder pushes (skopeo/buildah with its containers-auth.json); the builder's own build-and-push is
covered end to end by tests/integration (test_runs, test_builds), which now run against this registry.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common import registrytoken as rt
from reprolab_common.privatefiles import write_private

SPEC = {"base": "localhost/reprolab/bookworm-python:latest", "python": {"version": "3.11", "requirements": []}}


def oci_layout(root: Path, marker: str) -> Path:
    """A one-layer OCI image (a single small file) in an OCI layout directory: cheap to push and pull."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker.txt")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker.encode()))
    layer = buf.getvalue()
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]}
                              }).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}]}).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest}]}))
    return root


@dataclass
class Lab:
    platform: Platform
    admin: Client
    host: str
    tmp: Path
    course: str
    teacher: tuple[str, str]
    alice: tuple[str, str]
    bob: tuple[str, str]
    outsider: tuple[str, str]

    def token_url(self) -> str:
        return f"{self.platform.url}/api/v1/registry/token"

    def authfile(self, username: str, password: str) -> Path:
        path = self.tmp / f"auth-{uuid.uuid4().hex[:8]}.json"
        write_private(path, rt.auth_json(self.host, username, password))
        return path

    def realm(self, scope: str | list[str], auth: tuple[str, str] | None = None, **kw) -> httpx.Response:
        return httpx.get(self.token_url(), params={"service": rt.SERVICE, "scope": scope}, auth=auth, **kw)

    def token(self, scope: str | list[str], auth: tuple[str, str]) -> str:
        r = self.realm(scope, auth)
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def registry(self, path: str, token: str | None = None) -> httpx.Response:
        # distribution 2.8 answers 404 for an OCI manifest unless the client says it accepts one
        headers = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(f"http://{self.host}/v2/{path}", headers=headers, timeout=10)


def skopeo_push(src: Path, dest: str, authfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile", str(authfile),
                           f"oci:{src}", f"docker://{dest}"], capture_output=True, text=True, timeout=120)


def podman_pull(image: str, authfile: Path | None) -> subprocess.CompletedProcess:
    cmd = ["podman", "pull", "-q", "--tls-verify=false", *(["--authfile", str(authfile)] if authfile else []), image]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "REGISTRY_AUTH_FILE": str(authfile or "/nonexistent")})
    subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
    return done


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("regauth")
    platform = Platform(tmp / "data")
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        raise
    assert platform.registry is not None and platform.registry.auth is not None
    admin = Client(platform.url, platform.admin_token())

    def user(prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        return name, admin.post("/users", json={"username": name})["token"]

    teacher, alice, bob, outsider = user("teach"), user("alice"), user("bob"), user("out")
    course = f"course-{uuid.uuid4().hex[:6]}"
    t = admin.as_user(teacher[1])
    t.post("/workspaces", json={"slug": course, "title": "Course"})
    for name in (alice[0], bob[0]):
        t.post(f"/workspaces/{course}/members", json={"username": name, "role": "student"})
    t.post(f"/workspaces/{course}/environments", json={"name": "py", "spec": SPEC})
    # alice's fork is personal: only she (and the instructors) see it
    admin.as_user(alice[1]).post(f"/workspaces/{course}/environments/py/fork", json={"name": "py-alice"})
    o = admin.as_user(outsider[1])
    other = f"other-{uuid.uuid4().hex[:6]}"
    o.post("/workspaces", json={"slug": other, "title": "Other"})
    o.post(f"/workspaces/{other}/environments", json={"name": "secret", "spec": SPEC})

    lab = Lab(platform, admin, platform.registry.address, tmp, course, teacher, alice, bob, outsider)
    builder = Path(platform.registry_auth_file("builder"))
    for repo, marker in ((f"{course}/py", "course"), (f"{course}/py-alice", "alice's fork"), (f"{other}/secret", "x")):
        layout = oci_layout(tmp / uuid.uuid4().hex, marker)
        pushed = skopeo_push(layout, f"{lab.host}/{repo}:v1", builder)
        assert pushed.returncode == 0, pushed.stderr
    lab.other = other  # type: ignore[attr-defined]
    yield lab
    admin.close()
    platform.stop()


def test_anonymous_gets_nothing(lab: Lab) -> None:
    """No catalog, no manifest, no blob, and no token, without credentials."""
    catalog = lab.registry("_catalog")
    assert catalog.status_code == 401
    challenge = catalog.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and f'realm="{lab.token_url()}"' in challenge
    assert f'service="{rt.SERVICE}"' in challenge
    assert lab.registry(f"{lab.course}/py/manifests/v1").status_code == 401
    assert lab.registry(f"{lab.course}/py/tags/list").status_code == 401
    assert lab.realm(f"repository:{lab.course}/py:pull").status_code == 401
    assert podman_pull(f"{lab.host}/{lab.course}/py:v1", None).returncode != 0
    # a wrong password, another user's name with a token, the builder's name with a guess: all 401
    assert lab.realm("registry:catalog:*", (lab.alice[0], "rpl_" + "x" * 40)).status_code == 401
    assert lab.realm("registry:catalog:*", (lab.bob[0], lab.alice[1])).status_code == 401
    assert lab.realm("registry:catalog:*", (rt.BUILDER, "guess")).status_code == 401
    bad = lab.realm(f"repository:{lab.course}/py:pull", (lab.alice[0], "hunter2"))
    assert bad.status_code == 401 and "API token" in bad.json()["detail"]


def test_catalog_is_for_platform_admins_only(lab: Lab) -> None:
    student = lab.token("registry:catalog:*", lab.alice)
    assert rt.token_claims(student)["access"] == []
    assert lab.registry("_catalog", student).status_code == 401
    builder_pw = rt.service_credentials(lab.platform.registry_secrets_dir / "service-credentials.json")[rt.BUILDER]
    assert rt.token_claims(lab.token("registry:catalog:*", (rt.BUILDER, builder_pw)))["access"] == []
    admin = lab.token("registry:catalog:*", ("admin", lab.platform.admin_token()))
    repos = lab.registry("_catalog", admin).json()["repositories"]
    assert {f"{lab.course}/py", f"{lab.course}/py-alice", f"{lab.other}/secret"} <= set(repos)


def test_member_pulls_with_a_token_the_platform_issued(lab: Lab) -> None:
    image = f"{lab.host}/{lab.course}/py:v1"
    for who in (lab.alice, lab.bob, lab.teacher):
        done = podman_pull(image, lab.authfile(*who))
        assert done.returncode == 0, (who[0], done.stderr)
    # the same over plain HTTP with Bearer (the portal's API token works as the realm's Bearer too)
    r = httpx.get(lab.token_url(), params={"service": rt.SERVICE, "scope": f"repository:{lab.course}/py:pull"},
                  headers={"Authorization": f"Bearer {lab.bob[1]}"})
    claims = rt.token_claims(r.json()["token"])
    assert claims["access"] == [{"type": "repository", "name": f"{lab.course}/py", "actions": ["pull"]}]
    assert claims["iss"] == rt.ISSUER and claims["aud"] == rt.SERVICE and claims["sub"] == lab.bob[0]
    assert claims["exp"] - claims["iat"] == rt.TOKEN_SECONDS == r.json()["expires_in"]
    assert lab.registry(f"{lab.course}/py/manifests/v1", r.json()["token"]).status_code == 200


def test_non_member_gets_no_access(lab: Lab) -> None:
    scope = f"repository:{lab.course}/py:pull"
    token = lab.token(scope, lab.outsider)
    assert rt.token_claims(token)["access"] == []
    assert lab.registry(f"{lab.course}/py/manifests/v1", token).status_code == 401
    pulled = podman_pull(f"{lab.host}/{lab.course}/py:v1", lab.authfile(*lab.outsider))
    assert pulled.returncode != 0 and "unauthorized" in pulled.stderr.lower(), pulled.stderr
    # and the course's members cannot read the outsider's workspace either
    assert podman_pull(f"{lab.host}/{lab.other}/secret:v1", lab.authfile(*lab.alice)).returncode != 0


def test_student_cannot_pull_another_students_private_fork(lab: Lab) -> None:
    fork = f"{lab.host}/{lab.course}/py-alice:v1"
    refused = podman_pull(fork, lab.authfile(*lab.bob))
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr
    assert rt.token_claims(lab.token(f"repository:{lab.course}/py-alice:pull", lab.bob))["access"] == []
    # ... but bob still pulls the course's environment, and alice (owner) and the teacher pull the fork
    assert podman_pull(f"{lab.host}/{lab.course}/py:v1", lab.authfile(*lab.bob)).returncode == 0
    for who in (lab.alice, lab.teacher):
        done = podman_pull(fork, lab.authfile(*who))
        assert done.returncode == 0, (who[0], done.stderr)


def test_push_is_for_the_builder_only(lab: Lab) -> None:
    layout = oci_layout(lab.tmp / uuid.uuid4().hex, "pushed by a student")
    for who in (lab.alice, lab.teacher, ("admin", lab.platform.admin_token())):
        done = skopeo_push(layout, f"{lab.host}/{lab.course}/py:evil", lab.authfile(*who))
        assert done.returncode != 0, who[0]
        claims = rt.token_claims(lab.token(f"repository:{lab.course}/py:pull,push", who))
        assert claims["access"] == [{"type": "repository", "name": f"{lab.course}/py", "actions": ["pull"]}]
    builder = Path(lab.platform.registry_auth_file("builder"))
    done = skopeo_push(layout, f"{lab.host}/{lab.course}/py:v2", builder)
    assert done.returncode == 0, done.stderr


def test_tokens_expire_and_only_the_platforms_key_signs(lab: Lab, tmp_path: Path) -> None:
    key = rt.SigningKey.load(lab.platform.registry_secrets_dir / "token-key.pem",
                             lab.platform.registry_secrets_dir / "token-cert.pem")
    access = [rt.Access("repository", f"{lab.course}/py", ("pull",))]
    path = f"{lab.course}/py/manifests/v1"
    assert lab.registry(path, rt.sign_token(key, subject="t", access=access)).status_code == 200
    # past its exp (plus the registry's 60 s leeway for clock skew): refused
    expired = rt.sign_token(key, subject="t", access=access, seconds=rt.TOKEN_SECONDS, now=time.time() - 400)
    assert lab.registry(path, expired).status_code == 401
    # a key the registry does not trust, and a token with a wrong audience or issuer: refused
    _k, _c = rt.ensure_signing_key(tmp_path)
    assert lab.registry(path, rt.sign_token(rt.SigningKey.load(_k, _c), subject="t", access=access)).status_code == 401
    assert lab.registry(path, rt.sign_token(key, subject="t", access=access, service="other")).status_code == 401
    assert lab.registry(path, rt.sign_token(key, subject="t", access=access, issuer="evil")).status_code == 401


def test_pull_grants_cover_one_repository_until_they_expire(lab: Lab) -> None:
    """What the runner hands a cloud VM instead of its own password."""
    runner = Path(lab.platform.registry_auth_file("runner"))
    grant = rt.grant_for(runner, f"{lab.host}/{lab.course}/py@sha256:{'0' * 64}", 600)
    assert grant and grant["username"] == rt.GRANT_USER and grant["registry"] == lab.host
    auth = lab.authfile(grant["username"], grant["password"])
    assert podman_pull(f"{lab.host}/{lab.course}/py:v1", auth).returncode == 0
    assert podman_pull(f"{lab.host}/{lab.course}/py-alice:v1", auth).returncode != 0
    password = rt.credentials_for(runner, lab.host + "/x")[1]
    stale = rt.mint_grant(password, f"{lab.course}/py", 60, now=time.time() - 120)
    assert lab.realm(f"repository:{lab.course}/py:pull", (rt.GRANT_USER, stale)).status_code == 401
    forged = rt.mint_grant("not-the-runners-password", f"{lab.course}/py", 600)
    assert lab.realm(f"repository:{lab.course}/py:pull", (rt.GRANT_USER, forged)).status_code == 401


def test_secrets_are_private_and_kept_across_restarts(lab: Lab) -> None:
    d = lab.platform.registry_secrets_dir
    files = [d / "token-key.pem", d / "token-cert.pem", d / "service-credentials.json",
             lab.platform.registry_auth_file("builder"), lab.platform.registry_auth_file("runner")]
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    before = {p: p.read_bytes() for p in files[:3]}
    assert rt.ensure_signing_key(d) == (files[0], files[1])
    rt.service_credentials(files[2])
    assert {p: p.read_bytes() for p in files[:3]} == before
    # the key ID distribution computes (libtrust) is what the tokens carry
    key = rt.SigningKey.load(files[0], files[1])
    header = json.loads(rt._b64url_decode(lab.token("registry:catalog:*", lab.alice).split(".")[0]))
    assert header == {"typ": "JWT", "alg": "ES256", "kid": key.key_id}
    assert len(key.key_id) == 12 * 4 + 11 and key.key_id.count(":") == 11
    # no secret in any service's log
    logs = "".join(p.read_text(errors="replace") for p in lab.platform.log_dir.glob("*.log"))
    secrets = rt.service_credentials(files[2]).values()
    assert not any(s in logs for s in secrets)
    assert lab.alice[1] not in logs


def _gone(image: str) -> str:
    subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
    return image


def test_the_runner_pulls_with_its_own_credentials_and_only_from_this_registry(lab: Lab) -> None:
    """The local target's pull (podman's Docker API, X-Registry-Auth) with the runner's auth file."""
    from types import SimpleNamespace

    from reprolab_runner.targets.base import TargetError
    from reprolab_runner.targets.local import LocalTarget

    image = _gone(f"{lab.host}/{lab.other}/secret:v1")
    settings = SimpleNamespace(docker_url=f"unix://{lab.platform.podman_socket}", registry_tls_verify=False,
                               registry_auth_file=lab.platform.registry_auth_file("runner"))
    LocalTarget(settings)._ensure_image(image)  # any repository: the gateway authorised the run already
    assert _gone(image)
    with pytest.raises(TargetError, match="cannot pull image"):
        LocalTarget(SimpleNamespace(**{**vars(settings), "registry_auth_file": None}))._ensure_image(image)
    # the credential is looked up by the image's own host: another registry never receives it
    assert rt.credentials_for(settings.registry_auth_file, "registry.example.org/x/y:v1") is None
    assert rt.credentials_for(settings.registry_auth_file, image)[0] == rt.RUNNER


def test_the_run_agent_pulls_with_a_grant_from_a_private_file(lab: Lab, tmp_path: Path) -> None:
    """What a cloud VM runs: ``podman pull --authfile`` with the job's grant, never the runner's password."""
    from reprolab_runner.agent import run_agent

    image = _gone(f"{lab.host}/{lab.course}/py:v1")
    grant = rt.grant_for(lab.platform.registry_auth_file("runner"), image, 600)
    run_agent.pull("podman", image, False, grant, str(tmp_path))
    written = tmp_path / "registry-auth" / "config.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    runner_password = rt.credentials_for(lab.platform.registry_auth_file("runner"), image)[1]
    assert runner_password not in written.read_text() and runner_password not in json.dumps(grant)
    _gone(image)


def test_cli_pull_signs_in_as_the_user(lab: Lab) -> None:
    """``reprolab env pull`` (and the demo) pull through a private temporary auth file."""
    from reprolab_cli.pull_cmd import pull_image

    image = _gone(f"{lab.host}/{lab.course}/py-alice:v1")
    alice, bob = lab.admin.as_user(lab.alice[1]), lab.admin.as_user(lab.bob[1])
    done = pull_image(alice, "podman", image, quiet=True)
    assert done.returncode == 0, done.stderr
    _gone(image)
    refused = pull_image(bob, "podman", image, quiet=True)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
    alice.close()
    bob.close()


def test_bad_realm_requests_get_a_clear_4xx(lab: Lab) -> None:
    wrong = httpx.get(lab.token_url(), params={"service": "docker.io", "scope": "repository:a/b:pull"},
                      auth=lab.alice)
    assert wrong.status_code == 422 and rt.SERVICE in wrong.json()["detail"]
    for header in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Digest x"):
        r = httpx.get(lab.token_url(), params={"service": rt.SERVICE}, headers={"Authorization": header})
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), header
    # scopes that name nothing Reprolab serves grant nothing (and are not an error)
    token = lab.token(["repository:../x:pull", "repository:a/b/c:pull", "nonsense", "plugin:x:pull"], lab.alice)
    assert rt.token_claims(token)["access"] == []
