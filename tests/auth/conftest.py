"""The accounts tests' platform and counterparts (see authkit.py for what they are and why)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common.natsserver import free_port

from .authkit import LDAP_GROUP_ROLES, OIDC_CLIENT_ID, OIDC_GROUP_ROLES, OIDC_USERS, Accounts
from .slapd import READER_DN, READER_PASSWORD, SUFFIX, Slapd


@pytest.fixture(scope="session")
def oidc_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oidc-provider-mock (PyPI) as its own process over HTTP: discovery, JWKS, RS256 ID tokens, the
    authorization and token endpoints of Authlib's server, with PKCE enforced (oidc_provider_pkce.py).
    Its issuer is the URL it is reached by."""
    port = free_port()
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("wb")
    script = Path(__file__).with_name("oidc_provider_pkce.py")
    args = [sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)]
    for claims in OIDC_USERS:
        args += ["--user-claims", json.dumps(claims)]
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider-mock did not start (exit {proc.poll()}); see {log.name}")
            time.sleep(0.1)
        yield issuer
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """Debian's slapd with the tests' own config and directory (scripts/test-deps.sh installs it)."""
    server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def accounts(tmp_path_factory: pytest.TempPathFactory, oidc_issuer: str, slapd: Slapd) -> Iterator[Accounts]:
    extra = {"REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
             "REPROLAB_GATEWAY_REGISTRATION": "invite", "REPROLAB_GATEWAY_SIGNIN_LOCK_SECONDS": "60",
             "REPROLAB_GATEWAY_OIDC_ISSUER": oidc_issuer, "REPROLAB_GATEWAY_OIDC_CLIENT_ID": OIDC_CLIENT_ID,
             "REPROLAB_GATEWAY_OIDC_CLIENT_SECRET": "oidc-test-secret",
             "REPROLAB_GATEWAY_OIDC_GROUPS_CLAIM": "groups",
             "REPROLAB_GATEWAY_OIDC_GROUP_ROLES": json.dumps(OIDC_GROUP_ROLES),
             # the directory over StartTLS, its certificate checked against the test CA
             "REPROLAB_GATEWAY_LDAP_URL": slapd.url, "REPROLAB_GATEWAY_LDAP_START_TLS": "true",
             "REPROLAB_GATEWAY_LDAP_CA_FILE": str(slapd.ca_file),
             "REPROLAB_GATEWAY_LDAP_BIND_DN": READER_DN, "REPROLAB_GATEWAY_LDAP_BIND_PASSWORD": READER_PASSWORD,
             "REPROLAB_GATEWAY_LDAP_BASE_DN": f"ou=people,{SUFFIX}",
             "REPROLAB_GATEWAY_LDAP_GROUP_BASE_DN": f"ou=groups,{SUFFIX}",
             "REPROLAB_GATEWAY_LDAP_GROUP_ROLES": json.dumps(LDAP_GROUP_ROLES)}
    platform = Platform(tmp_path_factory.mktemp("platform-accounts"), extra_env=extra)
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    yield Accounts(platform, admin, oidc_issuer, slapd)
    admin.close()
    platform.stop()
