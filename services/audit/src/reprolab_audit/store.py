"""The audit log on its database: append events to workspace chains, checkpoint, query, export.

Plain synchronous functions on a session factory; the asyncio parts call them in worker threads.
Nothing here updates or deletes an entry.
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
from reprolab_common import auditlog
from reprolab_common.auditlog import BundleWriter, Chain, Signer
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.nats import new_event
from reprolab_common.objectstore import ObjectNotFound, ObjectStore, check_key
from reprolab_common.outbox import add_event
from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from .models import Checkpoint, Entry, Head, Outbox, SigningKey

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


@dataclass
class AppendResult:
    stored: int = 0
    duplicates: int = 0
    checkpoints: int = 0


class AuditStore:
    """Per-workspace hash chains in the service's database.

    Appends and checkpoints run under one in-process lock (SQLite has one writer anyway) and, for
    PostgreSQL replicas, under the workspace head row taken ``FOR UPDATE``: two appenders can never
    both extend the same head.
    """

    def __init__(self, sessions: sessionmaker, signer: Signer, *, checkpoint_every: int = 100) -> None:
        self.sessions = sessions
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self._write = threading.Lock()

    # --- keys -------------------------------------------------------------------------------

    def register_key(self) -> None:
        """Record the signing key's public half (once): bundles it signed stay verifiable after rotation."""
        with self._write, self.sessions.begin() as s:
            if s.get(SigningKey, self.signer.key_id) is None:
                s.add(SigningKey(key_id=self.signer.key_id, public_key=self.signer.public_key_b64,
                                 created_at=datetime.now(UTC)))
                log.info("recorded signing key %s", self.signer.key_id)

    def known_key_ids(self) -> set[str]:
        with self.sessions() as s:
            return set(s.scalars(select(SigningKey.key_id)))

    # --- appending --------------------------------------------------------------------------

    def _lock_head(self, s: Session, workspace: str) -> Head:
        values = {"workspace": workspace, "size": 0, "hash": auditlog.ZERO_HEX, "checkpoint_size": 0}
        dialect = s.get_bind().dialect.name
        stmt = (pg_insert(Head) if dialect == "postgresql" else sqlite_insert(Head)).values(**values)
        s.execute(stmt.on_conflict_do_nothing(index_elements=["workspace"]))
        head = s.scalars(select(Head).where(Head.workspace == workspace).with_for_update()).one()
        return head

    def _checkpoint(self, s: Session, head: Head, kind: str = auditlog.KIND_PERIODIC) -> dict:
        cp = self.signer.sign_checkpoint(workspace=head.workspace, size=head.size, head=head.hash, kind=kind)
        s.add(Checkpoint(**cp))
        if kind == auditlog.KIND_PERIODIC:
            head.checkpoint_size = head.size
        return cp

    def append(self, events: list[events_pb2.Event]) -> AppendResult:
        """Append events in order to their workspaces' chains, in one transaction; an event whose id
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
                chain = Chain(workspace, head.size, bytes.fromhex(head.hash))
                rows = []
                for ev in by_workspace[workspace]:
                    e = chain.append(ev)
                    rows.append({
                        "workspace": workspace, "seq": e.seq, "event_id": ev.id, "type": ev.type,
                        "subject": ev.subject, "actor_id": ev.actor.user_id, "actor_name": ev.actor.username,
                        "time": auditlog.event_time(ev), "canonical": e.canonical.decode(),
                        "leaf": e.leaf.hex(), "prev_hash": e.prev.hex(), "hash": e.hash.hex(),
                    })
                    if e.seq % self.checkpoint_every == 0:
                        head.size, head.hash = e.seq, e.hash.hex()
                        self._checkpoint(s, head)
                        result.checkpoints += 1
                s.execute(insert(Entry), rows)
                head.size, head.hash = chain.size, chain.head.hex()
                result.stored += len(by_workspace[workspace])
        return result

    def checkpoint_pending(self) -> int:
        """Sign a periodic checkpoint for every workspace with entries newer than its last one."""
        with self.sessions() as s:
            pending = list(s.scalars(select(Head.workspace).where(Head.size > Head.checkpoint_size)))
        done = 0
        for workspace in pending:
            with self._write, self.sessions.begin() as s:
                head = self._lock_head(s, workspace)
                if head.size > head.checkpoint_size:
                    self._checkpoint(s, head)
                    done += 1
        return done

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
                canonical_json=row.canonical, prev_hash=row.prev_hash, hash=row.hash,
            )
            item.time.FromDatetime(row.time)
        return reply

    # --- export -----------------------------------------------------------------------------

    def write_bundle(self, out: IO[bytes], workspace: str, scope: int,
                     actor: common_pb2.Actor) -> BundleWriter:
        """Write the workspace's chain up to its current head as a bundle; entries of other actors
        are elided in an OWN export. Every stored hash is re-derived on the way out."""
        own = scope == audit_pb2.ACTIVITY_SCOPE_OWN
        with self.sessions() as s:
            head = s.get(Head, workspace)
            size, head_hash = (head.size, head.hash) if head else (0, auditlog.ZERO_HEX)
            checkpoints = s.scalars(
                select(Checkpoint).where(Checkpoint.workspace == workspace, Checkpoint.size <= size,
                                         Checkpoint.kind == auditlog.KIND_PERIODIC)
                .order_by(Checkpoint.size, Checkpoint.id)).all()
            key_ids = {cp.key_id for cp in checkpoints} - {self.signer.key_id}
            keys = [self.signer.public_key_entry()] + [
                {"key_id": k.key_id, "public_key": k.public_key}
                for k in s.scalars(select(SigningKey).where(SigningKey.key_id.in_(key_ids))
                                   .order_by(SigningKey.key_id))]
            writer = BundleWriter(out, workspace=workspace, scope=auditlog.SCOPE_OWN if own else
                                  auditlog.SCOPE_WORKSPACE, exported_at=auditlog.now_time(), public_keys=keys)
            pending = iter(checkpoints)
            cp = next(pending, None)
            rows = s.execute(
                select(Entry.seq, Entry.actor_id, Entry.canonical, Entry.leaf, Entry.hash)
                .where(Entry.workspace == workspace, Entry.seq <= size).order_by(Entry.seq)
                .execution_options(yield_per=2000))
            for seq, actor_id, canonical, leaf, stored_hash in rows:
                if own and actor_id != actor.user_id:
                    new = writer.elided(seq, bytes.fromhex(leaf))
                else:
                    new = writer.entry(seq, canonical.encode())
                if new.hex() != stored_hash:
                    raise RuntimeError(f"stored chain of {workspace} does not recompute at seq {seq}")
                while cp is not None and cp.size == seq:
                    writer.checkpoint(cp.document())
                    cp = next(pending, None)
            if writer.size != size or writer.head.hex() != head_hash:
                raise RuntimeError(f"stored chain of {workspace} ends at {writer.size}, head says {size}")
        return writer

    def export(self, req: audit_pb2.ExportActivityRequest,
               objects: ObjectStore) -> audit_pb2.ExportActivityReply:
        workspace = _workspace(req.workspace)
        scope = _scope(req.scope, req.actor)
        key = f"exports/{workspace}/{uuid.uuid4()}.jsonl"
        with tempfile.TemporaryDirectory(prefix="audit-export-") as tmp:
            path = Path(tmp) / "bundle.jsonl"
            with open(path, "wb") as fh:
                out = _HashingWriter(fh)
                writer = self.write_bundle(out, workspace, scope, req.actor)
                closing = writer.close(self.signer)
            objects.put_file(key, path)
        digest = out.sha256.hexdigest()
        event = new_event(
            type="activity.exported", actor=req.actor, workspace=workspace,
            subject=f"activity/exports/{key.rsplit('/', 1)[-1].removesuffix('.jsonl')}",
            activity_exported=events_pb2.ActivityExported(entries=writer.size, bundle_sha256=digest))
        with self._write, self.sessions.begin() as s:
            s.add(Checkpoint(**closing))
            add_event(s, Outbox, event)
        log.info("exported %s (%d entries, %d elided) to %s",
                 workspace, writer.size, writer.elided_count, key)
        return audit_pb2.ExportActivityReply(object_key=key, entries=writer.size, size_bytes=out.size,
                                             sha256=digest)

    # --- verify -----------------------------------------------------------------------------

    def verify(self, req: audit_pb2.VerifyActivityRequest,
               objects: ObjectStore) -> audit_pb2.VerifyActivityReply:
        try:
            key = check_key(req.object_key)
        except ValueError:
            raise Invalid(f"invalid object key {req.object_key!r}", errors=[
                ("object_key", "a relative path like exports/<workspace>/<id>.jsonl")]) from None
        try:
            chunks = objects.open_chunks(key)
            result = auditlog.verify_bundle(auditlog.split_lines(chunks))
        except ObjectNotFound:
            raise NotFound(f"no bundle at {key}") from None
        known = self.known_key_ids()
        unknown = [k for k in result.key_ids if k not in known]
        reply = audit_pb2.VerifyActivityReply(
            ok=result.ok, entries=result.entries, checkpoints=result.checkpoints, workspace=result.workspace,
            line=result.line, seq=result.seq, reason=result.reason,
            keys_known=bool(result.key_ids) and not unknown,
        )
        if result.ok and not reply.keys_known:
            reply.ok = False
            reply.line = 1
            reply.reason = ("the bundle is intact but was not signed by this server's keys (unknown key id "
                            + ", ".join(unknown or ["none"]) + ")")
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
