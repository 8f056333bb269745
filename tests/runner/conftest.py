"""Fixtures of the runner tests: a private Docker-Engine-compatible API (``podman system service``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import docker
import pytest


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``unix://...`` URL of a private ``podman system service`` on a temporary socket."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: `make test` installs it (scripts/container-deps.sh)")
    sock = tmp_path_factory.mktemp("podman") / "api.sock"
    url = f"unix://{sock}"
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=sock.parent)  # conmon drops stray files (e.g. "oom") in its working directory
    deadline = time.monotonic() + 30
    while True:
        try:
            docker.APIClient(base_url=url, version="auto").ping()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
