"""Pull a built image from the platform's registry with the caller's own credentials.

The registry accepts only tokens from the gateway's realm, which takes the username and an API token
over HTTP Basic (what ``podman login`` sends). The CLI already holds the API token, so it writes them to
a private, temporary auth file for this one pull: the token never appears on a command line (any local
user can read those) nor in the user's persistent ``auth.json``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from reprolab_common.privatefiles import write_private
from reprolab_common.registrytoken import auth_json

from .client import Client


def api_token(client: Client) -> str | None:
    value = client.http.headers.get("authorization", "")
    return value.removeprefix("Bearer ").strip() or None


def pull_command(engine: str, image: str, *, auth_dir: Path | None) -> list[str]:
    """``podman pull`` (or ``docker pull``) of ``image``, reading credentials from ``auth_dir``."""
    name = os.path.basename(engine)
    loopback = image.startswith(("127.", "localhost"))
    if "podman" in name:
        return [engine, "pull", *(["--tls-verify=false"] if loopback else []),
                *(["--authfile", str(auth_dir / "config.json")] if auth_dir else []), image]
    return [engine, *(["--config", str(auth_dir)] if auth_dir else []), "pull", image]


def login_hint(image: str, username: str) -> str:
    host = image.split("/", 1)[0]
    tls = " --tls-verify=false" if host.startswith(("127.", "localhost")) else ""
    return (f"podman login{tls} {host} -u {username}   (password: one of your API tokens, e.g. the one "
            f"this CLI uses, or a new one from POST /api/v1/me/tokens)\n  podman pull{tls} {image}")


def pull_image(client: Client, engine: str, image: str, *, quiet: bool = False) -> subprocess.CompletedProcess:
    """Pull ``image`` into ``engine`` as the client's user (username + API token)."""
    token = api_token(client)
    username = client.get("/me")["username"] if token else None
    with tempfile.TemporaryDirectory(prefix="reprolab-pull-") as tmp:
        auth_dir = None
        if token and username:
            auth_dir = Path(tmp)
            write_private(auth_dir / "config.json", auth_json(image.split("/", 1)[0], username, token))
        cmd = pull_command(engine, image, auth_dir=auth_dir)
        if quiet:
            cmd.insert(cmd.index("pull") + 1, "-q")
        return subprocess.run(cmd, capture_output=quiet, text=True)
