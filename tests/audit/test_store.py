"""The store on real PostgreSQL: two replicas appending to the same logs never fork them; proofs from the
stored nodes verify."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from reprolab.v1 import audit_pb2, common_pb2, events_pb2
from reprolab_audit.__main__ import MIGRATIONS
from reprolab_audit.models import Checkpoint, Entry
from reprolab_audit.store import AuditStore
from reprolab_common import merkle, signednote
from reprolab_common.auditlog import Signer
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
                assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
                leaves = [merkle.leaf_hash(row.canonical.encode()) for row in rows]
                assert [row.leaf for row in rows] == [leaf.hex() for leaf in leaves]
                tree = merkle.MemoryTree(leaves)
                cps = s.scalars(select(Checkpoint).where(Checkpoint.workspace == ws)).all()
                assert sorted(cp.size for cp in cps) == list(range(7, len(rows) + 1, 7))
                verifiers = [st.signer.verifier(st.origin(ws)) for st in stores]
                for cp in cps:
                    parsed, _ = signednote.open_checkpoint(cp.note, verifiers, origin=stores[0].origin(ws))
                    assert (parsed.size, parsed.root) == (cp.size, tree.root(cp.size))
                # proofs answered from the stored nodes match an in-memory tree of the same leaves
                for index, size in [(0, 1), (5, 7), (100, 270), (269, 270), (133, 200)]:
                    proof = stores[1].inclusion_proof(audit_pb2.InclusionProofRequest(
                        workspace=ws, index=index, size=size))
                    assert [bytes.fromhex(h) for h in proof.hashes] == tree.inclusion_proof(index, size)
                    merkle.verify_inclusion(index, size, leaves[index], [bytes.fromhex(h) for h in proof.hashes],
                                            tree.root(size))
                for old, new in [(1, 270), (7, 14), (100, 257), (256, 270)]:
                    proof = stores[0].consistency_proof(audit_pb2.ConsistencyProofRequest(
                        workspace=ws, old_size=old, new_size=new))
                    assert [bytes.fromhex(h) for h in proof.hashes] == tree.consistency_proof(old, new)
                    assert proof.old_root == tree.root(old).hex() and proof.new_root == tree.root(new).hex()
    finally:
        for e in engines:
            e.dispose()
        drop_schemas(pg_url, prefix)
