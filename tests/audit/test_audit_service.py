"""The audit service as a process: real nats-server, real SQLite and PostgreSQL, no mocks."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from reprolab.v1 import audit_pb2, common_pb2, events_pb2
from reprolab_common import auditlog, merkle, signednote
from reprolab_common.errors import ProblemError, ServiceUnavailable
from reprolab_common.nats import (
    MSG_ID,
    call,
    connect,
    ensure_streams,
    event_subject,
    new_event,
    publish_event,
)
from reprolab_common.natsserver import NatsServer
from reprolab_common.subjects import Audit

pytestmark = pytest.mark.timeout(120)

ALICE = common_pb2.Actor(user_id="u-alice", username="alice")
BOB = common_pb2.Actor(user_id="u-bob", username="bob")
CAROL = common_pb2.Actor(user_id="u-carol", username="carol")
WORKSPACE = audit_pb2.ACTIVITY_SCOPE_WORKSPACE
OWN = audit_pb2.ACTIVITY_SCOPE_OWN


class AuditProcess:
    """``python -m reprolab_audit`` as a child process with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, **extra: str) -> AuditProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "reprolab_audit"], env={**self.env, **extra},
                                         stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def audit_env(nats_server: NatsServer, database_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ, **database_env,
        "REPROLAB_NATS_URL": nats_server.url,
        # The NATS server is shared by the session: a consumer of our own starts clean.
        "REPROLAB_AUDIT_DURABLE": f"audit-{uuid.uuid4().hex[:8]}",
        "REPROLAB_AUDIT_ACK_WAIT_SECONDS": "2",
        "REPROLAB_AUDIT_CHECKPOINT_EVERY": "5",
        "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "0.5",
        "REPROLAB_AUDIT_FETCH_TIMEOUT_SECONDS": "0.5",
    }


@pytest.fixture
def audit(audit_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., AuditProcess]]:
    started: list[AuditProcess] = []

    def _start(**extra: str) -> AuditProcess:
        proc = AuditProcess(audit_env, tmp_path / f"audit-{len(started)}.log").start(**extra)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


def objects_dir(env: dict[str, str]) -> Path:
    return Path(env["REPROLAB_DATA_DIR"]) / "objects"


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except ServiceUnavailable as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


async def query(nc: Client, workspace: str, scope: int = WORKSPACE, actor: common_pb2.Actor = CAROL,
                **filters: Any) -> audit_pb2.ActivityList:
    req = audit_pb2.QueryActivityRequest(actor=actor, workspace=workspace, scope=scope, **filters)
    return await call(nc, Audit.QUERY, req, audit_pb2.ActivityList)


async def all_entries(nc: Client, workspace: str) -> list[audit_pb2.ActivityEntry]:
    items: list[audit_pb2.ActivityEntry] = []
    while True:
        page = await query(nc, workspace, limit=1000, after_seq=items[-1].seq if items else 0)
        items.extend(page.items)
        if len(page.items) < 1000:
            return items


async def wait_size(nc: Client, workspace: str, size: int, within: float = 30.0) -> None:
    async def _check() -> bool:
        return (await query(nc, workspace, limit=1)).head_seq == size
    await eventually(_check, within, f"{workspace} to reach {size} entries")


async def wait_ready(nc: Client) -> None:
    async def _check() -> bool:
        await query(nc, "ready-probe", limit=1)
        return True
    await eventually(_check, 30, "the audit service to answer")


def events_for(workspace: str, n: int, start: int = 0) -> list[events_pb2.Event]:
    actors = [ALICE, BOB, CAROL]
    base = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    out = []
    for i in range(start, start + n):
        if i % 2:
            kw: dict[str, Any] = {
                "type": "dataset.downloaded", "subject": f"datasets/d{i}",
                "dataset_downloaded": events_pb2.DatasetDownloaded(name=f"d{i}", digest="sha256:1")}
        else:
            kw = {"type": "version.created", "subject": f"environments/iris/versions/{i}",
                  "version_created": events_pb2.VersionCreated(environment="iris", number=i, origin="update")}
        out.append(new_event(actor=actors[i % 3], workspace=workspace, time=base + timedelta(minutes=i),
                             **kw))
    return out


def check_tree(items: list[audit_pb2.ActivityEntry]) -> merkle.MemoryTree:
    """Entries numbered from 1, each leaf the RFC 6962 hash of its canonical JSON."""
    for n, item in enumerate(items, start=1):
        assert item.seq == n
        assert item.leaf_hash == hashlib.sha256(b"\x00" + item.canonical_json.encode()).hexdigest()
        assert json.loads(item.canonical_json)["event_id"] == item.event_id
    return merkle.MemoryTree(bytes.fromhex(i.leaf_hash) for i in items)


def notes_in(data: bytes) -> list[signednote.Checkpoint]:
    out = []
    for line in data.splitlines():
        doc = json.loads(line)
        if doc["type"] == "checkpoint":
            note = doc["checkpoint"]
            out.append(signednote.parse_checkpoint(note[:note.rfind("\n\n") + 1]))
    return out


async def test_events_are_logged_queried_proven_exported_and_verified(
        audit: Callable[..., AuditProcess], audit_env: dict[str, str], nats_server: NatsServer) -> None:
    ws = f"ws-{uuid.uuid4().hex[:8]}"
    proc = audit()
    nc = await connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await wait_ready(nc)
        published = events_for(ws, 12)
        for ev in published:
            await publish_event(js, ev)
        await publish_event(js, published[3])   # same Nats-Msg-Id: JetStream drops it
        # the same event again under another message id reaches the stream: the audit log must skip it
        await js.publish(event_subject(published[4]), published[4].SerializeToString(),
                         headers={MSG_ID: f"again-{published[4].id}"})
        await js.publish(f"events.{ws}.junk.bad", b"\xff\xfe not a protobuf")
        future = new_event(type="dataset.downloaded", actor=ALICE, workspace=ws, subject="datasets/x",
                           dataset_downloaded=events_pb2.DatasetDownloaded(name="x"))
        future.schema_version = 7
        await publish_event(js, future)
        later = events_for(ws, 2, start=12)
        for ev in later:
            await publish_event(js, ev)
        published += later
        await wait_size(nc, ws, 14)

        items = await all_entries(nc, ws)
        assert [i.event_id for i in items] == [ev.id for ev in published]   # each once, in order
        tree = check_tree(items)
        first = items[0]
        assert (first.workspace, first.type, first.subject, first.actor_id, first.actor_name) == (
            ws, "version.created", "environments/iris/versions/0", "u-alice", "alice")
        assert first.time.ToDatetime(UTC) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        assert json.loads(first.canonical_json)["details"] == {"environment": "iris", "origin": "update"}
        assert proc.text().count(f"rejected message on events.{ws}.") == 2

        # scopes and filters
        own = await query(nc, ws, OWN, ALICE)
        assert [i.seq for i in own.items] == [1, 4, 7, 10, 13] and own.head_seq == 14
        assert {i.actor_id for i in own.items} == {"u-alice"}
        assert len((await query(nc, ws, WORKSPACE, ALICE)).items) == 14
        assert [i.seq for i in (await query(nc, ws, actor_name="bob")).items] == [2, 5, 8, 11, 14]
        downloads = await query(nc, ws, type="dataset.downloaded")
        assert [i.seq for i in downloads.items] == [2, 4, 6, 8, 10, 12, 14]
        prefix = await query(nc, ws, subject_prefix="environments/iris/versions/1")
        assert [i.subject for i in prefix.items] == ["environments/iris/versions/10",
                                                     "environments/iris/versions/12"]
        assert (await query(nc, ws, subject_prefix="ENVIRONMENTS")).items == []   # case matters
        page = await query(nc, ws, after_seq=3, limit=4)
        assert [i.seq for i in page.items] == [4, 5, 6, 7]
        since = common_pb2.TimeRange()
        since.since.FromDatetime(datetime(2026, 5, 1, 12, 3, tzinfo=UTC))
        since.until.FromDatetime(datetime(2026, 5, 1, 12, 6, tzinfo=UTC))
        assert [i.seq for i in (await query(nc, ws, time=since)).items] == [4, 5, 6]
        assert (await query(nc, "no-such-ws")).head_seq == 0
        with pytest.raises(ProblemError) as bad:
            await query(nc, ws, limit=-1)
        assert bad.value.status == 422
        with pytest.raises(ProblemError) as bad:
            await query(nc, ws, OWN, common_pb2.Actor(username="anon"))
        assert bad.value.status == 422

        # the timed checkpoint covers the 14th entry (14 is not a multiple of 5)
        await asyncio.sleep(1.5)

        # the checkpoint endpoint: a C2SP note of the whole log, verifiable with the keys it names
        signed = await call(nc, Audit.CHECKPOINT, audit_pb2.GetCheckpointRequest(actor=ALICE, workspace=ws),
                            audit_pb2.SignedCheckpoint)
        verifiers = [signednote.Verifier.parse(k) for k in signed.verifier_keys]
        cp, _ = signednote.open_checkpoint(signed.note, verifiers, origin=signed.origin)
        assert (cp.size, cp.root.hex(), signed.root) == (14, tree.root().hex(), tree.root().hex())
        # inclusion proofs of every entry against it, and consistency from every earlier size
        for index in range(14):
            proof = await call(nc, Audit.INCLUSION_PROOF, audit_pb2.InclusionProofRequest(
                actor=BOB, workspace=ws, index=index), audit_pb2.InclusionProof)
            assert (proof.size, proof.checkpoint) == (14, signed.note)
            merkle.verify_inclusion(index, 14, bytes.fromhex(items[index].leaf_hash),
                                    [bytes.fromhex(h) for h in proof.hashes], cp.root)
        five = await call(nc, Audit.INCLUSION_PROOF, audit_pb2.InclusionProofRequest(
            actor=BOB, workspace=ws, index=2, size=5), audit_pb2.InclusionProof)
        kept, _ = signednote.open_checkpoint(five.checkpoint, verifiers)  # the periodic one at 5
        merkle.verify_inclusion(2, 5, tree.node(0, 2), [bytes.fromhex(h) for h in five.hashes], kept.root)
        for old in range(0, 15):
            cons = await call(nc, Audit.CONSISTENCY_PROOF, audit_pb2.ConsistencyProofRequest(
                actor=BOB, workspace=ws, old_size=old), audit_pb2.ConsistencyProof)
            assert cons.new_size == 14 and cons.new_checkpoint == signed.note
            merkle.verify_consistency(old, 14, [bytes.fromhex(h) for h in cons.hashes], tree.root(old), cp.root)
        cons = await call(nc, Audit.CONSISTENCY_PROOF, audit_pb2.ConsistencyProofRequest(
            actor=BOB, workspace=ws, old_size=5, new_size=10), audit_pb2.ConsistencyProof)
        auditlog.verify_consistency_notes(cons.old_checkpoint, cons.new_checkpoint,
                                          [bytes.fromhex(h) for h in cons.hashes], verifiers)
        for bad in (audit_pb2.InclusionProofRequest(workspace=ws, index=14),
                    audit_pb2.InclusionProofRequest(workspace=ws, index=0, size=15),
                    audit_pb2.InclusionProofRequest(workspace=ws, index=-1)):
            with pytest.raises(ProblemError) as err:
                await call(nc, Audit.INCLUSION_PROOF, bad, audit_pb2.InclusionProof)
            assert err.value.status == 422
        for bad_c in (audit_pb2.ConsistencyProofRequest(workspace=ws, old_size=15),
                      audit_pb2.ConsistencyProofRequest(workspace=ws, old_size=6, new_size=5)):
            with pytest.raises(ProblemError) as err:
                await call(nc, Audit.CONSISTENCY_PROOF, bad_c, audit_pb2.ConsistencyProof)
            assert err.value.status == 422
        empty = await call(nc, Audit.CHECKPOINT, audit_pb2.GetCheckpointRequest(workspace="empty-ws"),
                           audit_pb2.SignedCheckpoint)
        assert empty.size == 0 and empty.root == merkle.EMPTY_ROOT.hex()

        full = await call(nc, Audit.EXPORT,
                          audit_pb2.ExportActivityRequest(actor=CAROL, workspace=ws, scope=WORKSPACE),
                          audit_pb2.ExportActivityReply)
        assert full.object_key.startswith(f"exports/{ws}/") and full.object_key.endswith(".jsonl")
        data = (objects_dir(audit_env) / full.object_key).read_bytes()
        assert (full.entries, full.size_bytes) == (14, len(data))
        assert full.sha256 == hashlib.sha256(data).hexdigest()
        lines = data.splitlines(keepends=True)
        result = auditlog.verify_bundle(lines)
        assert result.ok, result.reason
        assert result.root == tree.root().hex() and result.origin == f"reprolab.local/audit/{ws}"
        assert [c.size for c in notes_in(data)] == [5, 10, 14]   # every 5, the timed one at 14, reused to close

        student = await call(nc, Audit.EXPORT,
                             audit_pb2.ExportActivityRequest(actor=BOB, workspace=ws, scope=OWN),
                             audit_pb2.ExportActivityReply)
        student_data = (objects_dir(audit_env) / student.object_key).read_bytes()
        text = student_data.decode()
        assert '"name":"bob"' in text and "alice" not in text and "carol" not in text
        own_result = auditlog.verify_bundle(student_data.splitlines(keepends=True))
        assert own_result.ok and own_result.elided > 0 and own_result.entries >= 14

        for reply in (full, student):
            verified = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(actor=CAROL,
                                  object_key=reply.object_key), audit_pb2.VerifyActivityReply)
            assert verified.ok and verified.keys_known and verified.matches_log, verified
            assert (verified.entries, verified.workspace) == (reply.entries, ws)
            assert verified.checkpoints >= 3
        # against the checkpoint of size 5 the user kept: the log only grew
        grew = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(
            object_key=full.object_key, old_checkpoint=five.checkpoint), audit_pb2.VerifyActivityReply)
        assert grew.ok and grew.against_size == 5, grew

        # each export emitted activity.exported through the outbox, and that event is in the chain too
        async def _exported() -> list:
            got = (await query(nc, ws, type="activity.exported")).items
            return list(got) if len(got) == 2 else []
        exported = await eventually(_exported, 15, "two activity.exported entries")
        details = [json.loads(e.canonical_json)["details"] for e in exported]
        assert [d["bundle_sha256"] for d in details] == [full.sha256, student.sha256]
        assert [e.actor_name for e in exported] == ["carol", "bob"]

        # a tampered copy: the service names the bad line
        tampered = bytearray(data)
        at = data.index(b'"name":"d5"')
        tampered[at + 9] = ord("X")
        key = f"exports/{ws}/tampered.jsonl"
        (objects_dir(audit_env) / key).write_bytes(bytes(tampered))
        verdict = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(object_key=key),
                             audit_pb2.VerifyActivityReply)
        bad_line = data[:at].count(b"\n") + 1
        assert not verdict.ok and (verdict.line, verdict.seq) == (bad_line, 6)
        assert verdict.reason == f"line {bad_line} (seq 6): entry does not match its leaf hash (edited?)"

        # an intact bundle signed by somebody else's key
        forger = auditlog.Signer.generate()
        buf = io.BytesIO()
        origin = auditlog.origin_for(ws)
        writer = auditlog.BundleWriter(buf, workspace=ws, origin=origin, scope="workspace",
                                       exported_at=auditlog.now_time(), size=len(items),
                                       verifier_keys=[forger.vkey(origin)])
        for item in items:
            writer.entry(item.seq, item.canonical_json.encode())
        writer.close(forger.sign_checkpoint(origin, writer.size, writer.root()))
        key = f"exports/{ws}/forged.jsonl"
        (objects_dir(audit_env) / key).write_bytes(buf.getvalue())
        verdict = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(object_key=key),
                             audit_pb2.VerifyActivityReply)
        assert not verdict.ok and not verdict.keys_known
        assert "not signed by this server's keys" in verdict.reason and forger.key_id in verdict.reason

        with pytest.raises(ProblemError) as missing:
            await call(nc, Audit.VERIFY,
                       audit_pb2.VerifyActivityRequest(object_key=f"exports/{ws}/nope.jsonl"),
                       audit_pb2.VerifyActivityReply)
        assert missing.value.status == 404
    finally:
        await nc.close()
    assert proc.stop() == 0   # SIGTERM: clean shutdown
    assert "duplicates skipped" in proc.text()


async def test_rotate_key_while_running_keeps_old_checkpoints_verifiable(
        audit: Callable[..., AuditProcess], audit_env: dict[str, str], nats_server: NatsServer) -> None:
    ws = f"ws-{uuid.uuid4().hex[:8]}"
    proc = audit()
    nc = await connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await wait_ready(nc)
        published = events_for(ws, 10)
        for ev in published[:6]:
            await publish_event(js, ev)
        await wait_size(nc, ws, 6)
        before = await call(nc, Audit.CHECKPOINT, audit_pb2.GetCheckpointRequest(workspace=ws),
                            audit_pb2.SignedCheckpoint)
        assert before.size == 6 and len(before.verifier_keys) == 1
        key_file = Path(audit_env["REPROLAB_DATA_DIR"]) / "audit-signing-key"
        old_key = auditlog.Signer.from_bytes(key_file.read_bytes())

        rotated = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "reprolab_audit", "rotate-key"], env=audit_env,
            capture_output=True, text=True, timeout=60)
        assert rotated.returncode == 0, rotated.stderr
        new_key = auditlog.Signer.from_bytes(key_file.read_bytes())
        assert new_key.key_id != old_key.key_id and new_key.key_id in rotated.stdout
        assert (key_file.parent / f"audit-signing-key.{old_key.key_id}.retired").exists()

        async def _switched() -> bool:  # the running service picks the new key file up on its next round
            return f"signing key rotated: {old_key.key_id} -> {new_key.key_id}" in proc.text()
        await eventually(_switched, 20, "the service to switch to the rotated key")
        for ev in published[6:]:
            await publish_event(js, ev)
        await wait_size(nc, ws, 10)
        new_vkey = new_key.vkey(auditlog.origin_for(ws))

        async def _signed_by_new_key() -> audit_pb2.SignedCheckpoint | None:
            cp = await call(nc, Audit.CHECKPOINT, audit_pb2.GetCheckpointRequest(workspace=ws),
                            audit_pb2.SignedCheckpoint)
            try:
                signednote.open_checkpoint(cp.note, [new_key.verifier(cp.origin)])
            except signednote.NoteError:
                return None
            return cp if cp.size == 10 else None
        after = await eventually(_signed_by_new_key, 20, "a checkpoint signed with the rotated key")
        verifiers = [signednote.Verifier.parse(k) for k in after.verifier_keys]
        assert new_vkey in after.verifier_keys and old_key.vkey(after.origin) in after.verifier_keys
        # the note kept before the rotation still verifies, and the log extends it
        signednote.open_checkpoint(before.note, verifiers)
        cons = await call(nc, Audit.CONSISTENCY_PROOF, audit_pb2.ConsistencyProofRequest(workspace=ws, old_size=6),
                          audit_pb2.ConsistencyProof)
        auditlog.verify_consistency_notes(before.note, after.note, [bytes.fromhex(h) for h in cons.hashes],
                                          verifiers)
        with pytest.raises(signednote.NoteError):  # the new note is not signed by the retired key
            signednote.open_checkpoint(after.note, [old_key.verifier(after.origin)])

        reply = await call(nc, Audit.EXPORT, audit_pb2.ExportActivityRequest(actor=CAROL, workspace=ws,
                           scope=WORKSPACE), audit_pb2.ExportActivityReply)
        data = (objects_dir(audit_env) / reply.object_key).read_bytes()
        result = auditlog.verify_bundle(data.splitlines(), against=before.note)
        assert result.ok and result.against_size == 6, result.reason
        assert set(result.signed_by) == {old_key.key_id, new_key.key_id}
        verdict = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(
            object_key=reply.object_key, old_checkpoint=before.note), audit_pb2.VerifyActivityReply)
        assert verdict.ok and verdict.keys_known and verdict.matches_log and verdict.against_size == 6, verdict
    finally:
        await nc.close()


async def test_kill_9_mid_stream_and_restart_stores_every_event_once(
        audit: Callable[..., AuditProcess], audit_env: dict[str, str], nats_server: NatsServer,
        tmp_path: Path) -> None:
    ws = f"ws-{uuid.uuid4().hex[:8]}"
    total = 400
    first = audit(REPROLAB_AUDIT_BATCH_SIZE="16")
    nc = await connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await wait_ready(nc)
        published = events_for(ws, total)
        sent = 0

        async def publisher() -> None:
            nonlocal sent
            for ev in published:
                await publish_event(js, ev)
                sent += 1
                if sent % 4 == 0:
                    await asyncio.sleep(0.03)  # a busy machine must still be mid-stream at the kill

        task = asyncio.create_task(publisher())

        async def _some() -> bool:
            return (await query(nc, ws, limit=1)).head_seq >= 40
        await eventually(_some, 30, "the first entries")
        first.kill()
        assert sent < total, "the kill should land while events are still arriving"

        # restart with a rotated signing key: old checkpoints must stay verifiable as this server's
        key_file = tmp_path / "rotated.pem"
        rotated = auditlog.Signer.generate()
        key_file.write_bytes(rotated.private_pem())
        audit(REPROLAB_AUDIT_SIGNING_KEY_FILE=str(key_file), REPROLAB_AUDIT_BATCH_SIZE="16")
        await task
        await wait_ready(nc)
        await wait_size(nc, ws, total, within=60)

        items = await all_entries(nc, ws)
        assert len(items) == total
        # Every event exactly once. Not necessarily in publish order: the killed process's unacked
        # batch is redelivered after ack_wait, behind events the new process already received.
        assert Counter(i.event_id for i in items) == Counter(ev.id for ev in published)
        check_tree(items)

        reply = await call(nc, Audit.EXPORT,
                           audit_pb2.ExportActivityRequest(actor=ALICE, workspace=ws, scope=OWN),
                           audit_pb2.ExportActivityReply)
        verdict = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(object_key=reply.object_key),
                             audit_pb2.VerifyActivityReply)
        assert verdict.ok and verdict.keys_known and verdict.entries == total, verdict
        header = json.loads((objects_dir(audit_env) / reply.object_key).read_bytes().split(b"\n", 1)[0])
        key_ids = {auditlog.key_id_for(signednote.Verifier.parse(k).public_key) for k in header["verifier_keys"]}
        generated = auditlog.Signer.from_bytes((Path(audit_env["REPROLAB_DATA_DIR"]) / "audit-signing-key")
                                               .read_bytes())
        assert key_ids == {generated.key_id, rotated.key_id}
    finally:
        await nc.close()


async def test_consumer_survives_a_nats_restart(tmp_path: Path) -> None:
    """A private nats-server (the session one is shared) restarted under a running audit service."""
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    env = {**os.environ, "REPROLAB_NATS_URL": server.url, "REPROLAB_DATA_DIR": str(tmp_path / "data"),
           "REPROLAB_AUDIT_FETCH_TIMEOUT_SECONDS": "0.5", "REPROLAB_AUDIT_ACK_WAIT_SECONDS": "2"}
    proc = AuditProcess(env, tmp_path / "audit.log").start()
    ws = f"ws-{uuid.uuid4().hex[:8]}"
    published = events_for(ws, 60)
    nc = await connect(server.url, "test")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await wait_ready(nc)
        for ev in published[:30]:
            await publish_event(js, ev)
        await wait_size(nc, ws, 30)
        await asyncio.to_thread(server.restart)
        for ev in published[30:]:
            for _ in range(100):  # the client is reconnecting: retry the publish (same id, stored once)
                try:
                    await publish_event(js, ev, timeout=1.0)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        await wait_size(nc, ws, 60, within=60)
        items = await all_entries(nc, ws)
        assert Counter(i.event_id for i in items) == Counter(ev.id for ev in published)
        check_tree(items)
        reply = await call(nc, Audit.EXPORT, audit_pb2.ExportActivityRequest(actor=CAROL, workspace=ws,
                           scope=WORKSPACE), audit_pb2.ExportActivityReply)
        verdict = await call(nc, Audit.VERIFY, audit_pb2.VerifyActivityRequest(object_key=reply.object_key),
                             audit_pb2.VerifyActivityReply)
        assert verdict.ok and verdict.entries == 60
    finally:
        await nc.close()
        assert proc.stop() == 0
        server.stop()
