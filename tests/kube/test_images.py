"""The platform images `make images` builds: non-root, no compilers or caches, an SBOM inside, and
reproducible (the smallest image is built a second time from scratch and must get the same digest;
`make images CHECK=1` does this for all three)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime

import pytest

from .conftest import IMAGES_OUT, ROOT

pytestmark = pytest.mark.timeout(1800)  # the first session builds the platform images

USERS = {"services": "10001:10001", "build-job": "1000:1000", "fetcher": "1000:1000"}


def _inspect(ref: str) -> dict:
    return json.loads(subprocess.run(["podman", "image", "inspect", ref], capture_output=True, text=True,
                                     check=True).stdout)[0]


def _run(ref: str, script: str) -> str:
    proc = subprocess.run(["podman", "run", "--rm", "--network=none", "--entrypoint", "", ref, "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["services", "build-job", "fetcher"])
def test_platform_image_is_non_root_with_no_compiler_cache_or_host_ca(platform_images: dict[str, str],
                                                                     name: str) -> None:
    ref = platform_images[name]
    config = _inspect(ref)["Config"]
    assert config["User"] == USERS[name]
    assert any(e.startswith("PATH=") for e in config["Env"])  # imported rootfs images have none by default
    # (uv and pip are in the services image on purpose: the builder resolves locks with them at run time.)
    found = _run(ref, "id -u; for t in gcc cc c++ make; do command -v $t || true; done; "
                      "ls -d /root/.cache /run/build /var/cache/apt/archives/*.deb /var/lib/apt/lists/*_Packages "
                      "2>/dev/null || true")
    lines = found.split()
    assert lines[0] == USERS[name].split(":")[0]
    assert lines[1:] == [], found  # no compiler, no cache, nothing of the build's bind mounts
    # uv, its cache and the host's CA bundle were bind mounts of the build step; none is configured here.
    assert not [e for e in config["Env"] if e.startswith(("SSL_CERT", "UV_", "PIP_", "REQUESTS_CA"))], config["Env"]


@pytest.mark.parametrize("name", ["services", "build-job", "fetcher"])
def test_platform_image_carries_its_sbom(platform_images: dict[str, str], name: str) -> None:
    ref = platform_images[name]
    inside = json.loads(_run(ref, "cat /usr/share/doc/reprolab/sbom.cdx.json"))
    beside = json.loads((IMAGES_OUT / f"{name}.cdx.json").read_text())
    assert inside["bomFormat"] == "CycloneDX" and inside["components"] == beside["components"]
    digest = _inspect(ref)["Digest"]
    assert beside["metadata"]["component"]["version"] == digest  # the copy beside names the final image
    purls = {c["purl"].split("@")[0] for c in inside["components"]}
    expected = {"services": {"pkg:pypi/reprolab-gateway", "pkg:pypi/fastapi", "pkg:deb/debian/python3"},
                "build-job": {"pkg:deb/debian/buildah", "pkg:deb/debian/uidmap", "pkg:deb/debian/curl"},
                "fetcher": {"pkg:deb/debian/curl", "pkg:deb/debian/unzip", "pkg:deb/debian/tar"}}[name]
    assert expected <= purls, expected - purls


def test_services_image_has_the_five_entry_points(platform_images: dict[str, str]) -> None:
    out = _run(platform_images["services"], "for s in gateway registry builder runner audit; do "
                                            "python -c \"import importlib.util as u; "
                                            "print(bool(u.find_spec('reprolab_$s.__main__')))\"; done")
    assert out.split() == ["True"] * 5


def test_the_fetcher_image_is_reproducible(platform_images: dict[str, str], tmp_path) -> None:
    """Built again from scratch (mmdebstrap, buildah, SBOM) under another tag: the same digest."""
    first = (IMAGES_OUT / "fetcher.digest").read_text().strip().split("@", 1)[1]
    subprocess.run(["bash", str(ROOT / "scripts" / "images.sh"), "fetcher"], check=True, cwd=ROOT, timeout=1500,
                   env={**os.environ, "TAG": "repro-check", "FORCE": "1", "OUT": str(tmp_path)},
                   capture_output=True)
    second = (tmp_path / "fetcher.digest").read_text().strip().split("@", 1)[1]
    subprocess.run(["podman", "rmi", "localhost/reprolab/fetcher:repro-check"], capture_output=True)
    assert first == second


@pytest.mark.parametrize("name", ["services", "build-job", "fetcher"])
def test_no_file_remembers_the_day_of_the_build(platform_images: dict[str, str], name: str) -> None:
    """useradd writes the day of the last password change into /etc/shadow. It must be the day of
    SOURCE_DATE_EPOCH (the image's Created time), or the same commit built on another day gets another
    digest: two builds on one day (make images CHECK=1) cannot see it, so it is looked at here."""
    ref = platform_images[name]
    user = {"services": "reprolab", "build-job": "build", "fetcher": "fetch"}[name]  # the user images.sh adds
    epoch_day = int(datetime.fromisoformat(_inspect(ref)["Created"]).timestamp()) // 86400
    proc = subprocess.run(["podman", "run", "--rm", "--network=none", "--user", "0", "--entrypoint", "", ref,
                           "grep", f"^{user}:", "/etc/shadow"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split(":")[2]) == epoch_day, (proc.stdout, epoch_day)
