"""Tie a child process's life to its supervisor's, however the supervisor dies.

Two independent mechanisms, because each alone has a hole:

* **Parent-death signal** (``prctl(PR_SET_PDEATHSIG)``, set between fork and exec): the kernel sends the
  child SIGTERM when the thread that forked it exits, even on SIGKILL of the supervisor. It works for
  binaries we cannot change (nats-server, the registry, podman). Its hole: it follows the forking
  *thread*, so a child started from a short-lived thread (a test restarting NATS from a helper thread)
  would be killed when that thread ends. We therefore only arm it from the main thread.
* **A lifeline pipe**: the supervisor keeps the write end of a pipe, every Python service inherits the
  read end (``REPROLAB_SUPERVISOR_FD``) and watches it from a daemon thread. The kernel closes the write
  end when the supervisor dies, the read returns EOF, and the service stops itself (SIGTERM to itself,
  so its usual clean shutdown runs; a hard exit if that does not finish in time).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ENV_FD = "REPROLAB_SUPERVISOR_FD"
PR_SET_PDEATHSIG = 1
# Exit status of a service that stopped because its supervisor is gone (EX_UNAVAILABLE would be 69;
# 70 is EX_SOFTWARE: the process was orphaned, it did not fail on its own).
ORPHANED_EXIT = 70

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: only the lifeline pipe and the process groups remain
    _prctl = None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that arms the parent-death signal in the child, or None where it would be wrong
    (not on the main thread, or no prctl). The child also exits at once if its parent already died
    between fork and prctl (then nobody would ever send the signal)."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl = _prctl  # resolved here, in the parent: nothing is looked up between fork and exec

    def _arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(ORPHANED_EXIT)

    return _arm


class Lifeline:
    """The supervisor's side: one pipe shared by every child; closing it (or dying) tells them all."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()  # both non-inheritable; the read end is passed explicitly

    def env(self) -> dict[str, str]:
        return {ENV_FD: str(self.read_fd)}

    def popen_kwargs(self) -> dict[str, object]:
        """What ``subprocess.Popen`` needs so the child inherits the read end and dies with us."""
        kwargs: dict[str, object] = {"pass_fds": (self.read_fd,)}
        preexec = die_with_parent()
        if preexec is not None:
            kwargs["preexec_fn"] = preexec
        return kwargs

    def cut(self) -> None:
        """Close both ends: every child still watching sees EOF and stops."""
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.read_fd = self.write_fd = -1


def watch(grace: float = 20.0) -> bool:
    """In a service: stop this process when its supervisor's lifeline closes. Returns whether a lifeline
    was found (a service started by hand or by Kubernetes has none and is not affected).

    The stop is a SIGTERM to ourselves, so the service's normal shutdown (drain, last checkpoint) runs;
    if that takes longer than ``grace`` seconds the process exits hard.
    """
    raw = os.environ.pop(ENV_FD, None)  # popped: our own children must not think they are watched
    if not raw:
        return False
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError):
        log.warning("%s=%r is not an open descriptor; not watching the supervisor", ENV_FD, raw)
        return False
    os.set_inheritable(fd, False)

    def _watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        log.error("the supervisor is gone (its lifeline closed); stopping")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        log.error("clean stop took longer than %.0fs; exiting", grace)
        os._exit(ORPHANED_EXIT)

    threading.Thread(target=_watch, name="supervisor-lifeline", daemon=True).start()
    return True
