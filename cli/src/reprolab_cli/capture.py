"""``reprolab env capture WS ENV --container NAME [--submit]``: replicate what a student changed.

The activity agent inside the image compares what is installed now with the baseline recorded when
the image was built (``reprolab env capture --json`` in the container, run here through ``podman
exec``). This command applies those changes to the spec of the version the container came from (found
by the image's lock digest) and shows the derived spec. With ``--submit`` it creates the derived
version through the REST API (a new version when you may change the environment, else a fork and a
version of the fork), builds it, and links the two: the version's note names the container's chain
and entry, and a ``capture.submitted`` entry naming the new version is appended to the container's
chain, which is then synced into the workspace's activity log with your token.

The Typer command is declared with the other ``env`` commands in main.py; this module is its logic.
The spec logic (``derive_spec``, ``change_lines``) is ``reprolab_common.capture``'s, shared with the
gateway's "Save as a new version" of a JupyterLab session.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from reprolab_common.capture import change_lines, derive_spec

from .client import Client, ReprolabError

__all__ = ["CaptureError", "capture", "change_lines", "derive_spec", "podman_exec"]


class CaptureError(ReprolabError):
    pass


def podman_exec(podman: str, container: str, *cmd: str) -> str:
    try:
        proc = subprocess.run([podman, "exec", container, *cmd], capture_output=True, text=True, timeout=300)
    except FileNotFoundError as exc:
        raise CaptureError(f"{podman} is not installed") from exc
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        if "no such container" in detail.lower():
            raise CaptureError(f"no running container {container!r}")
        raise CaptureError(f"`{' '.join(cmd[:3])}` in container {container} failed: {detail}")
    return proc.stdout


def _source_version(c: Client, workspace: str, name: str, lock_digest: str, version: int) -> dict[str, Any]:
    if version:
        return c.get(f"/workspaces/{workspace}/environments/{name}/versions/{version}")
    for v in c.get(f"/workspaces/{workspace}/environments/{name}/versions")["items"]:
        if v.get("lock_digest") == lock_digest:
            return v
    raise CaptureError(f"the container's image (lock {lock_digest}) is not a built version of {workspace}/{name}; "
                       "give --version N")


def capture(c: Client, *, workspace: str, name: str, container: str, version: int = 0, submit: bool = False,
            podman: str = "podman", build_timeout: float = 3600) -> dict[str, Any]:
    doc = json.loads(podman_exec(podman, container, "reprolab", "env", "capture", "--json"))
    source = _source_version(c, workspace, name, doc["image"]["lock_digest"], version)
    derived = derive_spec(source["spec"], doc["changes"])
    result: dict[str, Any] = {"source": f"{workspace}/{name}/v{source['number']}", "changes": doc["changes"],
                              "chain": doc["chain"], "spec": derived}
    if not submit:
        return result
    if not doc["changes"]:
        raise CaptureError("nothing changed in the container since its image was built; nothing to submit")
    chain = doc["chain"]
    note = (f"captured from container {container} (activity chain {chain['id']}, entry {chain['seq']}): "
            + "; ".join(change_lines(doc["changes"])))[:2000]
    env = c.get(f"/workspaces/{workspace}/environments/{name}")
    target = name
    if not env.get("can_change"):
        forked = c.post(f"/workspaces/{workspace}/environments/{name}/fork", json={"version": source["number"]})
        target = forked["name"]
    new = c.post(f"/workspaces/{workspace}/environments/{target}/versions", json={"spec": derived, "note": note})
    build = c.post(f"/workspaces/{workspace}/environments/{target}/versions/{new['number']}/builds",
                   expect=(200, 201, 202))
    build = c.poll(f"/builds/{build['id']}", lambda b: b["status"] in ("queued", "running"), build_timeout, 1.0)
    ref = f"{workspace}/{target}/v{new['number']}"
    link = {"version": ref, "source": result["source"], "build": build["id"], "build_status": build["status"],
            "image_digest": build.get("image_digest") or "", "captured_seq": chain["seq"], "changes": doc["changes"]}
    podman_exec(podman, container, "reprolab", "record", "capture.submitted", json.dumps(link, sort_keys=True))
    bundle = podman_exec(podman, container, "reprolab", "activity", "export", "-o", "-")
    entries = [json.loads(line) for line in bundle.splitlines()[1:] if line.strip()]
    synced = c.post(f"/workspaces/{workspace}/activity/agent", json={"entries": entries})
    result.update(version=ref, build=build, synced=synced)
    if build["status"] != "succeeded":
        raise CaptureError(f"version {ref} was created but its build {build['id']} {build['status']}: "
                           f"{build.get('error') or ''}".rstrip(": "))
    return result
