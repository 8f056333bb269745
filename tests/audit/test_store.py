"""The store on real PostgreSQL: two replicas appending to the same chains never fork them."""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import pytest
from reprolab.v1 import common_pb2, events_pb2
from reprolab_audit.__main__ import MIGRATIONS
from reprolab_audit.models import Checkpoint, Entry
from reprolab_audit.store import AuditStore
from reprolab_common.auditlog import Signer, verify_checkpoint
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.nats import new_event
from reprolab_common.settings import CommonSettings
from sqlalchemy import select

from tests.conftest import drop_schemas

pytestmark = pytest.mark.postgres


def test_two_replicas_appending_concurrently_keep_one_chain_per_workspace(pg_url: str,
                                                                          tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = CommonSettings(database_url=pg_url, database_schema_prefix=prefix, data_dir=tmp_path)
    engines = [make_engine(settings, "audit") for _ in range(2)]
    try:
        migrate(engines[0], MIGRATIONS)
        # Separate engines, separate in-process locks: only the head row lock can keep them apart.
        stores = [AuditStore(session_factory(e), Signer.generate(), checkpoint_every=7) for e in engines]
        actor = common_pb2.Actor(user_id="u-1", username="alice")
        workspaces = ["ws-a", "ws-b"]
        errors: list[BaseException] = []

        def worker(store: AuditStore, n: int) -> None:
            try:
                for b in range(15):
                    batch = [new_event(type="dataset.downloaded", actor=actor,
                                       workspace=workspaces[(i + n) % 2], subject=f"datasets/{n}-{b}-{i}",
                                       dataset_downloaded=events_pb2.DatasetDownloaded(name=f"{n}-{b}-{i}"))
                             for i in range(6)]
                    store.append(batch)
                    store.append(batch[:3])   # a redelivery: skipped
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(stores[n % 2], n)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with session_factory(engines[0])() as s:
            for ws in workspaces:
                rows = s.scalars(select(Entry).where(Entry.workspace == ws).order_by(Entry.seq)).all()
                assert len(rows) == 6 * 15 * 3   # half of every worker's 6 events per batch
                prev = "00" * 32
                for n, row in enumerate(rows, start=1):
                    assert (row.seq, row.prev_hash) == (n, prev)
                    leaf = hashlib.sha256(row.canonical.encode()).digest()
                    assert row.hash == hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
                    prev = row.hash
                cps = s.scalars(select(Checkpoint).where(Checkpoint.workspace == ws)).all()
                assert sorted(cp.size for cp in cps) == list(range(7, len(rows) + 1, 7))
                by_seq = {row.seq: row.hash for row in rows}
                keys = {st.signer.key_id: st.signer.public_key_raw for st in stores}
                for cp in cps:
                    assert cp.head == by_seq[cp.size]
                    assert verify_checkpoint(cp.document(), keys[cp.key_id])
    finally:
        for e in engines:
            e.dispose()
        drop_schemas(pg_url, prefix)
