"""The chart asks for JetStream R3 with ``sync_interval: always`` (docs/operations.md). Three real
nats-servers clustered on loopback with exactly that setting: the services' ``ensure_streams`` with
``REPROLAB_NATS_STREAM_REPLICAS=3`` makes every stream three copies, an acknowledged event survives the
loss of the server the publisher was connected to, and a repeated start of a service changes nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator

import nats
import pytest
from reprolab_common.nats import STREAMS, Stream, ensure_streams
from reprolab_common.natsserver import free_port, nats_server_binary, stop_child
from reprolab_common.settings import CommonSettings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[subprocess.Popen, int]]]:
    root = tmp_path_factory.mktemp("r3")
    ports = [(free_port(), free_port()) for _ in range(3)]
    routes = [f"nats://127.0.0.1:{cport}" for _, cport in ports]
    nodes = []
    for i, (port, cport) in enumerate(ports):
        config = {
            "server_name": f"n{i}", "host": "127.0.0.1", "port": port,
            "jetstream": {"store_dir": str(root / f"n{i}"), "sync_interval": "always"},
            "cluster": {"name": "reprolab", "host": "127.0.0.1", "port": cport, "routes": routes},
        }
        conf = root / f"n{i}.conf"
        conf.write_text(json.dumps(config))
        log = open(root / f"n{i}.log", "ab")  # noqa: SIM115 - closed with the process
        nodes.append((subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log,
                                       start_new_session=True), port))
    for proc, port in nodes:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (root / "n0.log").read_text()[-2000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    yield nodes
    for proc, _ in nodes:
        stop_child(proc)


async def _ensure_until_meta_leader(js, replicas: int) -> None:
    """A new cluster elects its JetStream meta leader in a second or two; until then stream creation fails."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_streams(js, replicas=replicas)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_streams_are_three_copies_and_an_acked_event_survives_a_lost_server(cluster, monkeypatch) -> None:
    monkeypatch.setenv("REPROLAB_NATS_STREAM_REPLICAS", "3")
    replicas = CommonSettings().nats_stream_replicas
    assert replicas == 3
    urls = [f"nats://127.0.0.1:{port}" for _, port in cluster]
    nc = await nats.connect(urls[0], allow_reconnect=False)
    js = nc.jetstream()
    await _ensure_until_meta_leader(js, replicas)
    await ensure_streams(js, replicas=replicas)  # every service start does it again: no error, no change
    for cfg in STREAMS.values():
        info = await js.stream_info(cfg.name)
        assert info.config.num_replicas == 3, cfg.name
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2, info.cluster
    ack = await js.publish("events.test.r3", b"kept", timeout=10)
    await nc.close()

    stop_child(cluster[0][0])  # the server the publisher used is gone
    nc = await nats.connect(urls[1:], allow_reconnect=False)
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + 30
        while True:  # the stream may need a new leader first
            try:
                msg = await js.get_msg(STREAMS[Stream.EVENTS].name, seq=ack.seq)
                break
            except Exception:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
        assert msg.data == b"kept" and msg.subject == "events.test.r3"
    finally:
        await nc.close()


def test_default_is_one_copy_for_a_single_server() -> None:
    assert CommonSettings().nats_stream_replicas == 1
