"""The activity recorder of a session pod on Kubernetes (the pod's ``activity`` container).

On the ``local`` target the image's agent keeps the chain as root (``reprolab logd``). A restricted pod
has no root, so a second container from the same image does it, as another non-root user (65534):

* it alone mounts the chain's emptyDir (``$REPROLAB_ACTIVITY_DIR``, ``/var/lib/reprolab-activity``): the
  notebook container's user cannot read, edit or remove a chained entry;
* it listens on ``/run/reprolab/agent.sock`` in a small emptyDir that the notebook container mounts
  read-only: the kernel's cell recorder and the pip/uv wrappers connect as they do locally (connecting
  needs no write access to the directory), but the student can neither remove nor replace the socket.
  Requests are the local daemon's (one JSON line per connection, the same kinds); the writer's uid
  comes from the kernel (SO_PEERCRED), not from the request;
* it serves, on a pod port that the session's NetworkPolicy opens to the runner's pods only, with the
  bearer token of the session's Secret (``REPROLAB_AGENT_TOKEN``; compared in constant time, never
  printed):
  ``GET /chain`` the chain's bytes (what the runner reads from the container locally) and
  ``GET /capture`` what ``reprolab env capture --json`` prints, computed by the image's own agent in a
  fresh process against the image's baseline, with the user's home mounted read-only at /home/student
  (where the notebook container's ``pip install`` lands: its root filesystem is read-only).

Standard library only: it runs on the environment's Python, whatever the environment holds.
"""

from __future__ import annotations

import hmac
import http.server
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

AGENT = os.environ.get("REPROLAB_AGENT", "/opt/reprolab/agent.py")
SOCKET = os.environ.get("REPROLAB_AGENT_SOCKET", "/run/reprolab/agent.sock")
STATE_DIR = os.environ.get("REPROLAB_ACTIVITY_DIR", "/var/lib/reprolab-activity")
PORT = int(os.environ.get("REPROLAB_AGENT_PORT", "8890"))
STUDENT_UID = 1000
MAX_CAPTURE = 4 << 20  # the runner refuses more (reprolab_common.capture)
CAPTURE_SECONDS = 100  # the runner waits 110 s for the answer, its API 120 s


def load_agent():
    spec = importlib.util.spec_from_file_location("reprolab_agent", AGENT)
    if spec is None or spec.loader is None:
        raise SystemExit(f"reprolab agentd: no agent at {AGENT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handle_record(agent, conn: socket.socket) -> None:
    """One request of the local daemon's protocol (``agent.serve``), appended to the chain."""
    try:
        conn.settimeout(10)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        data = b""
        while not data.endswith(b"\n") and len(data) <= agent.MAX_DETAILS + 1024:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        req = json.loads(data)
        kind, details = req.get("kind"), req.get("details")
        if not isinstance(kind, str) or not agent.ALLOWED_KINDS.match(kind) or not isinstance(details, dict):
            raise ValueError("bad request")
        entry = agent.append(STATE_DIR, kind, {**details, "uid": uid})  # the kernel's word, not the client's
        conn.sendall(agent.canonical({"seq": entry["seq"], "hash": entry["hash"]}) + b"\n")
    except Exception as exc:  # noqa: BLE001 - one bad client never stops the recorder
        try:
            conn.sendall(agent.canonical({"error": str(exc)[:200]}) + b"\n")
        except OSError:
            pass
    finally:
        conn.close()


def serve_socket(agent, path: str) -> socket.socket:
    try:
        os.unlink(path)  # a stale socket of an earlier start
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)  # the student's kernel connects; the directory is read-only for it

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle_record, args=(agent, conn), daemon=True).start()

    server.listen(64)
    threading.Thread(target=loop, name="records", daemon=True).start()
    return server


def capture() -> tuple[int, bytes]:
    """(HTTP status, body): ``reprolab env capture --json`` of the image's agent in a fresh process."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "REPROLAB_ACTIVITY_DIR": STATE_DIR,
           "HOME": "/nonexistent"}
    try:
        proc = subprocess.run([sys.executable, AGENT, "env", "capture", "--json"], capture_output=True, env=env,
                              timeout=CAPTURE_SECONDS)
    except subprocess.TimeoutExpired:
        return 504, json.dumps({"error": f"env capture took longer than {CAPTURE_SECONDS} s"}).encode()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        why = f"exit {proc.returncode}" + (f": {tail[-1][:300]}" if tail else "")
        return 500, json.dumps({"error": f"`reprolab env capture` failed ({why})"}).encode()
    if len(proc.stdout) > MAX_CAPTURE:
        return 500, json.dumps({"error": f"the capture is larger than {MAX_CAPTURE} bytes"}).encode()
    return 200, proc.stdout


class Handler(http.server.BaseHTTPRequestHandler):
    token = b""
    server_version = "reprolab-agentd/1"
    sys_version = ""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return bool(self.token) and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._authorized():
            return self._send(401, b'{"error": "a bearer token is required"}')
        path = self.path.split("?", 1)[0]
        if path == "/chain":
            try:
                with open(os.path.join(STATE_DIR, "activity.jsonl"), "rb") as fh:
                    body = fh.read()
            except FileNotFoundError:
                body = b""
            return self._send(200, body, "application/x-ndjson")
        if path == "/capture":
            status, body = capture()
            return self._send(status, body)
        if path == "/healthz":
            return self._send(200, b'{"ok": true}')
        return self._send(404, b'{"error": "no such resource (GET /chain or /capture)"}')

    def _refuse(self) -> None:
        self._send(405, b'{"error": "only GET"}')

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the method of http.server
        # the request line only: the Authorization header is never printed
        sys.stderr.write(f"agentd: {self.address_string()} {format % args}\n")


def main() -> int:
    # PID 1 of its container: without a handler SIGTERM would be ignored and the pod's deletion would
    # wait out its whole grace period
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    agent = load_agent()
    token = os.environ.pop("REPROLAB_AGENT_TOKEN", "")  # out of the environment of what capture starts
    if not token:
        print("reprolab agentd: REPROLAB_AGENT_TOKEN is not set: every request will be refused", file=sys.stderr)
    Handler.token = token.encode()
    os.makedirs(STATE_DIR, exist_ok=True)
    try:
        command = json.loads(os.environ.get("REPROLAB_SESSION_COMMAND", "[]"))
    except ValueError:
        command = []
    agent.append(STATE_DIR, "session", {"command": command[:20] if isinstance(command, list) else [],
                                        "uid": STUDENT_UID, "recorder": "pod"})
    serve_socket(agent, SOCKET)
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    print(f"reprolab agentd: recording on {SOCKET}, serving /chain and /capture on port {PORT}", file=sys.stderr)
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
