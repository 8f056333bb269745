"""The supervisor leaves nothing behind: real `reprolab up`, real services, real SIGKILLs.

* SIGKILL of `reprolab up` (an OOM kill, a closed terminal): every process it started goes, checked by pid
  and start time; a second `up` over the same live data directory is refused; the lock frees with it.
* A service whose supervisor's lifeline closes stops by itself (the mechanism for when the parent-death
  signal is not armed), and one whose NATS stays gone exits non-zero saying so (bounded, not silent).
* A new platform stops what a dead one recorded in its data directory, and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from reprolab_cli.platformlock import PlatformBusy, PlatformLock, process_identity, reap_leftovers
from reprolab_common.lifeline import Lifeline
from reprolab_common.natsserver import NatsServer, free_port

REPROLAB = [sys.executable, "-m", "reprolab_cli.main"]


def descendants(pid: int) -> dict[int, tuple[int, list[str]]]:
    """Every live descendant of pid, with its /proc identity (start time, argv) to rule out pid reuse."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, tuple[int, list[str]]] = {}
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        identity = process_identity(child)
        if identity:
            found[child] = identity
        todo += parents.get(child, [])
    return found


def still_running(procs: dict[int, tuple[int, list[str]]]) -> list[str]:
    return [" ".join(argv[:3]) for pid, (start, argv) in procs.items() if process_identity(pid) == (start, argv)]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_sigkill_of_up_leaves_nothing_running_and_a_live_dir_is_refused(tmp_path: Path) -> None:
    data, port = tmp_path / "state", free_port()
    env = {**os.environ, "COLUMNS": "200"}
    up = subprocess.Popen([*REPROLAB, "up", "--data-dir", str(data), "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True)
    procs: dict[int, tuple[int, list[str]]] = {}
    try:
        out = ""
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in out:
            assert up.poll() is None, out + up.stdout.read()
            assert time.monotonic() < deadline, out
            out += up.stdout.readline()
        procs = descendants(up.pid)
        names = " ".join(" ".join(argv) for _, argv in procs.values())
        for expected in ("nats-server", "reprolab_registry", "reprolab_audit", "reprolab_builder",
                         "reprolab_runner", "reprolab_gateway"):
            assert expected in names, (expected, names)

        # the same data directory while it is live: refused, and the live platform is untouched
        second = subprocess.run([*REPROLAB, "up", "--data-dir", str(data), "--port", str(free_port())],
                                capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "in use by a running platform" in second.stdout + second.stderr
        assert f"pid {up.pid}" in second.stdout + second.stderr
        # podman runs short helpers (dpkg-query ...): "untouched" is about the long-lived children
        gone = [" ".join(procs[p][1][:4]) for p in procs if process_identity(p) is None
                and any(n in " ".join(procs[p][1]) for n in ("nats-server", "reprolab_", "registry"))]
        assert not gone, f"the refused start touched the live platform: {gone}"

        procs |= descendants(up.pid)
        os.kill(up.pid, signal.SIGKILL)
        up.wait(10)
        wait_for(lambda: not still_running(procs), 45, f"left running after SIGKILL: {still_running(procs)}")
    finally:
        if up.poll() is None:
            up.kill()
        for pid, (start, argv) in procs.items():  # never leave our own leftovers for others, even on failure
            if process_identity(pid) == (start, argv):
                os.kill(pid, signal.SIGKILL)
    # the kernel dropped the lock with the dead supervisor: the directory is free again
    lock = PlatformLock(data)
    lock.acquire()
    lock.release()


def test_a_new_platform_stops_only_the_leftovers_a_dead_one_recorded(tmp_path: Path) -> None:
    lock = PlatformLock(tmp_path)
    lock.acquire()
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        lock.record("nats-server", leftover.pid)
        lock.record("audit", stranger.pid)
        records = lock.recorded()
        # the pid of a process that is not what was recorded (a reused pid): never touched
        records["audit"]["cmdline"] = ["python", "-m", "reprolab_audit"]
        lock.pids_file.write_text(__import__("json").dumps(records))
        lock._fd, fd = None, lock._fd  # the old supervisor "dies": its lock goes, its pids file stays
        os.close(fd)

        other = PlatformLock(tmp_path)
        other.acquire()
        stopped = reap_leftovers(other)
        assert leftover.wait(15) == -signal.SIGTERM
        assert stranger.poll() is None, "a process the dead platform did not start was stopped"
        assert len(stopped) == 1 and f"pid {leftover.pid}" in stopped[0]
        assert not other.pids_file.exists()
        with pytest.raises(PlatformBusy, match=f"pid {os.getpid()}"):
            PlatformLock(tmp_path).acquire()
        other.release()
    finally:
        for proc in (leftover, stranger):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _service_env(data: Path, nats_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPROLAB_")}
    return {**env, "REPROLAB_DATA_DIR": str(data), "REPROLAB_NATS_URL": nats_url, **extra}


def _wait_log(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text(errors="replace") if log.exists() else ""):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


def test_a_service_stops_when_its_supervisors_lifeline_closes(tmp_path: Path, nats_server) -> None:
    """Started from a helper thread, so no parent-death signal is armed: only the lifeline can stop it."""
    lifeline = Lifeline()
    log = tmp_path / "registry.log"
    started: list[subprocess.Popen] = []

    def start() -> None:
        kwargs = lifeline.popen_kwargs()
        assert "preexec_fn" not in kwargs  # not the main thread: the parent-death signal stays off
        with open(log, "ab") as out:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "reprolab_registry"], stdout=out, stderr=out, start_new_session=True,
                env=_service_env(tmp_path, nats_server.url, **lifeline.env()), **kwargs))

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    proc = started[0]
    try:
        _wait_log(log, "registry ready", proc)
        lifeline.cut()
        assert proc.wait(30) == 0, log.read_text()  # its own clean stop ran
        text = log.read_text()
        assert "supervisor is gone" in text and "registry stopped" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_service_without_nats_gives_up_visibly_after_its_bound(tmp_path: Path) -> None:
    nats = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    log = tmp_path / "registry.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reprolab_registry"], stdout=out, stderr=out,
                                start_new_session=True,
                                env=_service_env(tmp_path, nats.url, REPROLAB_NATS_GIVE_UP_SECONDS="3"))
    try:
        _wait_log(log, "registry ready", proc)
        nats.stop()
        status = proc.wait(60)
        text = log.read_text()
        assert status == 75, text
        assert "NATS unreachable for" in text and "exiting with status 75" in text
    finally:
        nats.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
