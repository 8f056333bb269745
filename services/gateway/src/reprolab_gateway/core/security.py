"""API tokens: ``rpl_`` + 32 random bytes (URL-safe base64); only their sha256 is stored.

The web portal carries the same token in an HttpOnly, SameSite=Strict cookie instead of the
``Authorization`` header, so pages use exactly the API's authentication and roles. A cookie is sent
by the browser on its own, so state-changing requests authenticated by it must also prove they come
from a portal page: the double-submit CSRF check below (a header equal to a second, readable cookie
that another site can neither read nor set).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import weakref
from collections.abc import Hashable

from starlette.requests import HTTPConnection

TOKEN_PREFIX = "rpl_"
SESSION_COOKIE = "reprolab_session"
CSRF_COOKIE = "reprolab_csrf"
CSRF_HEADER = "X-Reprolab-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# token_urlsafe(32) gives 43 characters; accept a little slack so a future longer token still parses.
_TOKEN = re.compile(r"^rpl_[A-Za-z0-9_-]{32,128}$")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(conn: HTTPConnection, supplied: str | None) -> bool:
    """Whether ``supplied`` (a header or form field) equals the CSRF cookie, in constant time."""
    cookie = conn.cookies.get(CSRF_COOKIE, "")
    return bool(cookie and supplied) and secrets.compare_digest(cookie.encode(), (supplied or "").encode())


class TTLCache:
    """Keys → values for ``ttl`` seconds each, bounded (cleared whole when full: crude, but refilling costs
    one lookup per live key). Used from the event loop only (plain dict operations, no await): no lock."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, object]] = {}

    def get(self, key: Hashable) -> object | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return hit[1]

    def put(self, key: Hashable, value: object, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    def pop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def forget(self) -> None:
        self._entries.clear()


class TokenCache(TTLCache):
    """Tokens checked in the last ``ttl`` seconds → their user, so an authenticated request does not pay
    a database query and two thread-pool hops each time (the token check was most of the gateway's CPU
    per request; bench/gateway.py).

    Keyed by the token's sha256 (the raw token is not kept). Revoking a token through this process
    forgets it at once (``forget``: the cache cannot map a token id back to its hash, so every entry goes);
    another gateway process keeps accepting a revoked token for at most ``ttl`` seconds
    (REPROLAB_GATEWAY_TOKEN_CACHE_SECONDS; 0 turns the cache off)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        super().__init__(max_entries)
        _caches.add(self)


# Every cache of this process (one per app: apps over different databases must not share users), so a
# revocation clears them all.
_caches: weakref.WeakSet[TokenCache] = weakref.WeakSet()


def forget_tokens() -> None:
    """Called after a token is revoked: no cache of this process may accept it any more."""
    for cache in list(_caches):
        cache.forget()
