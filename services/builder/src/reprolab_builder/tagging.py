"""Give an already pushed image more tags: one build serves every version with the same lock."""

from __future__ import annotations

import subprocess

from .backends.base import BuildError
from .config import BuilderSettings


def repository(image_ref: str) -> str:
    """``host:port/ws/env:v3`` → ``host:port/ws/env``."""
    head, _, tail = image_ref.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else image_ref.split(":", 1)[0]


def copy_tag(settings: BuilderSettings, source_ref: str, digest: str, dest_ref: str) -> None:
    """Point ``dest_ref`` at exactly ``source``'s manifest (``--preserve-digests``: same digest)."""
    tls = "true" if settings.registry_tls_verify else "false"
    cmd = ["skopeo", "copy", "--quiet", "--preserve-digests", f"--src-tls-verify={tls}", f"--dest-tls-verify={tls}"]
    if settings.registry_auth_file:
        cmd += ["--authfile", str(settings.registry_auth_file)]
    cmd += [f"docker://{repository(source_ref)}@{digest}", f"docker://{dest_ref}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BuildError(f"could not tag {dest_ref} with {digest}: {done.stderr.strip()[-500:]}")
