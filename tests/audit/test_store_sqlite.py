"""The audit store on a real SQLite file: the migration from the hash chain, key rotation, export
thinning, checkpoints of an empty log and the errors proof requests answer with."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from reprolab.v1 import audit_pb2, common_pb2, events_pb2
from reprolab_audit.__main__ import MIGRATIONS
from reprolab_audit.models import Checkpoint, Head, Node
from reprolab_audit.store import AuditStore
from reprolab_common import auditlog, merkle, signednote
from reprolab_common.auditlog import Signer
from reprolab_common.canonical import canonical_json
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.errors import Invalid
from reprolab_common.nats import new_event
from reprolab_common.settings import CommonSettings
from sqlalchemy import func, select, text

ALICE = common_pb2.Actor(user_id="u-alice", username="alice")
BOB = common_pb2.Actor(user_id="u-bob", username="bob")


def events(ws: str, n: int, start: int = 0) -> list[events_pb2.Event]:
    return [new_event(type="dataset.downloaded", actor=(ALICE, BOB)[i % 2], workspace=ws, subject=f"datasets/{i}",
                      dataset_downloaded=events_pb2.DatasetDownloaded(name=f"d{i}"))
            for i in range(start, start + n)]


@pytest.fixture
def engine(tmp_path: Path):
    eng = make_engine(CommonSettings(data_dir=tmp_path), "audit", sqlite_synchronous="FULL")
    yield eng
    eng.dispose()


def test_migration_turns_an_existing_chain_into_the_same_entries_tree(engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
        docs = []
        prev = bytes(32)
        for i, ev in enumerate(events("old", 23), start=1):
            c = canonical_json(auditlog.entry_document(ev, i))
            leaf = hashlib.sha256(c).digest()
            h = hashlib.sha256(prev + leaf).digest()
            conn.execute(text(
                "INSERT INTO entries (workspace, seq, event_id, type, subject, actor_id, actor_name, time, canonical,"
                " leaf, prev_hash, hash) VALUES ('old', :seq, :id, 'dataset.downloaded', 's', 'u', 'n',"
                " '2026-01-01 00:00:00', :c, :leaf, :prev, :hash)"),
                {"seq": i, "id": ev.id, "c": c.decode(), "leaf": leaf.hex(), "prev": prev.hex(), "hash": h.hex()})
            docs.append(c)
            prev = h
        conn.execute(text("INSERT INTO heads (workspace, size, hash, checkpoint_size) VALUES ('old', 23, :h, 20)"),
                     {"h": prev.hex()})
        conn.commit()
    migrate(engine, MIGRATIONS)
    store = AuditStore(session_factory(engine), Signer.generate())
    store.register_key()
    tree = merkle.MemoryTree(merkle.leaf_hash(c) for c in docs)
    with store.sessions() as s:
        head = s.get(Head, "old")
        assert (head.size, head.checkpoint_size) == (23, 0)
        assert s.scalar(select(func.count()).select_from(Node).where(Node.workspace == "old")) == 23 - 4
    assert store.checkpoint_pending() == 1
    cp = store.latest_checkpoint("old")
    assert (cp.size, cp.root) == (23, tree.root().hex())
    # and it goes on growing as a tree
    store.append(events("old", 5, start=23))
    buf = io.BytesIO()
    store.write_bundle(buf, "old", audit_pb2.ACTIVITY_SCOPE_WORKSPACE, ALICE)
    result = auditlog.verify_bundle(buf.getvalue().splitlines())
    assert result.ok and result.entries == 28, result.reason


def test_rotation_keeps_old_checkpoints_verifiable(engine) -> None:
    migrate(engine, MIGRATIONS)
    old, new = Signer.generate(), Signer.generate()
    store = AuditStore(session_factory(engine), old, checkpoint_every=4)
    store.register_key()
    store.append(events("ws", 10))
    kept = store.latest_checkpoint("ws")
    assert store.rotate(new) == old.key_id
    store.append(events("ws", 10, start=10))
    cps = {c.size: c for c in store.sessions().scalars(select(Checkpoint).where(Checkpoint.workspace == "ws"))}
    assert {cps[4].key_id, cps[8].key_id, cps[10].key_id} == {old.key_id}
    assert {cps[12].key_id, cps[16].key_id, cps[20].key_id} == {new.key_id}
    reply = store.checkpoint(audit_pb2.GetCheckpointRequest(workspace="ws"))
    verifiers = [signednote.Verifier.parse(k) for k in reply.verifier_keys]
    assert len(verifiers) == 2
    for cp in cps.values():
        signednote.open_checkpoint(cp.note, verifiers, origin=store.origin("ws"))
    cons = store.consistency_proof(audit_pb2.ConsistencyProofRequest(workspace="ws", old_size=kept.size))
    auditlog.verify_consistency_notes(kept.note, reply.note, [bytes.fromhex(h) for h in cons.hashes], verifiers)
    buf = io.BytesIO()
    store.write_bundle(buf, "ws", audit_pb2.ACTIVITY_SCOPE_OWN, BOB)
    result = auditlog.verify_bundle(buf.getvalue().splitlines(), against=kept.note)
    assert result.ok and result.elided == 10 and set(result.signed_by) == {old.key_id, new.key_id}, result.reason
    assert store.known_key_ids() == {old.key_id, new.key_id}


def test_exports_copy_at_most_100_checkpoints_evenly(engine) -> None:
    migrate(engine, MIGRATIONS)
    store = AuditStore(session_factory(engine), Signer.generate(), checkpoint_every=2)
    store.register_key()
    store.append(events("big", 450))
    buf = io.BytesIO()
    writer = store.write_bundle(buf, "big", audit_pb2.ACTIVITY_SCOPE_WORKSPACE, ALICE)
    assert writer.checkpoints == 101  # 100 of the 224 intermediate ones + the one at 450
    result = auditlog.verify_bundle(buf.getvalue().splitlines())
    assert result.ok and result.checkpoints == 101


def test_empty_log_checkpoint_and_bad_proof_requests(engine) -> None:
    migrate(engine, MIGRATIONS)
    store = AuditStore(session_factory(engine), Signer.generate(), origin_prefix="school.example/audit")
    store.register_key()
    reply = store.checkpoint(audit_pb2.GetCheckpointRequest(workspace="none"))
    assert reply.size == 0 and reply.origin == "school.example/audit/none"
    assert reply.note.startswith("school.example/audit/none\n0\n")
    buf = io.BytesIO()
    store.write_bundle(buf, "none", audit_pb2.ACTIVITY_SCOPE_WORKSPACE, ALICE)
    assert auditlog.verify_bundle(buf.getvalue().splitlines()).ok
    store.append(events("ws", 3))
    for req in (audit_pb2.InclusionProofRequest(workspace="ws", index=3),
                audit_pb2.InclusionProofRequest(workspace="ws", index=0, size=4),
                audit_pb2.InclusionProofRequest(workspace="none", index=0),
                audit_pb2.InclusionProofRequest(workspace="bad slug!", index=0)):
        with pytest.raises(Invalid):
            store.inclusion_proof(req)
    for creq in (audit_pb2.ConsistencyProofRequest(workspace="ws", old_size=4),
                 audit_pb2.ConsistencyProofRequest(workspace="ws", old_size=2, new_size=1),
                 audit_pb2.ConsistencyProofRequest(workspace="ws", old_size=-1)):
        with pytest.raises(Invalid):
            store.consistency_proof(creq)
    ok = store.consistency_proof(audit_pb2.ConsistencyProofRequest(workspace="ws", old_size=0))
    assert ok.hashes == [] and ok.old_root == merkle.EMPTY_ROOT.hex() and ok.new_size == 3
