"""A small synchronous client of the REST API, shared by the CLI commands and the demo."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    """An error answer of the API, carrying its problem document."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "request failed"
        errors = problem.get("errors") or []
        lines = [f"{status} {problem.get('title', '')}: {detail}".strip()]
        lines += [f"  - {e.get('loc')}: {e.get('msg')}" for e in errors]
        super().__init__("\n".join(lines))


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout)
        self.root = url.rstrip("/")

    def close(self) -> None:
        self.http.close()

    def as_user(self, token: str) -> Client:
        return Client(self.root, token)

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code not in expect:
            raise ApiError(r.status_code, _problem(r))
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.content

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def upload(self, path: str, file: Path, params: dict[str, str], progress: Any = None) -> Any:
        size = file.stat().st_size

        def chunks() -> Iterator[bytes]:
            with open(file, "rb") as fh:
                while chunk := fh.read(256 * 1024):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        return self.request("POST", path, params=params, content=chunks(),
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})

    def download(self, path: str, dest: Path) -> int:
        with self.http.stream("GET", path) as r:
            if r.status_code != 200:
                r.read()
                raise ApiError(r.status_code, _problem(r))
            n = 0
            with open(dest, "wb") as fh:
                for chunk in r.iter_bytes():
                    fh.write(chunk)
                    n += len(chunk)
        return n

    def sse(self, path: str) -> Iterator[str]:
        """Lines of a Server-Sent Events stream until its ``end`` event."""
        with self.http.stream("GET", path, timeout=None) as r:
            if r.status_code != 200:
                r.read()
                raise ApiError(r.status_code, _problem(r))
            event = "message"
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].removeprefix(" ")
                    if event == "end":
                        return
                    yield data
                elif not line:
                    event = "message"

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


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    return {"title": r.reason_phrase, "detail": r.text[:500]}
