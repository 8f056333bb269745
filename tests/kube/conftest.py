"""Fixtures of the `podman kube play` tests: the platform images (built once, reused), podman itself.

These tests need root and podman (`make test-deps` installs it): they fail, never skip, without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES_OUT = ROOT / ".reprolab" / "images"


@pytest.fixture(scope="session")
def podman() -> str:
    assert os.geteuid() == 0, "the kube play tests run pods with podman as root (run `make test` as root)"
    path = shutil.which("podman")
    assert path, "podman is missing: `make test-deps` installs it"
    return path


@pytest.fixture(scope="session")
def platform_images(podman: str) -> dict[str, str]:
    """name -> image reference of the three platform images (`scripts/images.sh`; an image whose inputs
    did not change since it was last built is reused, so only the first session pays for the build)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "images.sh")], check=True, cwd=ROOT, timeout=1800,
                   env={**os.environ, "OUT": str(IMAGES_OUT)})
    refs = {}
    for name in ("services", "build-job", "fetcher"):
        ref = (IMAGES_OUT / f"{name}.digest").read_text().strip().split("@", 1)[0]
        refs[name] = ref
    return refs
