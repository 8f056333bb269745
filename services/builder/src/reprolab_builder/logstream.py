"""Build output, line by line, to the LOGS stream (``logs.build.<id>``) and the object store, scrubbed
of host paths and workspace names (``Scrubber``).

The build runs in a worker thread; ``write`` is thread-safe and hands lines to the event loop, which
publishes them in small batches. The last message carries the ``Reprolab-Log-End`` header so a
reader (the gateway's SSE endpoint) knows when to stop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from reprolab_common.hostpaths import HostPaths
from reprolab_common.nats import LOG_END_HEADER
from reprolab_common.objectstore import ObjectStore

from .config import BuilderSettings

log = logging.getLogger(__name__)

END_HEADER = LOG_END_HEADER
# Credentials in URLs (https://user:token@host) never reach a log.
_SECRET_URL = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")


def redact(line: str) -> str:
    return _SECRET_URL.sub(r"\1***:***@", line)


@dataclass(frozen=True)
class Scrubber:
    """Takes what a build log or error must not show a reader out of a line: credentials in URLs, the
    builder host's paths (data directory, caches, temporary and storage directories) and the names of
    the workspace and environment the build was first requested for. A build an identical lock shares
    is read from other workspaces, so its log names neither; its image is ``<image>``."""

    paths: HostPaths = HostPaths()

    @classmethod
    def for_host(cls, settings: BuilderSettings) -> Scrubber:
        places: dict[Path | None, str] = {settings.cache_root(): "<builder-cache>", settings.common.data_dir: "<data>"}
        for path in (settings.registry_auth_file, settings.pip_cert):
            if path is not None:
                places[path] = f"<{path.name}>"
        return cls(HostPaths.of(places))

    def naming(self, image_ref: str, workspace: str) -> Scrubber:
        """This scrubber, also hiding the image repository and workspace of one build."""
        repository = image_ref.rsplit(":", 1)[0] if image_ref.rfind(":") > image_ref.rfind("/") else image_ref
        return Scrubber(self.paths.plus({repository: "<image>", f"workspaces/{workspace}/": "workspaces/<workspace>/"}))

    def __call__(self, text: str) -> str:
        return self.paths(redact(text))


class LogStream:
    def __init__(self, js: JetStreamContext, subject: str, loop: asyncio.AbstractEventLoop,
                 scrub: Callable[[str], str] = redact) -> None:
        self.js = js
        self.subject = subject
        self.loop = loop
        self.scrub = scrub
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.lines: list[str] = []
        self.task = loop.create_task(self._pump())

    def write(self, line: str) -> None:
        """Thread-safe."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, self.scrub(line.rstrip("\n")))

    async def _pump(self) -> None:
        done = False
        while not done:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < 200:
                batch.append(self.queue.get_nowait())
            if None in batch:
                batch = batch[: batch.index(None)]
                done = True
            if batch:
                self.lines.extend(batch)
                await self._publish("\n".join(batch).encode())

    async def _publish(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            await self.js.publish(self.subject, data, headers=headers, timeout=5)
        except Exception as exc:  # logs are best effort: the build's outcome never depends on them
            log.warning("could not publish build log to %s: %s", self.subject, exc)

    async def close(self, status: str, store: ObjectStore | None, key: str) -> None:
        self.queue.put_nowait(None)
        await self.task
        await self._publish(f"build {status}".encode(), headers={END_HEADER: status})
        if store is not None:
            try:
                await asyncio.to_thread(store.put_bytes, key, ("\n".join(self.lines) + "\n").encode())
            except Exception as exc:
                log.warning("could not store build log %s: %s", key, exc)
