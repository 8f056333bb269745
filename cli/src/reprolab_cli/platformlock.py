"""One platform per data directory: a lock file held while it runs, and the pids of what it started.

``platform.lock`` is ``flock``-ed for as long as the supervisor lives (the kernel drops the lock when
the supervisor dies, however it dies), so a second ``reprolab up`` (or a demo, or a test) over the same
directory is refused while the first is alive. ``platform.pids`` records every child the supervisor
started with its start time and command line; a later supervisor that finds the lock free but the file
present stops what is still running of those, and only those: a recorded pid counts as ours only if
``/proc`` still shows the same start time and command line (pids are reused).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from pathlib import Path

LOCK_FILE = "platform.lock"
PIDS_FILE = "platform.pids"


class PlatformBusy(RuntimeError):
    """Another live platform holds the data directory."""


def process_identity(pid: int) -> tuple[int, list[str]] | None:
    """(start time in clock ticks since boot, argv) of a live process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces: split after the last ")"
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19]), [a.decode(errors="replace") for a in cmdline.split(b"\0")[:-1]]


class PlatformLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lock_file = data_dir / LOCK_FILE
        self.pids_file = data_dir / PIDS_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)  # not inheritable: children never hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise PlatformBusy(
                f"{self.data_dir} is in use by a running platform (supervisor pid {holder}); stop it first "
                "or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.pids_file.unlink(missing_ok=True)
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def recorded(self) -> dict[str, dict]:
        try:
            return json.loads(self.pids_file.read_text())
        except (OSError, ValueError):
            return {}

    def record(self, name: str, pid: int) -> None:
        """Remember a child we started, as /proc shows it once its exec is complete."""
        identity = process_identity(pid)
        deadline = time.monotonic() + 2.0
        # Popen returns when exec has begun; /proc/<pid>/cmdline stays empty for a moment after that.
        while identity is not None and not identity[1] and time.monotonic() < deadline:
            time.sleep(0.005)
            identity = process_identity(pid)
        if identity is None:
            return
        records = self.recorded()
        records[name] = {"pid": pid, "start": identity[0], "cmdline": identity[1]}
        tmp = self.pids_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=1))
        tmp.replace(self.pids_file)


def reap_leftovers(lock: PlatformLock, timeout: float = 10.0) -> list[str]:
    """Stop the processes a dead platform recorded in this data directory that are still running (and
    still the same processes). Returns one line per process stopped. Call only while holding the lock."""
    ours = []
    for name, rec in lock.recorded().items():
        pid = rec.get("pid")
        if isinstance(pid, int) and process_identity(pid) == (rec.get("start"), rec.get("cmdline")):
            ours.append((name, pid))
    for _, pid in ours:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process_identity(pid) for _, pid in ours):
        time.sleep(0.1)
    for _, pid in ours:
        if process_identity(pid):
            _signal(pid, signal.SIGKILL)
    lock.pids_file.unlink(missing_ok=True)
    return [f"stopped {name} (pid {pid}) left running by a previous platform in {lock.data_dir}"
            for name, pid in ours]


def _signal(pid: int, sig: int) -> None:
    """Each child leads its own process group (start_new_session): signal the group, so what it
    started itself goes too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
