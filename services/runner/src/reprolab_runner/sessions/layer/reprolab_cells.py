"""IPython extension of session kernels: every executed cell becomes a ``cell`` entry in the activity agent's
chain (code digest, output digest, kernel, status, duration; the chain entry carries the time), and ``%pip``
goes through the agent's pip wrapper so installs from notebooks are recorded like those from the terminal.

Standard library and IPython only (it runs inside the environment's kernel, whatever the environment holds).
Recording happens on a background thread: a cell never waits for the agent, and a missing agent costs nothing
but the entry (no message in the notebook).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import platform
import queue
import shlex
import subprocess
import sys
import threading
import time

AGENT = os.environ.get("REPROLAB_AGENT", "/opt/reprolab/agent.py")
WRAPPER_DIR = os.environ.get("REPROLAB_WRAPPER_DIR", "/usr/local/reprolab/bin")
PREVIEW = 200  # characters of the cell's first lines kept readable in the activity feed


def _load_agent():
    spec = importlib.util.spec_from_file_location("reprolab_agent", AGENT)
    if spec is None or spec.loader is None or not os.path.exists(AGENT):
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preview(code: str) -> str:
    lines = [line for line in code.strip().splitlines() if line.strip()]
    text = " ⏎ ".join(lines[:3])
    return text[:PREVIEW] + ("…" if len(text) > PREVIEW or len(lines) > 3 else "")


class CellRecorder:
    def __init__(self, shell, agent) -> None:
        self.shell = shell
        self.agent = agent
        self.kernel = f"python {platform.python_version()} (ipython)"
        self._out = hashlib.sha256()
        self._started = 0.0
        self._queue: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._drain, name="reprolab-cells", daemon=True)
        self._writer.start()
        self._wrap_outputs()

    # outputs: streams and display data published while the cell runs feed the output digest
    def _wrap_outputs(self) -> None:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            original = getattr(stream, "write", None)
            if original is None or getattr(original, "_reprolab", False):
                continue

            def write(text, _original=original, _name=name):
                self._out.update(f"{_name}\0{text}".encode("utf-8", "replace"))
                return _original(text)

            write._reprolab = True  # type: ignore[attr-defined]
            with contextlib.suppress(AttributeError, TypeError):
                stream.write = write
        pub = getattr(self.shell, "display_pub", None)
        publish = getattr(pub, "publish", None)
        if publish is not None and not getattr(publish, "_reprolab", False):
            def published(data, *args, _publish=publish, **kwargs):
                self._out.update(json.dumps(data, sort_keys=True, default=str).encode())
                return _publish(data, *args, **kwargs)

            published._reprolab = True  # type: ignore[attr-defined]
            pub.publish = published

    def pre_run_cell(self, info) -> None:
        self._out = hashlib.sha256()
        self._started = time.monotonic()

    def post_run_cell(self, result) -> None:
        info = result.info
        code = getattr(info, "raw_cell", "") or ""
        if not code.strip() or getattr(info, "silent", False):
            return
        if result.result is not None:
            with contextlib.suppress(Exception):
                self._out.update(("result\0" + repr(result.result)).encode("utf-8", "replace"))
        error = result.error_in_exec or result.error_before_exec
        details = {
            "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
            "output_sha256": self._out.hexdigest(),
            "preview": preview(code),
            "lines": code.count("\n") + 1,
            "kernel": self.kernel,
            "execution_count": result.execution_count,
            "status": "error" if error is not None else "ok",
            "duration_ms": round((time.monotonic() - self._started) * 1000, 1),
        }
        if error is not None:
            details["error"] = type(error).__name__
        self._queue.put(details)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until queued entries are written (tests; the kernel never waits)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            with contextlib.redirect_stderr(io.StringIO()):  # "not recorded" notes stay out of the notebook
                with contextlib.suppress(Exception):
                    self.agent.record("cell", item)


def pip_magic(line: str) -> None:
    """``%pip ...`` through the agent's pip wrapper (recorded with the before/after package difference)."""
    wrapper = os.path.join(WRAPPER_DIR, "pip")
    command = [wrapper, *shlex.split(line)] if os.access(wrapper, os.X_OK) else \
        [sys.executable, "-m", "pip", *shlex.split(line)]
    env = {**os.environ, "PIP_PYTHON": sys.executable}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    for out_line in proc.stdout:
        print(out_line, end="")
    if proc.wait() == 0:
        print("Note: you may need to restart the kernel to use updated packages.")
    else:
        print(f"pip exited with status {proc.returncode}")


def load_ipython_extension(shell) -> None:
    agent = _load_agent()
    if agent is None:
        return  # not a Reprolab image: nothing to record into
    recorder = CellRecorder(shell, agent)
    shell.events.register("pre_run_cell", recorder.pre_run_cell)
    shell.events.register("post_run_cell", recorder.post_run_cell)
    shell.register_magic_function(pip_magic, magic_kind="line", magic_name="pip")
    shell.user_ns_hidden["_reprolab_cells"] = recorder
    shell._reprolab_cells = recorder
