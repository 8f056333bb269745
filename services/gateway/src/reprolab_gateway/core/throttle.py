"""Throttling of failed API-token sign-ins: a bad ``Authorization: Bearer`` on the API and a bad token
pasted into the portal's sign-in form.

The counters are the password sign-in's (``AddressThrottle`` below, one per app in
``app.state.signin_throttle``), so one client address has one budget of failures whatever it tries.
Two keys, each a sliding window:

* the client address: ``signin_address_failures`` failures within ``signin_window_seconds``;
* the token itself (its sha256, never the token): ``signin_account_failures`` failures within
  ``signin_lock_seconds``, so a script looping on a revoked token is told to stop even from many addresses.

Past the token's limit that token is answered 429 with ``Retry-After`` before the database is asked.
Past the address's limit every *failed* token from that address is answered 429 (not 401) with
``Retry-After``, while a valid one is still let in: API tokens are 256 random bits, so refusing the
right one would buy no protection against guessing, and many people share one address (a classroom
behind NAT, every client behind a proxy that does not forward addresses), where one broken script must
not lock everyone out. (Passwords are guessable, so ``auth.signin`` refuses every password from a
locked address.) A valid token costs nothing extra: one checked recently is served from the token
cache before any of this. Only well-formed tokens count (a malformed one is refused without a lookup),
and only on the Authorization header or the sign-in form: an expired portal cookie is a normal end of
a session, not an attack.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from reprolab_common.errors import ProblemError
from starlette.requests import Request

from ..auth.sessions import client_address
from .config import GatewaySettings

TOKEN_KEY = "token:"


class AddressThrottle:
    """Failures per client address in a sliding window (one per app, kept in ``app.state``)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, window: float, now: float) -> deque[float]:
        q = self._failures.setdefault(address, deque())
        while q and q[0] <= now - window:
            q.popleft()
        return q

    def wait_seconds(self, address: str, *, limit: int, window: float) -> float:
        """0 when the address may try; else how long until it may."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(address, window, now)
            return 0.0 if len(q) < limit else q[len(q) - limit] + window - now

    def failed(self, address: str, *, window: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, window, now).append(now)
            if len(self._failures) > 100_000:  # bounded: drop the quiet addresses
                for key in [k for k, q in self._failures.items() if not q]:
                    del self._failures[key]


class TooManyAttempts(ProblemError):
    """429 with the ``Retry-After`` the client must honour."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def _throttle(request: Request) -> AddressThrottle:
    throttle = getattr(request.app.state, "signin_throttle", None)
    if throttle is None:
        throttle = request.app.state.signin_throttle = AddressThrottle()
    return throttle


def check_token_attempt(request: Request, settings: GatewaySettings, token_hash: str) -> None:
    """Raise ``TooManyAttempts`` when this token has failed too often lately (before any lookup)."""
    if not settings.signin_lock_seconds:
        return
    wait = _throttle(request).wait_seconds(TOKEN_KEY + token_hash, limit=settings.signin_account_failures,
                                           window=settings.signin_lock_seconds)
    if wait > 0:
        raise TooManyAttempts(f"this API token was refused too often lately (unknown or revoked); stop using it "
                              f"and try again in {math.ceil(wait)} s with a valid token", math.ceil(wait))


def token_failed(request: Request, settings: GatewaySettings, token_hash: str) -> None:
    """Count a refused token against the client's address and against the token; raise ``TooManyAttempts``
    (instead of the caller's 401) when the address has failed too often lately."""
    throttle = _throttle(request)
    address = client_address(request)
    throttle.failed(address, window=settings.signin_window_seconds)
    if settings.signin_lock_seconds:
        throttle.failed(TOKEN_KEY + token_hash, window=settings.signin_lock_seconds)
    wait = throttle.wait_seconds(address, limit=settings.signin_address_failures + 1,
                                 window=settings.signin_window_seconds)
    if wait > 0:
        raise TooManyAttempts(f"too many failed sign-ins with unknown or revoked API tokens from your address; "
                              f"try again in {math.ceil(wait)} s with a valid token", math.ceil(wait))


def _quota(request: Request, name: str) -> AddressThrottle:
    quotas = getattr(request.app.state, "quotas", None)
    if quotas is None:
        quotas = request.app.state.quotas = {}
    return quotas.setdefault(name, AddressThrottle())


def check_quota(request: Request, name: str, key: str, *, limit: int, window: float, what: str) -> None:
    """A quota of ``limit`` uses of ``name`` per ``key`` (e.g. a user id) in a sliding ``window``: raise
    ``TooManyAttempts`` (429, Retry-After) when it is spent. Uses count once done (``spend_quota``), so a
    refused or failed attempt costs nothing. Kept in this process (each gateway replica counts its own)."""
    wait = _quota(request, name).wait_seconds(key, limit=limit, window=window)
    if wait > 0:
        raise TooManyAttempts(f"you may make at most {limit} {what} every {window / 60:g} minutes; try again in "
                              f"{math.ceil(wait)} s", math.ceil(wait))


def spend_quota(request: Request, name: str, key: str, *, window: float) -> None:
    """Count one use against ``check_quota``'s quota."""
    _quota(request, name).failed(key, window=window)
