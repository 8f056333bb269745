"""The registry's answers to repeated reads, kept per gateway process and dropped when they may be stale.

Reads through the gateway were each one NATS round trip to the registry (an access check and a query),
and on a small machine the round trip (socket writes in three processes) was most of their cost
(bench/gateway.py). The routes ``GET /workspaces/{ws}``, ``GET .../environments``, ``GET
.../environments/{env}``, ``GET .../environments/{env}/versions`` and ``GET .../versions/{n}`` reuse the
registry's reply for the same caller (user id, name, platform admin flag), workspace, route and query
parameters. Only replies are kept: an error (404, 403, 503) is asked for again every time. The route still
turns the reply into the response, so a cached answer is byte for byte the uncached one.

What makes an entry go, before its time (REPROLAB_GATEWAY_READ_CACHE_SECONDS) is up:

- a write this process sends to the registry drops the workspaces the request names, after the reply
  and before the HTTP response (read-your-writes); a write that failed or timed out drops them too;
- the registry publishes ``registry.changed`` (payload: the slug) after every committed change to a
  workspace's data, whoever asked for it (another gateway replica, the builder recording an image, a
  member removed): this process drops that workspace when the notice arrives;
- a read that started before a workspace was dropped does not store its reply (it may predate the
  change): each drop advances a sequence number, and a reply is stored only if no drop of its workspace
  (and no clear) happened since the read began;
- while the subscription to the notices is not known to be live (not connected yet, disconnected,
  reconnecting, reconnected but not yet confirmed by a round trip to the server) nothing is served from
  the cache or stored in it, and on every (re)connection it starts empty: notices may have been lost.

The time limit is the safety net for a notice lost without a disconnection (a broken route between the
servers of a NATS cluster). The cache holds at most ``max_entries`` replies and ``max_bytes`` of them,
least recently used first out. The token check runs before it: a revoked token or a disabled user is
refused exactly as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING

from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from reprolab_common.subjects import REGISTRY_CHANGED

if TYPE_CHECKING:
    from .natslink import NatsLink

log = logging.getLogger(__name__)

class ReadCache:
    def __init__(
        self,
        link: NatsLink,
        ttl: float,
        *,
        max_entries: int = 4096,
        max_bytes: int = 64 << 20,
        confirm_timeout: float = 5.0,
    ) -> None:
        self.link = link
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.confirm_timeout = confirm_timeout
        # key -> (expires at, workspace, reply, its size); oldest use first
        self._entries: OrderedDict[Hashable, tuple[float, str, Message, int]] = OrderedDict()
        self._by_workspace: dict[str, set[Hashable]] = {}
        self._bytes = 0
        self._seq = 0  # advances at every drop and clear
        self._dropped: dict[str, int] = {}  # workspace -> sequence number of its last drop
        self._cleared = 0  # sequence number of the last clear
        # the client whose subscription is confirmed, and its reconnect count then
        self._nc: Client | None = None
        self._reconnects = -1
        self._subscribed: Client | None = None
        self._attaching: asyncio.Task[None] | None = None

    # --- liveness of the notices -------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether the notices reach this process: connected, subscribed and confirmed, no reconnect since."""
        nc = self._nc
        if nc is None:
            return False
        if not nc.is_connected:
            return False
        if nc.stats["reconnects"] != self._reconnects:  # reconnected: notices may have been lost meanwhile
            self._nc = None
            self.clear()
            return False
        return True

    def _usable(self) -> bool:
        if self.live:
            return True
        if self.link.connected and (self._attaching is None or self._attaching.done()):
            self._attaching = asyncio.create_task(self._attach(self.link.client), name="gateway-read-cache")
        return False

    async def _attach(self, nc: Client) -> None:
        try:
            if self._subscribed is not nc:
                # no pending limit: a notice is never dropped on this side for a slow callback
                await nc.subscribe(REGISTRY_CHANGED, cb=self._on_notice, pending_msgs_limit=0, pending_bytes_limit=0)
                self._subscribed = nc
            reconnects = nc.stats["reconnects"]
            await nc.flush(timeout=self.confirm_timeout)  # the server has the subscription (its PONG came back)
            if nc.is_connected and nc.stats["reconnects"] == reconnects:
                self.clear()
                self._nc, self._reconnects = nc, reconnects
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # tried again at the next cached read
            log.warning("read cache: cannot subscribe to %s: %s", REGISTRY_CHANGED, exc)

    async def _on_notice(self, msg: Msg) -> None:
        self.drop(msg.data.decode(errors="replace"))

    async def close(self) -> None:
        if self._attaching is not None and not self._attaching.done():
            self._attaching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._attaching
        self._nc = None
        self.clear()

    # --- entries -----------------------------------------------------------------------------------

    def begin(self) -> int | None:
        """Before a cacheable read: the sequence number to pass to ``put``, or None when the cache must
        not be used now (off, or the notices are not live)."""
        if self.ttl <= 0 or not self._usable():
            return None
        return self._seq

    def get(self, key: Hashable) -> Message | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return hit[2]

    def put(self, key: Hashable, workspace: str, reply: Message, since: int) -> None:
        """Keep ``reply`` unless ``workspace`` was dropped (or everything cleared) after ``begin`` gave
        ``since``, or the notices stopped being live meanwhile."""
        if not self.live or self._cleared > since or self._dropped.get(workspace, -1) > since:
            return
        size = reply.ByteSize()
        if size > self.max_bytes // 16:
            return
        self._remove(key)
        self._entries[key] = (time.monotonic() + self.ttl, workspace, reply, size)
        self._by_workspace.setdefault(workspace, set()).add(key)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def drop(self, workspace: str) -> None:
        """Forget every reply about ``workspace``; reads of it in flight will not store theirs."""
        self._seq += 1
        if len(self._dropped) >= 10 * self.max_entries:  # bound the bookkeeping: a clear covers every workspace
            self.clear()
            return
        self._dropped[workspace] = self._seq
        for key in self._by_workspace.pop(workspace, ()):
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._bytes -= entry[3]

    def clear(self) -> None:
        self._seq += 1
        self._cleared = self._seq
        self._dropped.clear()
        self._entries.clear()
        self._by_workspace.clear()
        self._bytes = 0

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry[3]
        keys = self._by_workspace.get(entry[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_workspace[entry[1]]

    def __len__(self) -> int:
        return len(self._entries)
