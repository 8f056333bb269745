"""Audit pipeline figures, each beside a baseline measured in the same run.

1. Events/s from a gateway request to a stored audit entry (requests create environment versions
   through the REST API; the clock stops when the audit log holds all their entries), beside the raw
   JetStream publish rate (acked publishes to the same nats-server with the same concurrency).
2. Bundle verification entries/s (parse, rehash, chain, check signatures) beside raw sha256 over
   the same entries' canonical bytes.

Usage: python bench/audit.py [--requests N] [--entries N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats
from reprolab.v1 import common_pb2, events_pb2
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common.auditlog import BundleWriter, Chain, Signer, verify_bundle
from reprolab_common.nats import new_event

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


def make_bundle(n: int) -> tuple[bytes, list[bytes]]:
    signer = Signer.generate()
    chain = Chain("bench")
    out = io.BytesIO()
    writer = BundleWriter(out, workspace="bench", scope="workspace", exported_at="2026-01-01T00:00:00.000Z",
                          public_keys=[signer.public_key_entry()])
    actor = common_pb2.Actor(user_id="u1", username="alice")
    canon: list[bytes] = []
    for i in range(n):
        ev = new_event(type="version.created", actor=actor, workspace="bench", subject=f"environments/e/versions/{i}",
                       version_created=events_pb2.VersionCreated(environment="e", number=i + 1,
                                                                 spec_digest="sha256:" + "ab" * 32))
        entry = chain.append(ev)
        writer.entry(entry.seq, entry.canonical)
        canon.append(entry.canonical)
        if entry.seq % 100 == 0:
            writer.checkpoint(signer.sign_checkpoint(workspace="bench", size=entry.seq, head=entry.hash))
    writer.close(signer)
    return out.getvalue(), canon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        with Platform(Path(tmp) / "platform") as platform:
            base = asyncio.run(raw_publish_rate(platform.nats.url, args.requests * 5, args.concurrency))
            ours = gateway_to_audit_rate(platform, args.requests, args.concurrency)
    print(f"pipeline   gateway request -> stored audit entry: {ours:10.0f} events/s "
          f"({args.requests} requests, {args.concurrency} clients, SQLite)")
    print(f"  baseline raw JetStream acked publish:           {base:10.0f} msgs/s   ratio {ours / base:.3f}")

    bundle, canon = make_bundle(args.entries)
    path = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    path.write_bytes(bundle)
    t0 = time.perf_counter()
    result = verify_bundle(path)
    verify_s = time.perf_counter() - t0
    assert result.ok and result.entries == args.entries, result
    t0 = time.perf_counter()
    for c in canon:
        hashlib.sha256(c).digest()
    sha_s = time.perf_counter() - t0
    path.unlink()
    print(f"verify     bundle of {args.entries} entries ({len(bundle) / 1e6:.1f} MB, "
          f"{result.checkpoints} checkpoints): {args.entries / verify_s:10.0f} entries/s ({verify_s:.2f} s)")
    print(f"  baseline raw sha256 of the same entries:        {args.entries / sha_s:10.0f} entries/s   "
          f"ratio {sha_s / verify_s:.3f}")


if __name__ == "__main__":
    main()
