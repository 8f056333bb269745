"""Dependencies of the routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from reprolab.v1 import common_pb2
from reprolab_common.errors import Forbidden
from reprolab_common.objectstore import ObjectStore
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from .. import crud
from ..auth.sessions import hash_session_id, looks_like_session_id, resolve_session
from ..clients import AuditClient, BuilderClient, RegistryClient, RunnerClient
from ..core.config import GatewaySettings
from ..core.natslink import NatsLink
from ..core.problems import Unauthorized
from ..core.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    TokenCache,
    csrf_matches,
    hash_token,
    looks_like_token,
)
from ..core.throttle import check_token_attempt, token_failed
from ..models import User

# Small dependencies are ``async def`` so they do not hop to the thread pool; ``get_db`` touches the
# database and is a plain function (it does). The token check is async and hops only on a cache miss.

# Declared for the OpenAPI document (the "Authorize" button); the header is checked below so that a
# missing, malformed and unknown token each get their own message.
_bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer rpl_...")


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def authenticate(session: Session, settings: GatewaySettings, token: str) -> User | None:
    """The token's user, or None when it is unknown or revoked (used by the API and the portal's pages).

    The connection goes back to the pool at once: most routes then wait on NATS, and a request holding
    a pooled connection meanwhile would exhaust the pool under load. The user stays usable (detached)."""
    user = crud.authenticate(session, token, touch_every=timedelta(seconds=settings.token_touch_seconds))
    session.close()
    return user


def session_user(session: Session, settings: GatewaySettings, session_id: str) -> User | None:
    """The user of a live browser session (the portal's cookie), or None; the connection is released
    at once, as in ``authenticate``."""
    user = resolve_session(session, session_id, settings)
    session.close()
    return user


def _authenticate_new_session(request: Request, settings: GatewaySettings, token: str) -> User | None:
    with request.app.state.sessions() as session:
        if looks_like_session_id(token):
            return session_user(session, settings, token)
        return authenticate(session, settings, token)


async def get_current_user(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    # the settings are not a dependency here: FastAPI resolves each node of the tree on every request
    return await request_user(request, request.app.state.settings)


async def request_user(request: Request, settings: GatewaySettings) -> User:
    """The caller of ``request`` by its bearer token or the portal's session cookie (401 otherwise)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _sep, value = header.partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        # the portal's session: a browser sends cookies on its own, so changes must prove their page
        if request.method not in SAFE_METHODS and not csrf_matches(request, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"a request authenticated by the portal's session cookie must carry the {CSRF_HEADER} "
                            f"header equal to the {CSRF_COOKIE} cookie; reload the page and try again")
        if not looks_like_session_id(cookie):
            raise Unauthorized("malformed session cookie; sign in again at /")
        token = cookie
    else:
        raise Unauthorized(
            "this endpoint needs an API token and the request has no Authorization header",
            invalid_token=False,
        )
    is_session = looks_like_session_id(token) and not header
    if not is_session and not looks_like_token(token):
        raise Unauthorized("malformed API token: tokens start with 'rpl_'")
    # async, with the cache in front: a known token or session costs neither a query nor a thread-pool hop
    cache = getattr(request.app.state, "token_cache", None)
    if cache is None:
        cache = request.app.state.token_cache = TokenCache()
    key = ("s:" + hash_session_id(token)) if is_session else hash_token(token)
    user = cache.get(key)
    if user is None:
        if not is_session:  # failed API tokens are throttled per address and per token (core/throttle.py)
            check_token_attempt(request, settings, key)
        user = await run_in_threadpool(_authenticate_new_session, request, settings, token)
        if user is None:
            if not is_session:
                token_failed(request, settings, key)
            raise Unauthorized("the session has ended (signed out, expired or ended by an admin); sign in again"
                               if is_session else "the API token is unknown or has been revoked")
        cache.put(key, user, settings.token_cache_seconds)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_platform_admin(user: CurrentUser) -> User:
    if not user.platform_admin:
        raise Forbidden("only a platform admin can do this")
    return user


PlatformAdmin = Annotated[User, Depends(get_platform_admin)]


def actor_of(user: User) -> common_pb2.Actor:
    return common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)


async def get_actor(user: CurrentUser) -> common_pb2.Actor:
    return actor_of(user)


ActorDep = Annotated[common_pb2.Actor, Depends(get_actor)]


async def get_nats(request: Request) -> NatsLink:
    return request.app.state.nats


NatsDep = Annotated[NatsLink, Depends(get_nats)]

# The service clients take the request and the user only, not NatsDep, ActorDep and SettingsDep: FastAPI
# resolves every node of a route's dependency tree on every request, and those three nodes were a fifth
# of the gateway's CPU for a workspace read (bench/gateway.py).


async def get_registry(request: Request, user: CurrentUser) -> RegistryClient:
    state = request.app.state
    return RegistryClient(state.nats, actor_of(user), state.settings.nats_timeout_seconds)


RegistryDep = Annotated[RegistryClient, Depends(get_registry)]


async def get_audit(request: Request, user: CurrentUser) -> AuditClient:
    state = request.app.state
    settings: GatewaySettings = state.settings
    return AuditClient(state.nats, actor_of(user), settings.nats_timeout_seconds, settings.audit_timeout_seconds)


AuditDep = Annotated[AuditClient, Depends(get_audit)]


async def get_builder(request: Request, user: CurrentUser) -> BuilderClient:
    state = request.app.state
    settings: GatewaySettings = state.settings
    return BuilderClient(state.nats, actor_of(user), settings.nats_timeout_seconds,
                         settings.build_request_timeout_seconds)


BuilderDep = Annotated[BuilderClient, Depends(get_builder)]


async def get_runner(request: Request, user: CurrentUser) -> RunnerClient:
    state = request.app.state
    return RunnerClient(state.nats, actor_of(user), state.settings.nats_timeout_seconds)


RunnerDep = Annotated[RunnerClient, Depends(get_runner)]


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


StoreDep = Annotated[ObjectStore, Depends(get_store)]
