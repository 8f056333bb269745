"""Real buildah builds pushed to a real registry: reproducibility, derived layers, hygiene, SBOM."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from reprolab_builder.backends.base import BuildError
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock
from reprolab_builder.lock import resolve
from reprolab_builder.sbom import cyclonedx, inventory
from reprolab_common.natsserver import free_port

from .conftest import make_settings

BASE = "localhost/reprolab/bookworm-python:latest"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def manifest(registry: str, ref: str) -> tuple[str, dict]:
    """(digest, manifest) of ``registry/<name>:<tag>`` read over the registry's HTTP API."""
    name, tag = ref.removeprefix(registry + "/").rsplit(":", 1)
    resp = httpx.get(f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"], resp.json()


def remove_built(ref: str) -> None:
    """Remove a built image and its intermediate (layer cache) images, down to the base."""
    base_id = podman("image", "inspect", "--format", "{{.Id}}", BASE)
    ids, current = [], podman("image", "inspect", "--format", "{{.Id}}", ref)
    while current and current != base_id:
        ids.append(current)
        current = podman("image", "inspect", "--format", "{{.Parent}}", current)
    subprocess.run(["buildah", "rmi", "-f", *ids], check=True, capture_output=True)


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture(scope="module")
def env(tmp_path_factory, oci_registry, base_image):
    """One cold build of a small lock, shared by the tests of this module."""
    settings = make_settings(tmp_path_factory.mktemp("buildah-cache"), oci_registry.address)
    repo = f"{oci_registry.address}/t{uuid.uuid4().hex[:8]}/env"
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.17.0"]}, "entrypoint": ["python3"]}
    lock = resolve(spec, settings=settings, log=lambda _: None)
    backend = BuildahBackend(settings)
    started = time.monotonic()
    log = Log()
    result = build_lock(lock, settings=settings, backend=backend, image_ref=f"{repo}:v1", log=log)
    cold = time.monotonic() - started
    BuildahBackend.wait_for_local_copies()  # the tests run it from local storage
    print(f"\ncold build + push: {cold:.1f}s")
    refs = [f"{repo}:v1"]
    yield {"settings": settings, "repo": repo, "lock": lock, "result": result, "backend": backend, "log": log,
           "registry": oci_registry.address, "refs": refs, "spec": spec}
    for ref in refs:
        try:
            remove_built(ref)
        except subprocess.CalledProcessError:
            pass


def test_build_pushes_to_registry_and_noop_rebuild(env):
    result = env["result"]
    digest, man = manifest(env["registry"], f"{env['repo']}:v1")
    assert result.digest == digest and result.image_ref == f"{env['repo']}:v1"
    assert man["mediaType"] == "application/vnd.oci.image.manifest.v1+json" or "layers" in man
    log = Log()
    started = time.monotonic()
    again = build_lock(env["lock"], settings=env["settings"], backend=env["backend"], image_ref=f"{env['repo']}:v1",
                       log=log)
    print(f"\nno-op rebuild: {time.monotonic() - started:.1f}s")
    assert again.digest == digest
    assert any("not pushing again" in line for line in log)


def test_a_new_lock_is_one_layer_over_its_base_committed_straight_to_the_registry(env):
    """Issue 14 item 5: what the build adds is one layer, written once, into the registry; the local copy
    that derived builds start FROM is pulled afterwards, by digest, and carries the tag."""
    assert env["lock"]["build"] == {"layers": "one"}
    base_layers = json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", BASE))
    _, man = manifest(env["registry"], f"{env['repo']}:v1")
    assert len(man["layers"]) == len(base_layers) + 1
    assert any(line.startswith("COMMIT docker://") for line in env["log"])
    assert not any(line.startswith("$ buildah push") for line in env["log"])
    local = podman("image", "inspect", "--format", "{{.Id}}", f"{env['repo']}:v1").strip()
    assert f"sha256:{local}" == man["config"]["digest"]


def test_same_lock_rebuilt_from_scratch_has_same_digest(env):
    ref2 = f"{env['repo']}:v1-again"
    env["refs"].append(ref2)
    remove_built(f"{env['repo']}:v1")
    shutil.rmtree(env["settings"].cache_root())  # wheel cache and contexts
    started = time.monotonic()
    result = build_lock(env["lock"], settings=env["settings"], backend=env["backend"], image_ref=ref2, log=Log())
    print(f"\nrebuild from empty caches: {time.monotonic() - started:.1f}s")
    digest, _ = manifest(env["registry"], ref2)
    assert result.digest == digest == env["result"].digest


def test_image_is_clean_and_works_offline(env):
    ref = f"{env['repo']}:v1"
    assert podman("run", "--rm", "--network=none", "--tls-verify=false", "--entrypoint", "",
                  ref, "python3", "-c", "import six; print(six.__version__)") == "1.17.0"
    inside = subprocess.run(["podman", "run", "--rm", "--network=none", "--entrypoint", "", ref, "cat",
                             "/etc/ssl/certs/ca-certificates.crt"], check=True, capture_output=True).stdout
    base = subprocess.run(["podman", "run", "--rm", "--network=none", "--entrypoint", "", BASE, "cat",
                           "/etc/ssl/certs/ca-certificates.crt"], check=True, capture_output=True).stdout
    assert inside == base
    # no layer contains a certificate only the host trusts (the TLS-intercepting proxy's CA)
    pem = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
    host_only = set(pem.findall(HOST_CA.read_bytes())) - set(pem.findall(base)) if HOST_CA.exists() else set()
    needles = [c.strip().splitlines()[-2] for c in host_only]  # a line of each signature: unique per cert
    assert all(len(n) == 64 for n in needles)
    _, man = manifest(env["registry"], ref)
    name = ref.removeprefix(env["registry"] + "/").rsplit(":", 1)[0]
    files = 0
    for layer in man["layers"]:
        blob = httpx.get(f"http://{env['registry']}/v2/{name}/blobs/{layer['digest']}", follow_redirects=True)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
            for member in tar:
                # nothing of the build's mounts (wheels, uv's binary, the context) or uv's cache stays
                assert not member.name.lstrip("./").startswith(("tmp/reprolab", "wheels")), member.name
                if not member.isfile():
                    continue
                files += 1
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert data != HOST_CA.read_bytes(), member.name
                for needle in needles:
                    assert needle not in data, f"{member.name} contains a host-only CA certificate"
                assert not member.name.endswith(".whl"), member.name
    assert files > 100


def test_sbom_lists_installed_packages(env):
    inv = inventory(f"{env['repo']}:v1")
    assert {"name": "six", "version": "1.17.0"} in inv["pypi"]
    assert any(p["name"] == "python3" for p in inv["deb"])
    bom = cyclonedx(inv, image_ref=f"{env['repo']}:v1", digest=env["result"].digest)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    purls = [c["purl"] for c in bom["components"]]
    assert "pkg:pypi/six@1.17.0" in purls and purls == sorted(purls)
    assert any(p.startswith("pkg:deb/debian/python3@") for p in purls)
    assert cyclonedx(inv, image_ref=f"{env['repo']}:v1", digest=env["result"].digest) == bom
    # a one-layer build lists its image as its last step: the same listing as running the image, taken out
    # of the build's output (which shows one summary line instead of the listing)
    assert env["result"].inventory == inv
    assert not any(line.startswith(("deb\t", "pypi\t")) for line in env["log"])
    summary = f"the image lists {len(inv['deb'])} Debian packages and {len(inv['pypi'])} Python distributions"
    assert any(line.startswith(summary) for line in env["log"])


def test_derived_build_shares_every_parent_layer(env):
    parent_digest, parent_man = manifest(env["registry"], f"{env['repo']}:v1")
    spec = {**env["spec"], "python": {"version": "3.11", "requirements": ["six==1.17.0", "idna==3.7"]},
            "datasets": [{"digest": "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "mount": "/data/tiny"}]}
    lock = resolve(spec, settings=env["settings"], parent_lock=env["lock"],
                   parent_image=f"{env['repo']}@{parent_digest}", log=lambda _: None)
    assert lock["parent"]["image"] == f"{env['repo']}@{parent_digest}"
    ref = f"{env['repo']}:v2"
    env["refs"].append(ref)
    remove_built(f"{env['repo']}:v1-again")  # the parent comes from the registry, by digest
    started = time.monotonic()
    log = Log()
    result = build_lock(lock, settings=env["settings"], backend=env["backend"], image_ref=ref, log=log,
                        parent_lock=env["lock"], datasets=lambda digest, dest: dest.write_bytes(b"a,b\n1,2\n"))
    print(f"\nderived build + push: {time.monotonic() - started:.1f}s")
    env["backend"].wait_for_local_copies()  # run below from local storage
    digest, man = manifest(env["registry"], ref)
    assert result.digest == digest
    parent_layers = [layer["digest"] for layer in parent_man["layers"]]
    layers = [layer["digest"] for layer in man["layers"]]
    assert layers[: len(parent_layers)] == parent_layers and len(layers) > len(parent_layers)
    installed = [line.strip() for line in log if line.strip().startswith("+ ")]  # uv: " + name==version"
    assert installed == ["+ idna==3.7"], installed  # only the delta installs
    out = podman("run", "--rm", "--network=none", "--entrypoint", "", ref, "sh", "-c",
                 "python3 -c 'import six, idna; print(idna.__version__)' && cat /data/tiny")
    assert out.splitlines() == ["3.7", "a,b", "1,2"]


def test_derived_version_in_one_step_works_and_rebuilds_to_the_same_digest(env):
    """A derived uv lock with nothing between its Python step and the agent installs the delta, writes
    its lock and runs the agent in one step (one new layer); built again after removing the local
    images (the parent comes from the registry), it gives the same digest."""
    import json

    parent_digest, parent_man = manifest(env["registry"], f"{env['repo']}:v1")
    spec = {**env["spec"], "python": {"version": "3.11", "requirements": ["six==1.17.0", "idna==3.7"]}}
    lock = resolve(spec, settings=env["settings"], parent_lock=env["lock"],
                   parent_image=f"{env['repo']}@{parent_digest}", log=lambda _: None)
    digests = []
    for tag in ("v3", "v3-again"):
        ref = f"{env['repo']}:{tag}"
        env["refs"].append(ref)
        result = build_lock(lock, settings=env["settings"], backend=env["backend"], image_ref=ref, log=Log(),
                            parent_lock=env["lock"])
        digests.append(result.digest)
        env["backend"].wait_for_local_copies()  # run below from local storage
        _, man = manifest(env["registry"], ref)
        assert len(man["layers"]) == len(parent_man["layers"]) + 1  # the delta, the lock and the agent
        out = podman("run", "--rm", "--network=none", "--entrypoint", "", ref, "sh", "-c",
                     "python3 -c 'import six, idna; print(idna.__version__)' && cat /etc/reprolab/lock.json "
                     "&& cat /etc/reprolab/baseline.json")
        lines = out.splitlines()
        assert lines[0] == "3.7" and json.loads(lines[1]) == lock
        assert "idna" in "\n".join(lines[2:])  # the agent's baseline lists the delta
        remove_built(ref)
        subprocess.run(["buildah", "rmi", "-f", f"{env['repo']}@{parent_digest}"], capture_output=True)
    assert digests[0] == digests[1]


def test_tag_never_points_at_two_digests(env, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {BASE}\nLABEL other=yes\n")
    with pytest.raises(BuildError, match="already points at a different image"):
        env["backend"].build_and_push(ctx, f"{env['repo']}:v1", log=Log())


def test_registry_down_is_named(tmp_path):
    port = free_port()
    settings = make_settings(tmp_path / "cache", f"127.0.0.1:{port}")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {BASE}\n")
    with pytest.raises(BuildError, match=rf"registry 127\.0\.0\.1:{port} is unreachable: .*refused"):
        BuildahBackend(settings).build_and_push(ctx, f"127.0.0.1:{port}/ws/env:v1", log=Log())


def test_apt_and_r_layers_are_reproducible_from_scratch(tmp_path: Path) -> None:
    """apt and R (r-cran-*) packages at pinned versions, built twice with no layer cache, give the same
    image id (its config digest covers every layer's diff id). This caught fontconfig's caches, which
    embed the time they were made."""
    from reprolab_builder.render import render, write_context
    from reprolab_builder.wheelcache import ensure, materialize

    settings = make_settings(tmp_path / "cache")
    lock = resolve({"base": "localhost/reprolab/bookworm-python:latest", "apt": ["jq"],
                    "r": {"packages": ["jsonlite"]}}, settings=settings, log=lambda _: None)
    assert [p["deb"] for p in lock["r"]] == ["r-cran-jsonlite"] and all(p["version"] for p in lock["apt"])
    ensure(lock, settings=settings, log=lambda _: None)
    ctx = tmp_path / "ctx"
    write_context(render(lock), ctx)
    materialize(lock, ctx / "wheels", settings=settings)
    ids = []
    for i in range(2):
        iid = tmp_path / f"iid{i}"
        done = subprocess.run(["buildah", "bud", "--timestamp", "0", "--identity-label=false", "--format", "oci",
                               "--no-cache", "--layers=false", "--iidfile", str(iid), "-f", str(ctx / "Containerfile"),
                               str(ctx)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        ids.append(iid.read_text().strip())
    try:
        assert ids[0] == ids[1]
        ran = subprocess.run(["podman", "run", "--rm", "--network=none", ids[0], "sh", "-c",
                              "Rscript -e 'cat(jsonlite::toJSON(list(a=1)))' && echo && jq --version"],
                             capture_output=True, text=True, timeout=120)
        assert ran.stdout.split() == ['{"a":[1]}', "jq-1.6"], ran.stderr
    finally:
        subprocess.run(["podman", "rmi", "-f", *set(ids)], capture_output=True)
