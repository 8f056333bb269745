"""Audit log figures, each beside a baseline measured in the same run.

1. Events/s from a gateway request to a stored audit entry (requests create environment versions
   through the REST API; the clock stops when the audit log holds all their entries), beside the raw
   JetStream publish rate (acked publishes to the same nats-server with the same concurrency).
2. Appends/s into the Merkle log through the real ``AuditStore`` (SQLite, batches of 256 as the
   consumer commits them: entries, tree nodes, right edge, a signed checkpoint every 100), beside raw
   sha256 of the same entries and a bare insert of the same rows into SQLite (no tree).
3. Verification of a 1,000,000-entry ``reprolab-audit/2`` bundle (every leaf rehashed from its exact
   bytes, the tree rebuilt, 100 checkpoint signatures and roots checked; target < 5 s), beside raw
   sha256 over the same bundle lines, both in CPU time (``time.process_time``); hashed with the C
   accelerator (``reprolab_fasthash``) when it is built, and again with hashlib alone.

Usage: python bench/audit.py [--requests N] [--appends N] [--entries N] [--concurrency N] [--skip-platform]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats
from reprolab.v1 import common_pb2, events_pb2
from reprolab_audit.__main__ import MIGRATIONS
from reprolab_audit.store import AuditStore
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common import auditlog, merkle
from reprolab_common.auditlog import BundleWriter, Signer, verify_bundle
from reprolab_common.canonical import canonical_json
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.nats import new_event
from reprolab_common.settings import CommonSettings

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}


async def raw_publish_rate(url: str, n: int, concurrency: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    payload = b"x" * 300  # about the size of one event
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await js.publish("bench.e", payload, headers={"Nats-Msg-Id": f"m{i}"})

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await js.delete_stream("BENCH")
    await nc.close()
    return n / elapsed


def gateway_to_audit_rate(platform: Platform, n: int, concurrency: int) -> float:
    admin = Client(platform.url, platform.admin_token())
    ws = "bench"
    admin.post("/workspaces", json={"slug": ws, "title": "bench"})
    admin.post(f"/workspaces/{ws}/environments", json={"name": "e", "spec": SPEC})
    start_head = admin.wait_activity(ws, at_least=2)
    url = f"{platform.url}/api/v1/workspaces/{ws}/environments/e/versions"
    headers = {"Authorization": f"Bearer {platform.admin_token()}"}
    body = {"spec": SPEC}

    def worker(count: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            for _ in range(count):
                r = http.post(url, json=body)
                r.raise_for_status()

    share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, share))
    answered = time.perf_counter() - t0
    admin.wait_activity(ws, at_least=start_head + n, timeout=300)
    elapsed = time.perf_counter() - t0
    print(f"  (all {n} requests answered after {answered:.2f} s; the last audit entry stored after {elapsed:.2f} s)")
    return n / elapsed


def store_append_rates(tmp: Path, n: int) -> tuple[float, float, float]:
    """(Merkle appends/s through AuditStore, raw sha256 leaves/s, bare SQLite inserts/s) for n events."""
    actor = common_pb2.Actor(user_id="u1", username="alice")
    events = [new_event(type="version.created", actor=actor, workspace="bench", subject=f"environments/e/versions/{i}",
                        version_created=events_pb2.VersionCreated(environment="e", number=i + 1,
                                                                  spec_digest="sha256:" + "ab" * 32))
              for i in range(n)]
    settings = CommonSettings(data_dir=tmp / "store")
    engine = make_engine(settings, "audit", sqlite_synchronous="FULL")
    migrate(engine, MIGRATIONS)
    store = AuditStore(session_factory(engine), Signer.generate(), checkpoint_every=100)
    store.register_key()
    t0 = time.perf_counter()
    for i in range(0, n, 256):
        store.append(events[i:i + 256])
    merkle_rate = n / (time.perf_counter() - t0)
    engine.dispose()

    docs = [canonical_json(auditlog.entry_document(ev, i + 1)) for i, ev in enumerate(events)]
    t0 = time.perf_counter()
    for d in docs:
        hashlib.sha256(d).digest()
    sha_rate = n / (time.perf_counter() - t0)

    db = sqlite3.connect(tmp / "bare.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, workspace TEXT, seq INTEGER, event_id TEXT UNIQUE, "
               "canonical TEXT, UNIQUE (workspace, seq))")
    t0 = time.perf_counter()
    for i in range(0, n, 256):
        with db:
            db.executemany("INSERT INTO entries (workspace, seq, event_id, canonical) VALUES (?, ?, ?, ?)",
                           [("bench", j + 1, events[j].id, docs[j].decode()) for j in range(i, min(i + 256, n))])
    bare_rate = n / (time.perf_counter() - t0)
    db.close()
    return merkle_rate, sha_rate, bare_rate


def write_bundle(path: Path, n: int) -> int:
    """A bundle of n realistic entries, written without protobuf round trips (fast to generate)."""
    signer = Signer.generate()
    origin = auditlog.origin_for("bench")
    with open(path, "wb") as fh:
        writer = BundleWriter(fh, workspace="bench", origin=origin, scope="workspace",
                              exported_at=auditlog.now_time(), size=n, verifier_keys=[signer.vkey(origin)])
        tree = merkle.CompactRange()
        base = uuid.uuid4().hex[:24]
        for i in range(n):
            seq = i + 1
            doc = {"seq": seq, "workspace": "bench", "event_id": f"{base}{i:08x}", "type": "version.created",
                   "subject": f"environments/e{i % 97}/versions/{i}", "time": "2026-11-21T12:00:00.000Z",
                   "actor": {"id": f"u{i % 31}", "name": f"user{i % 31}"},
                   "details": {"environment": f"e{i % 97}", "number": seq, "spec_digest": "sha256:" + "ab" * 32}}
            tree.append(writer.entry(seq, canonical_json(doc)))
            if seq % (n // 100 or 1) == 0 or seq == n:  # the service copies <= 100 into an export
                note = signer.sign_checkpoint(origin, seq, tree.root())
                if seq == n:
                    writer.close(note)
                else:
                    writer.checkpoint(note)
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--appends", type=int, default=20_000)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--skip-platform", action="store_true", help="only the store and verification figures")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_platform:
            with Platform(tmp / "platform") as platform:
                base = asyncio.run(raw_publish_rate(platform.nats.url, args.requests * 5, args.concurrency))
                ours = gateway_to_audit_rate(platform, args.requests, args.concurrency)
            print(f"pipeline   gateway request -> stored audit entry: {ours:10.0f} events/s "
                  f"({args.requests} requests, {args.concurrency} clients, SQLite)")
            print(f"  baseline raw JetStream acked publish:           {base:10.0f} msgs/s   ratio {ours / base:.3f}")

        merkle_rate, sha_rate, bare_rate = store_append_rates(tmp, args.appends)
        print(f"append     AuditStore into the Merkle log:         {merkle_rate:10.0f} appends/s "
              f"({args.appends} events, batches of 256, SQLite synchronous=FULL)")
        print(f"  baseline raw sha256 of the same entries:        {sha_rate:10.0f} entries/s "
              f"ratio {merkle_rate / sha_rate:.4f}")
        print(f"  baseline bare SQLite insert of the same rows:   {bare_rate:10.0f} rows/s    "
              f"ratio {merkle_rate / bare_rate:.3f}")

        path = tmp / "bundle.jsonl"
        t0 = time.perf_counter()
        size = write_bundle(path, args.entries)
        print(f"  (wrote a {args.entries}-entry bundle of {size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s)")
        # CPU time of this process, not wall time: both are single-threaded, and on a machine shared with
        # other work the ratio then measures the code rather than the neighbours
        t0 = time.process_time()
        result = verify_bundle(path)
        verify_s = time.process_time() - t0
        assert result.ok and result.entries == args.entries, result
        hashed_with = auditlog.hash_implementation()
        # the same verification hashing with hashlib alone (what an install without the C extension does)
        auditlog.use_accelerator(False)
        try:
            t0 = time.process_time()
            plain = verify_bundle(path)
            plain_s = time.process_time() - t0
        finally:
            auditlog.use_accelerator(True)
        assert plain.ok and plain.entries == args.entries, plain
        t0 = time.process_time()
        with open(path, "rb") as fh:
            for line in fh:
                hashlib.sha256(line).digest()
        sha_s = time.process_time() - t0
    verdict = "under" if verify_s < 5 else "OVER"
    print(f"verify     bundle of {args.entries} entries ({size / 1e6:.0f} MB, {result.checkpoints} checkpoints), "
          "CPU time: "
          f"{verify_s:6.2f} s = {args.entries / verify_s:10.0f} entries/s ({verdict} the 5 s target)")
    print(f"  hashing with {hashed_with}; "
          f"with hashlib alone {plain_s:.2f} s = {args.entries / plain_s:10.0f} entries/s")
    print(f"  baseline raw sha256 over the same lines:        {sha_s:6.2f} s = {args.entries / sha_s:10.0f} lines/s  "
          f"ratio {sha_s / verify_s:.3f} (target >= 0.5: {'MET' if sha_s / verify_s >= 0.5 else 'NOT MET'}; "
          f"hashlib alone {sha_s / plain_s:.3f})")


if __name__ == "__main__":
    main()
