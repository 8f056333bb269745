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
