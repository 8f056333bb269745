"""The audit log on its database: append events to workspace Merkle trees, sign checkpoints, answer
queries and proofs, export and verify bundles.

Plain synchronous functions on a session factory; the asyncio parts call them in worker threads.
Nothing here updates or deletes an entry. Per workspace the database holds the leaves (in
``entries``), every completed perfect subtree's root (``tree_nodes``: about one per entry) and the
right edge (``heads.tree``), so an append costs O(log n) hashes and a proof O(log^2 n) lookups,
whatever the log's size.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from reprolab.v1 import audit_pb2, common_pb2, events_pb2
from reprolab_common import auditlog, merkle
from reprolab_common.auditlog import BundleWriter, Log, Signer
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.merkle import CompactRange
from reprolab_common.nats import new_event
from reprolab_common.objectstore import ObjectNotFound, ObjectStore, check_key
from reprolab_common.outbox import add_event
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from .models import Checkpoint, Entry, Head, Node, Outbox, SigningKey

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Intermediate checkpoints copied into an export: enough to localise damage and to match checkpoints
# users kept, few enough that their signatures (~0.1 ms each) never dominate verifying a big bundle.
# Every checkpoint stays in the database and available through the API.
MAX_BUNDLE_CHECKPOINTS = 100
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


@dataclass
class AppendResult:
    stored: int = 0
    duplicates: int = 0
    checkpoints: int = 0


def _tree_of(head: Head) -> CompactRange:
    text = head.tree or ""
    return CompactRange(head.size, [bytes.fromhex(text[i:i + 64]) for i in range(0, len(text), 64)])


class AuditStore:
    """Per-workspace Merkle logs in the service's database.

    Appends and checkpoints run under one in-process lock (SQLite has one writer anyway) and, for
    PostgreSQL replicas, under the workspace head row taken ``FOR UPDATE``: two appenders can never
    both extend the same tree.
    """

    def __init__(self, sessions: sessionmaker, signer: Signer, *, checkpoint_every: int = 100,
                 origin_prefix: str = auditlog.DEFAULT_ORIGIN_PREFIX) -> None:
        self.sessions = sessions
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.origin_prefix = origin_prefix
        self._write = threading.Lock()

    def origin(self, workspace: str) -> str:
        return auditlog.origin_for(workspace, self.origin_prefix)

    # --- keys -------------------------------------------------------------------------------

    def register_key(self) -> None:
        """Record the signing key's public half (once): what it signed stays verifiable after rotation."""
        with self._write, self.sessions.begin() as s:
            self._register(s, self.signer)

    def _register(self, s: Session, signer: Signer) -> None:
        if s.get(SigningKey, signer.key_id) is None:
            s.add(SigningKey(key_id=signer.key_id, public_key=signer.public_key_b64,
                             created_at=datetime.now(UTC)))
            log.info("recorded signing key %s", signer.key_id)

    def rotate(self, new: Signer) -> str:
        """Sign from now on with ``new``; the old key is marked retired but stays known, so every
        checkpoint it signed keeps verifying. Returns the retired key's id."""
        with self._write, self.sessions.begin() as s:
            self._register(s, new)
            old = self.signer
            if old.key_id != new.key_id:
                s.execute(update(SigningKey).where(SigningKey.key_id == old.key_id, SigningKey.retired_at.is_(None))
                          .values(retired_at=datetime.now(UTC)))
            self.signer = new
        log.info("signing key rotated: %s -> %s", old.key_id, new.key_id)
        return old.key_id

    def known_key_ids(self) -> set[str]:
        with self.sessions() as s:
            return set(s.scalars(select(SigningKey.key_id)))

    def verifier_keys(self, s: Session, workspace: str) -> list[str]:
        """Verifier key strings of every key ever used, under the workspace's origin (oldest first)."""
        origin = self.origin(workspace)
        keys = s.execute(select(SigningKey.public_key).order_by(SigningKey.created_at, SigningKey.key_id)).scalars()
        out = [auditlog.verifier_for(origin, k).vkey for k in keys]
        current = self.signer.vkey(origin)
        return out if current in out else [*out, current]

    # --- appending --------------------------------------------------------------------------

    def _lock_head(self, s: Session, workspace: str) -> Head:
        values = {"workspace": workspace, "size": 0, "tree": "", "checkpoint_size": 0}
        dialect = s.get_bind().dialect.name
        stmt = (pg_insert(Head) if dialect == "postgresql" else sqlite_insert(Head)).values(**values)
        s.execute(stmt.on_conflict_do_nothing(index_elements=["workspace"]))
        return s.scalars(select(Head).where(Head.workspace == workspace).with_for_update()).one()

    def _checkpoint(self, s: Session, workspace: str, size: int, root: bytes) -> Checkpoint:
        note = self.signer.sign_checkpoint(self.origin(workspace), size, root)
        cp = Checkpoint(workspace=workspace, size=size, root=root.hex(), key_id=self.signer.key_id, note=note,
                        created_at=datetime.now(UTC))
        s.add(cp)
        return cp

    def append(self, events: list[events_pb2.Event]) -> AppendResult:
        """Append events in order to their workspaces' logs, in one transaction; an event whose id
        is already stored (a redelivery) is skipped."""
        result = AppendResult()
        with self._write, self.sessions.begin() as s:
            ids = list({ev.id for ev in events})
            seen: set[str] = set()
            for i in range(0, len(ids), 500):
                seen.update(s.scalars(select(Entry.event_id).where(Entry.event_id.in_(ids[i:i + 500]))))
            by_workspace: dict[str, list[events_pb2.Event]] = {}
            for ev in events:
                if ev.id in seen:
                    result.duplicates += 1
                    continue
                seen.add(ev.id)
                by_workspace.setdefault(ev.workspace, []).append(ev)
            # Heads are locked in a fixed order so two replicas cannot deadlock on each other.
            for workspace in sorted(by_workspace):
                head = self._lock_head(s, workspace)
                tree = _tree_of(head)
                wlog = Log(workspace, tree)
                rows: list[dict] = []
                nodes: list[dict] = []

                def record(level: int, idx: int, h: bytes, workspace: str = workspace,
                           nodes: list[dict] = nodes) -> None:
                    if level:
                        nodes.append({"workspace": workspace, "level": level, "idx": idx, "hash": h.hex()})

                for ev in by_workspace[workspace]:
                    e = wlog.append(ev, record)
                    rows.append({
                        "workspace": workspace, "seq": e.seq, "event_id": ev.id, "type": ev.type,
                        "subject": ev.subject, "actor_id": ev.actor.user_id, "actor_name": ev.actor.username,
                        "time": auditlog.event_time(ev), "canonical": e.canonical.decode(), "leaf": e.leaf.hex(),
                    })
                    if e.seq % self.checkpoint_every == 0:
                        self._checkpoint(s, workspace, e.seq, tree.root())
                        head.checkpoint_size = e.seq
                        result.checkpoints += 1
                s.execute(insert(Entry), rows)
                if nodes:
                    s.execute(insert(Node), nodes)
                head.size = tree.size
                head.tree = "".join(h.hex() for h in tree.hashes)
                result.stored += len(rows)
        return result

    def checkpoint_pending(self) -> int:
        """Sign a checkpoint for every workspace with entries newer than its last one."""
        with self.sessions() as s:
            pending = list(s.scalars(select(Head.workspace).where(Head.size > Head.checkpoint_size)))
        done = 0
        for workspace in pending:
            with self._write, self.sessions.begin() as s:
                head = self._lock_head(s, workspace)
                if head.size > head.checkpoint_size:
                    self._checkpoint(s, workspace, head.size, _tree_of(head).root())
                    head.checkpoint_size = head.size
                    done += 1
        return done

    def latest_checkpoint(self, workspace: str) -> Checkpoint:
        """A checkpoint of the whole log as it is now: the newest one if it covers every entry,
        else a new one (so an empty workspace, too, gets a signed checkpoint of size 0)."""
        with self.sessions() as s:
            head = s.get(Head, workspace)
            size = head.size if head else 0
            cp = self._checkpoint_at(s, workspace, size)
            if cp is not None:
                s.expunge(cp)
                return cp
        with self._write, self.sessions.begin() as s:
            head = self._lock_head(s, workspace)
            cp = self._checkpoint_at(s, workspace, head.size)
            if cp is None:
                cp = self._checkpoint(s, workspace, head.size, _tree_of(head).root())
                head.checkpoint_size = max(head.checkpoint_size, head.size)
            s.flush()
            s.expunge(cp)
            return cp

    def _checkpoint_at(self, s: Session, workspace: str, size: int) -> Checkpoint | None:
        return s.scalars(select(Checkpoint).where(Checkpoint.workspace == workspace, Checkpoint.size == size)
                         .order_by(Checkpoint.id.desc()).limit(1)).first()

    # --- proofs -----------------------------------------------------------------------------

    def _nodes(self, s: Session, workspace: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Fetch perfect-subtree roots: level 0 from the entries' leaves, the rest from tree_nodes."""
        got: dict[tuple[int, int], bytes] = {}
        leaves = sorted(i for level, i in wanted if level == 0)
        for i in range(0, len(leaves), 500):
            part = [x + 1 for x in leaves[i:i + 500]]
            for seq, leaf in s.execute(select(Entry.seq, Entry.leaf).where(Entry.workspace == workspace,
                                                                           Entry.seq.in_(part))):
                got[(0, seq - 1)] = bytes.fromhex(leaf)
        upper = sorted(n for n in wanted if n[0] > 0)
        for i in range(0, len(upper), 200):
            cond = or_(*(and_(Node.level == level, Node.idx == idx) for level, idx in upper[i:i + 200]))
            for level, idx, h in s.execute(select(Node.level, Node.idx, Node.hash)
                                           .where(Node.workspace == workspace, cond)):
                got[(level, idx)] = bytes.fromhex(h)
        missing = wanted - got.keys()
        if missing:
            raise RuntimeError(f"tree of {workspace} lacks nodes {sorted(missing)[:5]}")
        return got

    def _root_at(self, s: Session, workspace: str, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        nodes = self._nodes(s, workspace, set(merkle.range_nodes(0, size)))
        return merkle.root_from_nodes(size, lambda level, idx: nodes[(level, idx)])

    def _sizes(self, workspace: str, size: int, what: str) -> tuple[int, str]:
        """``size`` or, when 0, the newest checkpoint's size; with that checkpoint's note if any."""
        if size == 0:
            cp = self.latest_checkpoint(workspace)
            return cp.size, cp.note
        with self.sessions() as s:
            head_size = self.head_size(s, workspace)
            if size < 0 or size > head_size:
                raise Invalid(f"{what} {size} is outside the log of {workspace}, which has {head_size} entries",
                              errors=[(what, f"between 0 and {head_size}")])
            cp = self._checkpoint_at(s, workspace, size)
            return size, cp.note if cp else ""

    def checkpoint(self, req: audit_pb2.GetCheckpointRequest) -> audit_pb2.SignedCheckpoint:
        workspace = _workspace(req.workspace)
        cp = self.latest_checkpoint(workspace)
        with self.sessions() as s:
            keys = self.verifier_keys(s, workspace)
        return audit_pb2.SignedCheckpoint(workspace=workspace, origin=self.origin(workspace), size=cp.size,
                                          root=cp.root, note=cp.note, verifier_keys=keys)

    def inclusion_proof(self, req: audit_pb2.InclusionProofRequest) -> audit_pb2.InclusionProof:
        workspace = _workspace(req.workspace)
        size, note = self._sizes(workspace, req.size, "size")
        if not 0 <= req.index < size:
            raise Invalid(f"leaf index {req.index} is not in a tree of {size} entries",
                          errors=[("index", f"between 0 and {size - 1} (seq - 1)" if size else "the log is empty")])
        with self.sessions() as s:
            wanted = merkle.inclusion_nodes(req.index, size) | {(0, req.index)} | set(merkle.range_nodes(0, size))
            nodes = self._nodes(s, workspace, wanted)
        source = lambda level, idx: nodes[(level, idx)]  # noqa: E731
        proof = merkle.inclusion_proof(req.index, size, source)
        return audit_pb2.InclusionProof(index=req.index, size=size, leaf_hash=nodes[(0, req.index)].hex(),
                                        hashes=[h.hex() for h in proof],
                                        root=merkle.root_from_nodes(size, source).hex(), checkpoint=note)

    def consistency_proof(self, req: audit_pb2.ConsistencyProofRequest) -> audit_pb2.ConsistencyProof:
        workspace = _workspace(req.workspace)
        new, new_note = self._sizes(workspace, req.new_size, "new")
        if not 0 <= req.old_size <= new:
            raise Invalid(f"no consistency proof from size {req.old_size} to size {new}",
                          errors=[("old", f"between 0 and {new}")])
        with self.sessions() as s:
            wanted = merkle.consistency_nodes(req.old_size, new)
            wanted |= set(merkle.range_nodes(0, new)) | set(merkle.range_nodes(0, req.old_size))
            nodes = self._nodes(s, workspace, wanted)
            old_cp = self._checkpoint_at(s, workspace, req.old_size)
            old_note = old_cp.note if old_cp else ""
        source = lambda level, idx: nodes[(level, idx)]  # noqa: E731
        proof = merkle.consistency_proof(req.old_size, new, source)
        return audit_pb2.ConsistencyProof(
            old_size=req.old_size, new_size=new, hashes=[h.hex() for h in proof],
            old_root=merkle.root_from_nodes(req.old_size, source).hex(),
            new_root=merkle.root_from_nodes(new, source).hex(), old_checkpoint=old_note, new_checkpoint=new_note)

    # --- reading ----------------------------------------------------------------------------

    def head_size(self, s: Session, workspace: str) -> int:
        return s.scalar(select(Head.size).where(Head.workspace == workspace)) or 0

    def query(self, req: audit_pb2.QueryActivityRequest) -> audit_pb2.ActivityList:
        workspace = _workspace(req.workspace)
        scope = _scope(req.scope, req.actor)
        if req.limit < 0:
            raise Invalid("limit must not be negative", errors=[("limit", "must be >= 0")])
        limit = min(req.limit or DEFAULT_LIMIT, MAX_LIMIT)
        stmt = select(Entry).where(Entry.workspace == workspace, Entry.seq > req.after_seq)
        if scope == audit_pb2.ACTIVITY_SCOPE_OWN:
            stmt = stmt.where(Entry.actor_id == req.actor.user_id)
        if req.subject_prefix:
            # substr, not LIKE: SQLite's LIKE ignores case and both treat % and _ as wildcards.
            n = len(req.subject_prefix)
            stmt = stmt.where(func.substr(Entry.subject, 1, n) == req.subject_prefix)
        if req.actor_name:
            stmt = stmt.where(Entry.actor_name == req.actor_name)
        if req.type:
            stmt = stmt.where(Entry.type == req.type)
        if req.time.HasField("since"):
            stmt = stmt.where(Entry.time >= req.time.since.ToDatetime(UTC))
        if req.time.HasField("until"):
            stmt = stmt.where(Entry.time < req.time.until.ToDatetime(UTC))
        with self.sessions() as s:
            rows = s.scalars(stmt.order_by(Entry.seq).limit(limit)).all()
            reply = audit_pb2.ActivityList(head_seq=self.head_size(s, workspace))
        for row in rows:
            item = reply.items.add(
                workspace=row.workspace, seq=row.seq, event_id=row.event_id, type=row.type,
                subject=row.subject, actor_id=row.actor_id, actor_name=row.actor_name,
                canonical_json=row.canonical, leaf_hash=row.leaf,
            )
            item.time.FromDatetime(row.time)
        return reply

    # --- export -----------------------------------------------------------------------------

    def write_bundle(self, out: IO[bytes], workspace: str, scope: int, actor: common_pb2.Actor) -> BundleWriter:
        """Write the workspace's log up to a checkpoint of its current size as a bundle; entries of
        other actors are elided in an OWN export. Every stored leaf is re-derived on the way out."""
        own = scope == audit_pb2.ACTIVITY_SCOPE_OWN
        closing = self.latest_checkpoint(workspace)
        size = closing.size
        with self.sessions() as s:
            checkpoints = s.scalars(
                select(Checkpoint).where(Checkpoint.workspace == workspace, Checkpoint.size <= size)
                .order_by(Checkpoint.size, Checkpoint.id)).all()
            writer = BundleWriter(out, workspace=workspace, origin=self.origin(workspace),
                                  scope=auditlog.SCOPE_OWN if own else auditlog.SCOPE_WORKSPACE,
                                  exported_at=auditlog.now_time(), size=size,
                                  verifier_keys=self.verifier_keys(s, workspace))
            pending = _thinned([cp for cp in checkpoints if cp.id != closing.id], MAX_BUNDLE_CHECKPOINTS)
            at = 0
            while at < len(pending) and pending[at].size == 0:
                writer.checkpoint(pending[at].note)
                at += 1
            rows = s.execute(
                select(Entry.seq, Entry.actor_id, Entry.canonical, Entry.leaf)
                .where(Entry.workspace == workspace, Entry.seq <= size).order_by(Entry.seq)
                .execution_options(yield_per=2000))
            for seq, actor_id, canonical, leaf in rows:
                if own and actor_id != actor.user_id:
                    writer.elided(seq, bytes.fromhex(leaf))
                elif writer.entry(seq, canonical.encode()).hex() != leaf:
                    raise RuntimeError(f"stored leaf of {workspace} seq {seq} does not recompute")
                while at < len(pending) and pending[at].size == seq:
                    writer.checkpoint(pending[at].note)
                    at += 1
            if writer.size != size:
                raise RuntimeError(f"log of {workspace} ends at {writer.size}, its checkpoint says {size}")
            writer.close(closing.note)
        return writer

    def export(self, req: audit_pb2.ExportActivityRequest, objects: ObjectStore) -> audit_pb2.ExportActivityReply:
        workspace = _workspace(req.workspace)
        scope = _scope(req.scope, req.actor)
        key = f"exports/{workspace}/{uuid.uuid4()}.jsonl"
        with tempfile.TemporaryDirectory(prefix="audit-export-") as tmp:
            path = Path(tmp) / "bundle.jsonl"
            with open(path, "wb") as fh:
                out = _HashingWriter(fh)
                writer = self.write_bundle(out, workspace, scope, req.actor)
            objects.put_file(key, path)
        digest = out.sha256.hexdigest()
        if req.for_verification:
            log.info("exported %s (%d entries) to verify it, not recorded", workspace, writer.size)
            return audit_pb2.ExportActivityReply(object_key=key, entries=writer.size, size_bytes=out.size,
                                                 sha256=digest)
        event = new_event(
            type="activity.exported", actor=req.actor, workspace=workspace,
            subject=f"activity/exports/{key.rsplit('/', 1)[-1].removesuffix('.jsonl')}",
            activity_exported=events_pb2.ActivityExported(entries=writer.size, bundle_sha256=digest))
        with self._write, self.sessions.begin() as s:
            add_event(s, Outbox, event)
        log.info("exported %s (%d entries, %d elided) to %s", workspace, writer.size, writer.elided_count, key)
        return audit_pb2.ExportActivityReply(object_key=key, entries=writer.size, size_bytes=out.size, sha256=digest)

    # --- verify -----------------------------------------------------------------------------

    def verify(self, req: audit_pb2.VerifyActivityRequest, objects: ObjectStore) -> audit_pb2.VerifyActivityReply:
        try:
            key = check_key(req.object_key)
        except ValueError:
            raise Invalid(f"invalid object key {req.object_key!r}", errors=[
                ("object_key", "a relative path like exports/<workspace>/<id>.jsonl")]) from None
        try:
            chunks = objects.open_chunks(key)
            result = auditlog.verify_bundle(auditlog.split_lines(chunks), against=req.old_checkpoint or None)
        except ObjectNotFound:
            raise NotFound(f"no bundle at {key}") from None
        known = self.known_key_ids()
        unknown = [k for k in result.signed_by if k not in known]
        reply = audit_pb2.VerifyActivityReply(
            ok=result.ok, entries=result.entries, checkpoints=result.checkpoints, workspace=result.workspace,
            line=result.line, seq=result.seq, reason=result.reason, origin=result.origin, root=result.root,
            against_size=result.against_size or 0, elided=result.elided,
            keys_known=bool(result.signed_by) and not unknown,
        )
        if not result.ok:
            return reply
        if not reply.keys_known:
            reply.ok = False
            reply.line = 1
            reply.reason = ("the bundle is intact but was not signed by this server's keys (unknown key id "
                            + ", ".join(unknown or ["none"]) + ")")
            return reply
        if result.origin != self.origin(result.workspace):
            reply.ok = False
            reply.line = 1
            reply.reason = f"the bundle is of log {result.origin!r}, not one of this server's"
            return reply
        with self.sessions() as s:
            size = self.head_size(s, result.workspace)
            if result.entries <= size:
                reply.matches_log = self._root_at(s, result.workspace, result.entries).hex() == result.root
        if not reply.matches_log:
            reply.ok = False
            reply.reason = (f"the bundle verifies, but this server's log of {result.workspace} has a different "
                            f"tree at size {result.entries} (or fewer entries): it is not an export of this log")
        return reply


class _HashingWriter:
    """A binary writer that also computes the sha256 and size of what passes through."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.fh.write(data)


def _thinned(items: list[Checkpoint], limit: int) -> list[Checkpoint]:
    """At most ``limit`` of ``items`` (sorted by size), evenly spread, the newest always kept."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    picked = {min(len(items) - 1, int((k + 1) * step) - 1) for k in range(limit)}
    return [items[i] for i in sorted(picked)]


def _workspace(slug: str) -> str:
    if not _SLUG.match(slug):
        raise Invalid(f"invalid workspace {slug!r}", errors=[("workspace", "a workspace slug is required")])
    return slug


def _scope(scope: int, actor: common_pb2.Actor) -> int:
    """An unset scope means OWN: the narrower view is the safe default."""
    if scope == audit_pb2.ACTIVITY_SCOPE_UNSPECIFIED:
        scope = audit_pb2.ACTIVITY_SCOPE_OWN
    if scope not in (audit_pb2.ACTIVITY_SCOPE_OWN, audit_pb2.ACTIVITY_SCOPE_WORKSPACE):
        raise Invalid(f"unknown scope {scope}", errors=[("scope", "OWN or WORKSPACE")])
    if scope == audit_pb2.ACTIVITY_SCOPE_OWN and not actor.user_id:
        raise Invalid("an OWN scope needs the actor's user id", errors=[("actor.user_id", "required")])
    return scope
