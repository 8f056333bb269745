"""A real PEP 503 "simple" package index for tests: tiny pure-Python wheels built here, served over
HTTP by ``http.server`` in a thread, optionally behind HTTP basic auth (as a private Artifactory,
Nexus, devpi or GitLab index would be). Not a fake: uv, pip and httpx talk to it over real HTTP.
Every request is recorded (path, whether it was authorised) so tests can assert who asked what.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name

_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_wheel(dest: Path, name: str, version: str, *, module: str | None = None, body: str = "",
               requires: list[str] | None = None) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` (deterministic bytes) into ``dest``."""
    dist = name.replace("-", "_")
    module = module or dist
    dist_info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires or [])
    files = {f"{module}/__init__.py": body or f"VERSION = {version!r}\n",
             f"{dist_info}/METADATA": meta,
             f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: reprolab-tests\nRoot-Is-Purelib: true\n"
                                   "Tag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, _EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{dist}-{version}-py3-none-any.whl"
    out.write_bytes(buf.getvalue())
    return out


@dataclass
class SimpleIndex:
    """A running index: ``url`` ends in ``/simple``; ``requests`` lists (path, authorised) pairs."""

    root: Path
    username: str = ""
    password: str = ""
    url: str = ""
    requests: list[tuple[str, bool]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def add(self, name: str, version: str, **kw) -> Path:  # noqa: ANN003 - make_wheel's options
        return make_wheel(self.root, name, version, **kw)

    def _projects(self) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for wheel in sorted(self.root.glob("*.whl")):
            found.setdefault(canonicalize_name(wheel.name.split("-")[0]), []).append(wheel)
        return found

    def start(self) -> SimpleIndex:
        index = self
        expected = ("Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
                    if self.password else None)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
                pass

            def _send(self, status: int, body: bytes, ctype: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="private-index"')
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                given = self.headers.get("Authorization")
                if given:
                    index.auth_headers.append(given)
                ok = expected is None or given == expected
                index.requests.append((self.path, ok))
                if not ok:
                    return self._send(401, b"unauthorized\n", "text/plain")
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                projects = index._projects()
                if parts == ["simple"]:
                    links = "".join(f'<a href="{n}/">{n}</a>\n' for n in sorted(projects))
                    return self._send(200, f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode())
                if len(parts) == 2 and parts[0] == "simple":
                    wheels = projects.get(canonicalize_name(parts[1]))
                    if canonicalize_name(parts[1]) != parts[1]:
                        return self._send(404, b"not found\n", "text/plain")
                    if not wheels:
                        return self._send(404, b"not found\n", "text/plain")
                    links = "".join(
                        f'<a href="../../files/{html.escape(w.name)}#sha256='
                        f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a><br/>\n'
                        for w in wheels)
                    return self._send(200, f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode())
                if len(parts) == 2 and parts[0] == "files" and (index.root / parts[1]).is_file():
                    return self._send(200, (index.root / parts[1]).read_bytes(), "application/octet-stream")
                return self._send(404, b"not found\n", "text/plain")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/simple"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
