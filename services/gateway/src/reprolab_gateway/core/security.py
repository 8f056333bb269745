"""API tokens: ``rpl_`` + 32 random bytes (URL-safe base64); only their sha256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_PREFIX = "rpl_"
# token_urlsafe(32) gives 43 characters; accept a little slack so a future longer token still parses.
_TOKEN = re.compile(r"^rpl_[A-Za-z0-9_-]{32,128}$")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    return bool(_TOKEN.match(value))
