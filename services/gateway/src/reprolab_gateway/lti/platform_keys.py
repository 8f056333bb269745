"""The LMS's signing keys (its JWKS), fetched with a timeout and cached per JWKS URL.

A launch signed with a key id we do not hold refetches the JWKS once (the LMS rotated its keys), but
not more often than ``min_interval`` per URL, so a stream of forged tokens cannot turn the gateway into
a client hammering the LMS.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt


class KeysUnavailable(Exception):
    """The JWKS could not be fetched or read."""


@dataclass
class _Entry:
    keys: dict[str, Any] = field(default_factory=dict)
    fetched: float = 0.0


class PlatformKeys:
    def __init__(self, *, timeout: float, min_interval: float) -> None:
        self.timeout = timeout
        self.min_interval = min_interval
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    async def _fetch(self, url: str) -> _Entry:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise KeysUnavailable(f"the LMS's keys at {url} could not be fetched ({type(exc).__name__})") from exc
        keys: dict[str, Any] = {}
        for jwk in doc.get("keys", []) if isinstance(doc, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm="RS256").key
            except jwt.PyJWTError:
                continue
        return _Entry(keys=keys, fetched=time.monotonic())

    async def key(self, url: str, kid: str) -> Any | None:
        """The public key ``kid`` of the JWKS at ``url``, or None when the LMS does not publish it."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            entry = self._cache.get(url)
            if entry is None:
                entry = self._cache[url] = await self._fetch(url)
            elif kid not in entry.keys and time.monotonic() - entry.fetched >= self.min_interval:
                entry = self._cache[url] = await self._fetch(url)  # rotated keys: refetch once
            return entry.keys.get(kid)
