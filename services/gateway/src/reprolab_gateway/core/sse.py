"""Live logs from the LOGS stream as Server-Sent Events (builds and runs share this)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from reprolab_common.nats import LOG_END_HEADER

END_HEADER = LOG_END_HEADER


async def log_events(js: JetStreamContext, subject: str, finished: Callable[[], Awaitable[str | None]]
                     ) -> AsyncIterator[bytes]:
    """Every line on ``subject`` from the first, as ``data:`` events, then ``event: end`` with the final
    status (from the end marker, or from ``finished()`` once the log has gone quiet)."""
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                status = await finished()
                if status:
                    # finished, and its end marker is gone (LOGS keeps 7 days): stop here
                    yield f"event: end\ndata: {status}\n\n".encode()
                    return
                yield b": keep-alive\n\n"
                continue
            end = (msg.headers or {}).get(END_HEADER)
            if end:
                yield f"event: end\ndata: {end}\n\n".encode()
                return
            for line in msg.data.decode(errors="replace").splitlines():
                yield b"data: " + line.encode() + b"\n\n"  # splitlines: no CR/LF left inside
    finally:
        await asyncio.shield(sub.unsubscribe())
