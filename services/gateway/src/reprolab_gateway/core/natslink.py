"""The gateway's NATS connection, made in the background so the API serves even while NATS is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.client import Client
from reprolab_common.errors import ServiceUnavailable
from reprolab_common.nats import connect

from .readcache import ReadCache

log = logging.getLogger(__name__)


class NatsLink:
    """Holds the client once connected. ``client`` raises a 503 problem while NATS is unreachable
    (not yet connected, or reconnecting), so callers fail fast instead of queueing requests."""

    def __init__(self, url: str, name: str = "gateway", credentials: dict[str, Any] | None = None) -> None:
        self.url = url
        self.name = name
        self.credentials = credentials or {}
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        # The registry's replies to repeated reads (core/readcache.py); None: off. Every RegistryClient on this
        # link drops the workspaces its writes name from it.
        self.read_cache: ReadCache | None = None

    async def start(self, wait: float) -> None:
        self._task = asyncio.create_task(self._connect(), name="gateway-nats-connect")
        await asyncio.wait({self._task}, timeout=wait)
        if not self.connected:
            log.warning("NATS at %s is not reachable yet; serving anyway, will keep trying", self.url)

    async def _connect(self) -> None:
        try:
            self._nc = await connect(self.url, self.name, **self.credentials)
            log.info("connected to NATS at %s", self.url)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cannot connect to NATS at %s", self.url)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def client(self) -> Client:
        if self._nc is None or not self._nc.is_connected:
            raise ServiceUnavailable(
                "NATS is unavailable, so the platform's services cannot be reached; try again shortly"
            )
        return self._nc

    async def close(self) -> None:
        if self.read_cache is not None:
            await self.read_cache.close()
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=5)
