"""One platform for the dependency fault trials, on dependencies the trials may break: its own
nats-server (the platform starts it), a PRIVATE PostgreSQL cluster (initdb + pg_ctl on a free port; the
shared system PostgreSQL is never touched) and an object store on a small tmpfs this fixture mounts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common.pgcluster import PostgresCluster

STORE_BYTES = 4 * 1024 * 1024


@dataclass
class Faulty:
    platform: Platform
    admin: Client
    pg: PostgresCluster
    store_dir: Path


@pytest.fixture(scope="session")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    root = tmp_path_factory.mktemp("faults")
    pg = PostgresCluster().init().start()
    store = root / "objects"
    store.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_BYTES}", "tmpfs", str(store)], check=True)
    platform = Platform(root / "platform", extra_env={
        "REPROLAB_DATABASE_URL": pg.url, "REPROLAB_OBJECT_STORE_DIR": str(store),
        "REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
    })
    try:
        platform.start(timeout=90)
        admin = Client(platform.url, platform.admin_token())
        yield Faulty(platform, admin, pg, store)
        admin.close()
    finally:
        platform.stop()
        subprocess.run(["umount", "-l", str(store)], check=False)
        pg.remove()
