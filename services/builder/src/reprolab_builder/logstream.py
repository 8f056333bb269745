"""Build output, line by line, to the LOGS stream (``logs.build.<id>``) and the object store.

The build runs in a worker thread; ``write`` is thread-safe and hands lines to the event loop, which
publishes them in small batches. The last message carries the ``Reprolab-Log-End`` header so a
reader (the gateway's SSE endpoint) knows when to stop.
"""

from __future__ import annotations

import asyncio
import logging
import re

from nats.js import JetStreamContext
from reprolab_common.nats import LOG_END_HEADER
from reprolab_common.objectstore import ObjectStore

log = logging.getLogger(__name__)

END_HEADER = LOG_END_HEADER
# Credentials in URLs (https://user:token@host) never reach a log.
_SECRET_URL = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")


def redact(line: str) -> str:
    return _SECRET_URL.sub(r"\1***:***@", line)


class LogStream:
    def __init__(self, js: JetStreamContext, subject: str, loop: asyncio.AbstractEventLoop) -> None:
        self.js = js
        self.subject = subject
        self.loop = loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.lines: list[str] = []
        self.task = loop.create_task(self._pump())

    def write(self, line: str) -> None:
        """Thread-safe."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, redact(line.rstrip("\n")))

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
