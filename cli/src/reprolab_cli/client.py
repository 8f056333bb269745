"""A small synchronous client of the REST API, shared by the CLI commands and the demo.

Every failure it raises is a ``ReprolabError`` whose text is one line a person can act on, plus a
``hint`` when there is an obvious next step (start the platform, set a token): the CLI prints those
two lines instead of a traceback.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


def _http() -> types.ModuleType:
    """httpx, imported on first use and without its own command-line tool: httpx/__init__ imports
    httpx._main (click, rich.progress, rich.syntax, pygments) whenever click and rich are installed, as
    they are here. That alone was a third of every ``reprolab`` call's start; the CLI never runs httpx's
    command (bench/cli.py measures the start)."""
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        stub = types.ModuleType("httpx._main")

        def main() -> None:
            raise SystemExit("httpx's own command is not available inside reprolab")

        stub.main = main
        sys.modules["httpx._main"] = stub
    import httpx

    return httpx


class ReprolabError(Exception):
    """A failure to show the user as one line (``str``) and an optional ``hint``."""

    hint: str = ""


class ApiError(ReprolabError):
    """An error answer of the API, carrying its problem document (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any], *, had_token: bool = True) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "request failed"
        errors = "; ".join(f"{e.get('loc')}: {e.get('msg')}" for e in problem.get("errors") or []
                           if str(e.get("msg")) not in detail)  # already said in the detail
        super().__init__(f"{status} {problem.get('title', '')}: {detail}".strip() + (f" ({errors})" if errors else ""))
        if status == 401:
            self.hint = ("no API token given: export REPROLAB_TOKEN=<token> (the admin's is in <data-dir>/admin-token, "
                         "a user's is printed by `reprolab user create`) or pass --token" if not had_token else
                         "the token was refused: check REPROLAB_TOKEN or --token (tokens are shown once, at creation)")
        elif status == 413:
            self.hint = "the platform limits uploads with REPROLAB_GATEWAY_MAX_UPLOAD_BYTES"
        elif status >= 500:
            self.hint = "a platform error: the service logs are in <data-dir>/logs"


class Unreachable(ReprolabError):
    """The gateway did not answer at all."""

    def __init__(self, url: str, exc: Exception) -> None:
        refused = isinstance(exc, _http().ConnectError)
        super().__init__(f"cannot reach the platform at {url}: {exc or type(exc).__name__}")
        self.hint = ("is the platform running? start it with `reprolab up` (or point --url / REPROLAB_URL at it)"
                     if refused else "the connection broke; the platform may be overloaded or restarting")


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = _http().Client(base_url=url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout)
        self.root = url.rstrip("/")
        self.has_token = bool(token)
        self.end_status: str | None = None  # the data of the last SSE stream's ``end`` event

    def _error(self, r: httpx.Response) -> ApiError:
        return ApiError(r.status_code, _problem(r), had_token=self.has_token)

    def close(self) -> None:
        self.http.close()

    def as_user(self, token: str) -> Client:
        return Client(self.root, token)

    def response(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kw: Any) -> httpx.Response:
        """The whole answer (headers too), once its status is one of EXPECT."""
        try:
            r = self.http.request(method, path, **kw)
        except _http().TransportError as exc:
            raise Unreachable(self.root, exc) from exc
        if r.status_code not in expect:
            raise self._error(r)
        return r

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        """The answer's JSON document, or its bytes when it is not JSON."""
        r = self.response(method, path, expect=expect, **kw)
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.content

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def upload(self, path: str, file: Path, params: dict[str, str] | None = None, progress: Any = None,
               content_type: str = "application/octet-stream", expect: tuple[int, ...] = (200, 201)) -> Any:
        """Stream FILE as the raw body (the API takes raw bodies, not multipart), calling
        ``progress(n)`` after each chunk is handed to the connection."""
        size = file.stat().st_size

        def chunks() -> Iterator[bytes]:
            with open(file, "rb") as fh:
                while chunk := fh.read(256 * 1024):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        return self.request("POST", path, params=params or {}, content=chunks(), expect=expect,
                            headers={"Content-Type": content_type, "Content-Length": str(size)})

    def download(self, path: str, dest: Path, progress: Any = None) -> int:
        """Stream PATH into DEST; ``progress(n, total)`` after each chunk (total: Content-Length or None)."""
        try:
            with self.http.stream("GET", path) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._error(r)
                total = int(r.headers["content-length"]) if "content-length" in r.headers else None
                n = 0
                with open(dest, "wb") as fh:
                    for chunk in r.iter_bytes():
                        fh.write(chunk)
                        n += len(chunk)
                        if progress:
                            progress(len(chunk), total)
        except _http().TransportError as exc:
            raise Unreachable(self.root, exc) from exc
        return n

    def sse(self, path: str, *, until_idle: bool = False) -> Iterator[str]:
        """Lines of a Server-Sent Events stream until its ``end`` event (its data, the final status,
        lands in ``end_status``). ``until_idle``: also stop at the first keep-alive, i.e. once the
        lines written so far have been replayed (``reprolab run logs`` without --follow)."""
        self.end_status = None
        try:
            with self.http.stream("GET", path, timeout=_http().Timeout(10.0, read=None)) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._error(r)
                event = "message"
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].removeprefix(" ")
                        if event == "end":
                            self.end_status = data
                            return
                        yield data
                    elif line.startswith(":") and until_idle:
                        return
                    elif not line:
                        event = "message"
        except _http().TransportError as exc:
            raise Unreachable(self.root, exc) from exc

    def poll(self, path: str, pending: Callable[[dict[str, Any]], bool], timeout: float,
             interval: float = 0.5) -> dict[str, Any]:
        """GET PATH until ``pending(doc)`` is false or TIMEOUT seconds have passed; the last document
        either way (the caller judges its status: a build still running, a run not yet scored)."""
        deadline = time.monotonic() + timeout
        doc = self.get(path)
        while pending(doc) and time.monotonic() < deadline:
            time.sleep(interval)
            doc = self.get(path)
        return doc

    def wait_activity(self, ws: str, at_least: int, timeout: float = 30.0) -> int:
        """Events reach the audit log asynchronously; wait until it holds ``at_least`` entries."""
        deadline = time.monotonic() + timeout
        head = 0
        while time.monotonic() < deadline:
            head = self.get(f"/workspaces/{ws}/activity", params={"limit": 1})["head_seq"]
            if head >= at_least:
                return head
            time.sleep(0.2)
        raise TimeoutError(f"activity log of {ws} holds {head} entries, expected at least {at_least}")


DEFAULT_DATA_DIR = Path(".reprolab")


def connect(url: str, token: str | None) -> Client:
    """A client for the CLI: without a token, the admin token of the local platform
    (``$REPROLAB_DATA_DIR/admin-token``, written by ``reprolab up``), if there is one."""
    if not token:
        token_file = Path(os.environ.get("REPROLAB_DATA_DIR", DEFAULT_DATA_DIR)) / "admin-token"
        if token_file.exists():
            token = token_file.read_text().strip()
    return Client(url, token)


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    return {"title": r.reason_phrase, "detail": r.text[:500]}
