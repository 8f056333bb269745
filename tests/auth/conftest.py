"""The accounts tests' platform and counterparts (see authkit.py for what they are and why)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

from .authkit import Accounts


@pytest.fixture(scope="session")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    extra = {"REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
             "REPROLAB_GATEWAY_REGISTRATION": "invite", "REPROLAB_GATEWAY_SIGNIN_LOCK_SECONDS": "60"}
    platform = Platform(tmp_path_factory.mktemp("platform-accounts"), extra_env=extra)
    try:
        platform.start(timeout=90)
    except Exception:
        platform.stop()
        raise
    admin = Client(platform.url, platform.admin_token())
    yield Accounts(platform, admin)
    admin.close()
    platform.stop()
