"""The local target against a real Docker-Engine-compatible API (``podman system service``): real
containers, real sandbox limits."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
import subprocess
import tarfile
import textwrap
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import docker
import httpx
import pytest
from reprolab_common.settings import CommonSettings
from reprolab_runner.config import RunnerSettings
from reprolab_runner.targets.base import LABEL, Input, Limits, RunRequest, State, Status, TargetError
from reprolab_runner.targets.local import LocalTarget, unpack_code
from reprolab_runner.worker import Worker

SMALL = Limits(cpu_millis=1000, memory_bytes=256 << 20, pids=64, timeout_seconds=60)


@pytest.fixture
def target(podman_socket: str, base_image: str, tmp_path: Path) -> Iterator[LocalTarget]:
    target = LocalTarget(SimpleNamespace(work_dir=tmp_path / "runs"), docker_url=podman_socket)
    yield target
    for owned in target.owned():
        if owned.run_id.startswith("t-"):
            target.cleanup(owned.handle)


def code_archive(root: Path, script: str, **files: str) -> Input:
    path = root / f"code-{uuid.uuid4().hex[:6]}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in {"main.py": textwrap.dedent(script), **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return Input(mount="/work", path=path)


def request(tmp_path: Path, script: str, *, limits: Limits = SMALL, datasets: list[Input] | None = None,
            image: str = "localhost/reprolab/bookworm-python:latest") -> RunRequest:
    return RunRequest(run_id=f"t-{uuid.uuid4().hex[:10]}", image=image,
                      command=["python3", "-u", "main.py"], code=code_archive(tmp_path, script),
                      datasets=datasets or [], limits=limits, env={"GREETING": "hello"})


def wait(target: LocalTarget, handle: str, seconds: float = 60) -> Status:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = target.status(handle)
        if status.state not in (State.PENDING, State.RUNNING):
            return status
        time.sleep(0.2)
    raise AssertionError(f"run {handle} still {status} after {seconds} s")


def engine_state(podman_socket: str, handle: str) -> str:
    return docker.DockerClient(base_url=podman_socket).containers.get(handle).attrs["State"]["Status"]


def test_run_writes_outputs_and_reads_datasets(target: LocalTarget, tmp_path: Path) -> None:
    dataset = tmp_path / "iris.csv"
    dataset.write_text("a,b\n1,2\n")
    dataset.chmod(0o666)  # writable by anyone on the host: only the read-only mount protects it
    script = """
        import json, os, sys
        rows = open("/data/iris.csv").read().splitlines()
        try:
            open("/data/iris.csv", "a").write("x")
            data_ro = "writable"
        except OSError as exc:
            data_ro = exc.strerror
        os.makedirs("/outputs/artifacts", exist_ok=True)
        open("/outputs/artifacts/model.bin", "wb").write(bytes(range(256)))
        open("scratch.txt", "w").write("cwd is writable")
        json.dump({"rows": len(rows), "cwd": os.getcwd(), "code": sorted(os.listdir(".")),
                   "greeting": os.environ["GREETING"], "home": os.environ["HOME"], "data_ro": data_ro},
                  open("/outputs/metrics.json", "w"))
        print("trained on", len(rows), "rows")
        print("a warning", file=sys.stderr)
    """
    req = request(tmp_path, script, datasets=[Input(mount="/data/iris.csv", path=dataset)])
    handle = target.submit(req)
    status = wait(target, handle)
    assert status == Status(State.EXITED, exit_code=0)

    dest = tmp_path / "collected"
    target.collect(handle, dest)
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics == {"rows": 2, "cwd": "/work", "code": ["main.py", "scratch.txt"], "greeting": "hello",
                       "home": "/tmp", "data_ro": "Read-only file system"}
    assert (dest / "artifacts" / "model.bin").read_bytes() == bytes(range(256))
    assert dataset.read_text() == "a,b\n1,2\n"
    lines = list(target.logs(handle))
    assert "trained on 2 rows" in lines and "a warning" in lines
    assert [o.handle for o in target.owned() if o.run_id == req.run_id] == [handle]


# Each probe tries something the sandbox forbids, without catching the error: the run must fail.
FORK_BOMB = """
    import os, time
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
    finally:
        print("children", children, flush=True)
"""
MEMORY_HOG = """
    blocks = []
    for i in range(64):
        blocks.append(bytearray(16 << 20))  # zero-filled: every page is touched
        print("allocated", (i + 1) * 16, "MiB", flush=True)
"""
WRITE_ROOT = """
    open("/evil", "w").write("x")
"""
BECOME_ROOT = """
    import os
    print("uid", os.getuid(), "gid", os.getgid())
    print(*[l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "NoNewPrivs"))], sep="")
    os.setuid(0)
"""


def test_fork_bomb_hits_the_pids_limit(target: LocalTarget, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, FORK_BOMB, limits=Limits(memory_bytes=512 << 20, pids=32)))
    status = wait(target, handle)
    logs = "\n".join(target.logs(handle))
    assert status.state == State.EXITED and status.exit_code not in (0, None), logs
    assert "Resource temporarily unavailable" in logs
    children = int(logs.split("children ")[1].split()[0])
    assert 0 < children < 32
    assert subprocess.run(["true"]).returncode == 0  # the host can still start processes


def test_memory_hog_is_oom_killed(target: LocalTarget, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, MEMORY_HOG, limits=Limits(memory_bytes=96 << 20)))
    status = wait(target, handle)
    logs = "\n".join(target.logs(handle))
    assert status.state == State.EXITED and status.exit_code == 137, (status, logs)
    assert "out of memory (limit 96 MiB)" in status.reason
    assert "allocated 64 MiB" in logs and "allocated 128 MiB" not in logs


def test_network_is_off(target: LocalTarget, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # no packet sent: picks the host's outward address
        host_ip = probe.getsockname()[0]
    accepted: list[object] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    script = f"""
        import os, socket
        print("interfaces", sorted(os.listdir("/sys/class/net")))
        for address in ("127.0.0.1", "{host_ip}"):
            try:
                socket.create_connection((address, {port}), timeout=3)
                print("connected to", address)
            except OSError as exc:
                print("refused", address, exc)
        socket.create_connection(("1.1.1.1", 443), timeout=3)
    """
    try:
        handle = target.submit(request(tmp_path, script))
        status = wait(target, handle)
    finally:
        stop.set()
        thread.join()
        server.close()
    logs = "\n".join(target.logs(handle))
    assert status.state == State.EXITED and status.exit_code == 1, logs
    assert "interfaces ['lo']" in logs
    assert "connected" not in logs and f"refused {host_ip}" in logs
    assert "Network is unreachable" in logs
    assert accepted == []


def test_root_filesystem_is_read_only(target: LocalTarget, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, WRITE_ROOT))
    status = wait(target, handle)
    logs = "\n".join(target.logs(handle))
    assert status.state == State.EXITED and status.exit_code == 1
    assert "Read-only file system: '/evil'" in logs


def test_not_root_and_no_capabilities(target: LocalTarget, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, BECOME_ROOT))
    status = wait(target, handle)
    logs = "\n".join(target.logs(handle))
    assert status.state == State.EXITED and status.exit_code == 1
    assert "uid 65534 gid 65534" in logs
    assert "CapEff:\t0000000000000000" in logs and "CapPrm:\t0000000000000000" in logs
    assert "NoNewPrivs:\t1" in logs
    assert "PermissionError: [Errno 1] Operation not permitted" in logs


def test_timeout_holds_without_polling(target: LocalTarget, podman_socket: str, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, "import time; time.sleep(120)",
                                   limits=Limits(timeout_seconds=2)))
    time.sleep(5)  # the caller is slow: nobody polls, the watchdog kills the run on time
    assert engine_state(podman_socket, handle) == "exited"
    status = target.status(handle)
    assert status.state == State.EXITED and status.timed_out
    assert "timed out after 2 s" in status.reason


def test_timeout_enforced_by_status_after_restart(target: LocalTarget, podman_socket: str,
                                                  tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, "import time; time.sleep(120)",
                                   limits=Limits(timeout_seconds=2)))
    target._stop_watchdog(handle)  # as if the runner restarted: only the handle is left
    restarted = LocalTarget(SimpleNamespace(work_dir=target.work_root), docker_url=podman_socket)
    assert restarted.status(handle).state == State.RUNNING
    time.sleep(3)
    started = time.monotonic()
    status = restarted.status(handle)
    assert status.state == State.EXITED and status.timed_out and status.exit_code == 137
    assert time.monotonic() - started < 5
    assert restarted.status(handle).timed_out  # still known afterwards


def test_logs_follow_until_exit(target: LocalTarget, tmp_path: Path) -> None:
    script = """
        import sys, time
        for i in range(3):
            print("line", i, file=sys.stderr if i == 1 else sys.stdout, flush=True)
            time.sleep(0.3)
    """
    handle = target.submit(request(tmp_path, script))
    assert list(target.logs(handle, follow=True)) == ["line 0", "line 1", "line 2"]
    assert wait(target, handle).exit_code == 0


def test_cancel(target: LocalTarget, podman_socket: str, tmp_path: Path) -> None:
    handle = target.submit(request(tmp_path, "import time; print('started'); time.sleep(300)"))
    assert target.status(handle).state == State.RUNNING
    started = time.monotonic()
    target.cancel(handle)
    status = target.status(handle)
    assert time.monotonic() - started < 5
    assert status.state == State.EXITED and status.reason == "cancelled" and not status.timed_out
    assert engine_state(podman_socket, handle) == "exited"
    target.cancel(handle)  # again: harmless


def test_cleanup_removes_everything(target: LocalTarget, tmp_path: Path) -> None:
    req = request(tmp_path, "open('/outputs/x', 'w').write('x')")
    handle = target.submit(req)
    wait(target, handle)
    run_dir = target.work_root / handle
    assert run_dir.is_dir()
    assert any(o.run_id == req.run_id and o.handle == handle for o in target.owned())

    target.cleanup(handle)
    assert not run_dir.exists()
    assert all(o.run_id != req.run_id for o in target.owned())
    assert target.status(handle).state == State.GONE
    assert list(target.logs(handle)) == []
    target.cleanup(handle)  # idempotent


def test_another_replica_resumes_a_run_with_its_outputs(target: LocalTarget, podman_socket: str,
                                                        tmp_path: Path) -> None:
    """A runner replica with its own work root resumes a run the killed one started: the run's directory is
    found through its container's /outputs mount, so the outputs are collected, the kill reason kept and
    the directory removed with the container."""
    handle = target.submit(request(tmp_path, "import time; open('/outputs/x', 'w').write('x'); time.sleep(120)"))
    other = LocalTarget(SimpleNamespace(work_dir=tmp_path / "other-runs"), docker_url=podman_socket)
    time.sleep(1)
    other.cancel(handle)
    status = other.status(handle)
    assert status.state == State.EXITED and status.reason == "cancelled", status
    other.collect(handle, tmp_path / "got")
    assert (tmp_path / "got" / "x").read_text() == "x"
    other.cleanup(handle)
    assert not (target.work_root / handle).exists()
    assert other.status(handle).state == State.GONE


def test_collect_caps_size_and_never_follows_symlinks(target: LocalTarget, tmp_path: Path) -> None:
    script = """
        import os
        open("/outputs/big.bin", "wb").write(os.urandom(2 << 20))
        open("/outputs/small.txt", "w").write("ok")
        os.symlink("/etc/shadow", "/outputs/shadow")
        os.symlink("/", "/outputs/root")
        os.mkfifo("/outputs/pipe")
    """
    handle = target.submit(request(tmp_path, script))
    assert wait(target, handle).exit_code == 0
    with pytest.raises(TargetError, match="exceed the limit of 1048576 bytes"):
        target.collect(handle, tmp_path / "capped", max_bytes=1 << 20)
    dest = tmp_path / "all"
    target.collect(handle, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin", "small.txt"]
    assert (dest / "big.bin").stat().st_size == 2 << 20


def test_pulls_missing_image_by_digest(target: LocalTarget, oci_registry, base_image: str, tmp_path: Path) -> None:
    ref = f"{oci_registry.address}/t{uuid.uuid4().hex[:8]}/env:v1"
    # An image of its own (a label on the base), pushed and then removed here: only the registry has it.
    (tmp_path / "Containerfile").write_text(f"FROM {base_image}\nLABEL test={uuid.uuid4().hex}\n")
    subprocess.run(["podman", "build", "-q", "-t", ref, str(tmp_path)], check=True, capture_output=True)
    subprocess.run(["podman", "push", "--tls-verify=false", ref], check=True, capture_output=True)
    subprocess.run(["podman", "rmi", ref], check=True, capture_output=True)
    digest = httpx.head(f"http://{oci_registry.address}/v2/{ref.split('/', 1)[1].replace(':v1', '')}/manifests/v1",
                        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                           "application/vnd.oci.image.manifest.v1+json"}
                        ).headers["docker-content-digest"]
    pinned = f"{ref}@{digest}"
    with pytest.raises(docker.errors.ImageNotFound):
        target.client.images.get(pinned)
    handle = None
    try:
        handle = target.submit(request(tmp_path, "print('pulled and ran')", image=pinned))
        assert wait(target, handle).exit_code == 0
        assert "pulled and ran" in list(target.logs(handle))
    finally:
        if handle:
            target.cleanup(handle)
        subprocess.run(["podman", "rmi", "-f", pinned, ref], capture_output=True)


def test_unpullable_image_names_it(target: LocalTarget, tmp_path: Path) -> None:
    from reprolab_common.natsserver import free_port

    image = f"127.0.0.1:{free_port()}/nope/env:v1@sha256:{'0' * 64}"
    with pytest.raises(TargetError, match=f"cannot pull image {image}"):
        target.submit(request(tmp_path, "print(1)", image=image))
    assert not target.work_root.exists() or not any(target.work_root.iterdir())


def test_unpack_zip_and_refuse_escapes(tmp_path: Path) -> None:
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/main.py", "print(1)")
    unpack_code(archive, tmp_path / "ok")
    assert (tmp_path / "ok" / "pkg" / "main.py").read_text() == "print(1)"

    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as zf:
        zf.writestr("../escaped.py", "x")
    with pytest.raises(TargetError, match="outside /work"):
        unpack_code(evil_zip, tmp_path / "z")

    evil_tar = tmp_path / "evil.tar.gz"
    with tarfile.open(evil_tar, "w:gz") as tf:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tf.addfile(link)
        info = tarfile.TarInfo("etc/passwd")
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(TargetError, match="cannot unpack"):
        unpack_code(evil_tar, tmp_path / "t")
    assert not (tmp_path / "escaped.py").exists()


def test_label_is_set(target: LocalTarget, podman_socket: str, tmp_path: Path) -> None:
    req = request(tmp_path, "print(1)")
    handle = target.submit(req)
    wait(target, handle)
    attrs = docker.DockerClient(base_url=podman_socket).containers.get(handle).attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["Labels"][LABEL] == req.run_id
    assert host["ReadonlyRootfs"] is True and host["NetworkMode"] == "none"
    assert host["PidsLimit"] == SMALL.pids and host["Memory"] == SMALL.memory_bytes
    assert host["NanoCpus"] == 1_000_000_000


def test_each_installation_owns_only_its_runs(podman_socket: str, base_image: str, tmp_path: Path) -> None:
    """Two platforms on one engine: neither reconciler may see (and so remove) the other's containers."""
    mine = LocalTarget(SimpleNamespace(work_dir=tmp_path / "a"), docker_url=podman_socket, installation="inst-a")
    theirs = LocalTarget(SimpleNamespace(work_dir=tmp_path / "b"), docker_url=podman_socket, installation="inst-b")
    req = request(tmp_path, "import time; time.sleep(30)")
    handle = mine.submit(req)
    try:
        assert any(o.run_id == req.run_id for o in mine.owned())
        assert all(o.run_id != req.run_id for o in theirs.owned())
        labels = docker.DockerClient(base_url=podman_socket).containers.get(handle).labels
        assert labels["org.reprolab.installation"] == "inst-a"
    finally:
        mine.cleanup(handle)


def test_sweep_removes_the_run_folders_no_run_needs(podman_socket: str, base_image: str, tmp_path: Path) -> None:
    """The runner's work root after a kill: a prepared but unstarted run's folders go, while a folder some
    run container still bind-mounts (a run another replica resumed, its dataset under the worker's folder),
    a run this process is handling and ``git/`` stay. Once that container is gone its folders go too."""
    settings = RunnerSettings(common=CommonSettings(data_dir=tmp_path / "data"), work_dir=tmp_path / "runs",
                              docker_url=podman_socket, enabled_targets=["local"], installation=f"t-{uuid.uuid4().hex}")
    worker = Worker(settings=settings, sessions=None, js=None, store=None, wake_outbox=lambda: None)
    local = worker.target("local")
    root = settings.work_root()
    live, unstarted, handled = (str(uuid.uuid4()) for _ in range(3))
    data = root / live / "inputs" / "data" / "d.csv"  # where the worker downloads a local run's dataset
    data.parent.mkdir(parents=True)
    data.write_text("a,b\n")
    req = request(tmp_path, "import time; time.sleep(120)", datasets=[Input(mount="/data/d.csv", path=data)])
    handle = local.submit(dataclasses.replace(req, run_id=live))
    try:
        for left in (root / f"reprolab-run-{unstarted}" / "work", root / unstarted / "inputs",
                     root / f"{handled}.eval", root / "git" / "fetch-x"):
            left.mkdir(parents=True)
        worker._driving.add(handled)
        assert asyncio.run(worker.sweep_work_root()) == 2
        assert sorted(p.name for p in root.iterdir()) == sorted(
            ["git", live, f"reprolab-run-{live}", f"{handled}.eval"])
        assert local.status(handle).state == State.RUNNING  # nothing of the live run was touched
    finally:
        local.cleanup(handle)
    worker._driving.discard(handled)
    assert asyncio.run(worker.sweep_work_root()) == 2  # the live run's downloaded inputs, the ended evaluation
    assert [p.name for p in root.iterdir()] == ["git"]
