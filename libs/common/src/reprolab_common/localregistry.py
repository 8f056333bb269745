"""Start a local OCI registry (Debian's ``docker-registry``, CNCF distribution 2.8) on loopback.

``reprolab up`` starts one when the binary is installed, with token authentication: Reprolab's
gateway is the token issuer (``registrytoken``), so no request (not even ``GET /v2/_catalog``) is
served without a short-lived token the platform signed. The tests also start an open one per session
for the builder's backends, which exercise pushing, not access control.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .lifeline import die_with_parent
from .natsserver import free_port, stop_child
from .registrytoken import ISSUER, SERVICE

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""

TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {cert}
"""


@dataclass(frozen=True)
class TokenAuth:
    """distribution's ``auth: token:``: where clients get tokens and whose signature to trust."""

    realm: str
    cert_file: Path
    service: str = SERVICE
    issuer: str = ISSUER

    def config(self) -> str:
        return TOKEN_AUTH.format(realm=self.realm, service=self.service, issuer=self.issuer, cert=self.cert_file)


def registry_binary() -> str | None:
    return shutil.which("docker-registry") or shutil.which("registry")


class LocalRegistry:
    def __init__(self, root: Path, port: int | None = None, log_file: Path | None = None,
                 auth: TokenAuth | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.log_file = log_file
        self.auth = auth
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """host:port, as used in image references."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> LocalRegistry:
        binary = registry_binary()
        if not binary:
            raise FileNotFoundError("docker-registry not installed (apt-get install docker-registry)")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(CONFIG.format(root=self.root / "data", port=self.port)
                          + (self.auth.config() if self.auth else ""))
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out, start_new_session=True,
                                     preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}")
            try:
                # with token auth, the base endpoint answers 401 and a challenge once it serves
                if httpx.get(f"http://{self.address}/v2/", timeout=0.5).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError(f"docker-registry did not answer on {self.address}")

    def stop(self) -> None:
        stop_child(self.proc)
        self.proc = None
