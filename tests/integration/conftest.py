"""Helpers of the integration tests. The platform fixtures (``running``, ``course``) live in tests/conftest.py:
tests/security uses them too."""

from __future__ import annotations

import time
from typing import Any

from reprolab_cli.client import Client


def registry_creds(client: Client) -> list[str]:
    """``--creds user:token`` for podman/skopeo: the registry serves only whom the gateway authorises."""
    token = client.http.headers["Authorization"].removeprefix("Bearer ")
    return ["--creds", f"{client.get('/me')['username']}:{token}"]


def registry_headers(running: Any, repository: str) -> dict[str, str]:
    """Headers for reading ``repository`` straight from the registry: a pull token from the gateway's
    realm for the platform admin, and the OCI manifest type (distribution 2.8 answers 404 without it)."""
    r = running.admin.http.get("/registry/token", params={"service": "reprolab-registry",
                                                          "scope": f"repository:{repository}:pull"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}", "Accept": "application/vnd.oci.image.manifest.v1+json"}


def activity_entries(client, ws: str, kind: str, want: int, within: float = 60) -> list[dict]:  # noqa: ANN001
    """The workspace's entries of type ``kind`` once there are ``want`` (or ``within`` seconds passed): the
    log is written by the audit service from the bus after the API answered, so a test waits for it."""
    deadline = time.monotonic() + within
    while True:
        items = client.get(f"/workspaces/{ws}/activity", params={"type": kind, "limit": 100})["items"]
        if len(items) >= want or time.monotonic() > deadline:
            return items
        time.sleep(0.25)
