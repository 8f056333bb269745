"""Throttling of failed API-token sign-ins: a bad ``Authorization: Bearer`` on the API and a bad token
pasted into the portal's sign-in form.

The counters are the password sign-in's (``auth.signin.AddressThrottle``, one per app in
``app.state.signin_throttle``), so one client address has one budget of failures whatever it tries.
Two keys, each a sliding window:

* the client address: ``signin_address_failures`` failures within ``signin_window_seconds``;
* the token itself (its sha256, never the token): ``signin_account_failures`` failures within
  ``signin_lock_seconds``, so a script looping on a revoked token is told to stop even from many addresses.

Past either limit the request is answered 429 with ``Retry-After`` before the database is asked, so
the right token does not help either (no guessing through the lock). A valid token costs nothing
extra: a token checked recently is served from the token cache before any of this, and one from an
address under its limit is looked up as before. Only well-formed tokens count (a malformed one is
refused without a lookup), and only on the Authorization header: an expired portal cookie is a
normal end of a session, not an attack.
"""

from __future__ import annotations

import math

from reprolab_common.errors import ProblemError
from starlette.requests import Request

from ..auth.sessions import client_address
from ..auth.signin import AddressThrottle
from .config import GatewaySettings

TOKEN_KEY = "token:"


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
    """Raise ``TooManyAttempts`` when this address or this token has failed too often lately."""
    throttle = _throttle(request)
    by_address = throttle.wait_seconds(client_address(request), limit=settings.signin_address_failures,
                                       window=settings.signin_window_seconds)
    by_token = throttle.wait_seconds(TOKEN_KEY + token_hash, limit=settings.signin_account_failures,
                                     window=settings.signin_lock_seconds) if settings.signin_lock_seconds else 0.0
    wait = max(by_address, by_token)
    if wait > 0:
        who = "your address" if by_address >= by_token else "this token"
        raise TooManyAttempts(f"too many failed sign-ins with an unknown or revoked API token from {who}; "
                              f"try again in {math.ceil(wait)} s with a valid token", math.ceil(wait))


def token_failed(request: Request, settings: GatewaySettings, token_hash: str) -> None:
    """Count a refused token against the client's address and against the token."""
    throttle = _throttle(request)
    throttle.failed(client_address(request), window=settings.signin_window_seconds)
    if settings.signin_lock_seconds:
        throttle.failed(TOKEN_KEY + token_hash, window=settings.signin_lock_seconds)


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
