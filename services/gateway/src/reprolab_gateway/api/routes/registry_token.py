"""The OCI registry's token realm (Docker registry token specification): podman, skopeo, buildah and
the kubelet come here with HTTP Basic credentials when the registry answers 401, and get a short-lived
JWT scoped to what the caller may do (``reprolab_gateway.registry_access``)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.registrytoken import SERVICE, TOKEN_SECONDS, SigningKey, parse_scope, sign_token
from starlette.concurrency import run_in_threadpool

from ... import registry_access as ra
from ...core.config import GatewaySettings
from ...core.security import TokenCache, hash_token, looks_like_token
from ..deps import NatsDep, SettingsDep, _authenticate_new_session

router = APIRouter(prefix="/registry", tags=["registry"])


class RegistryToken(BaseModel):
    token: str = Field(description="Bearer token for the registry (a JWT); also under access_token.")
    access_token: str = Field(description="The same token (the OAuth2 name some clients read).")
    expires_in: int = Field(description="Seconds the token stays valid.")
    issued_at: str = Field(description="When it was issued (RFC 3339, UTC).")


@lru_cache(maxsize=4)
def _signing_key(key_file: Path, cert_file: Path, _mtime: float) -> SigningKey:
    return SigningKey.load(key_file, cert_file)


async def _principal(request: Request, settings: GatewaySettings) -> ra.Principal:
    """Who the request is: a service identity or pull grant (Basic), or a user (Basic or Bearer)."""
    header = request.headers.get("authorization")
    if not header:
        raise ra.RegistryLoginFailed("the registry needs credentials and the request has none")
    basic = ra.basic_credentials(header)
    username: str | None = None
    if basic is not None:
        username, token = basic
        found = ra.service_principal(username, token, ra.service_passwords(settings.registry_credentials_file))
        if found is not None:
            return found
    else:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ra.RegistryLoginFailed("malformed Authorization header: expected Basic or Bearer")
    if not looks_like_token(token):
        raise ra.RegistryLoginFailed("the password must be an API token (rpl_...), not your sign-in password")
    cache = getattr(request.app.state, "token_cache", None)
    if cache is None:
        cache = request.app.state.token_cache = TokenCache()
    key = hash_token(token)
    user = cache.get(key)
    if user is None:
        user = await run_in_threadpool(_authenticate_new_session, request, settings, token)
        if user is None:
            raise ra.RegistryLoginFailed("the API token is unknown or has been revoked")
        cache.put(key, user, settings.token_cache_seconds)
    if username is not None and username != user.username:
        raise ra.RegistryLoginFailed(f"the API token does not belong to {username!r}")
    return ra.Principal(subject=user.username, user=user)


@router.get(
    "/token",
    response_model=RegistryToken,
    responses={401: {"description": "No or wrong credentials"}, 404: {"description": "Token auth is off"}},
)
async def registry_token(
    request: Request,
    settings: SettingsDep,
    link: NatsDep,
    service: Annotated[str, Query(max_length=200, description=f"The registry's service name ({SERVICE}).",
                                  json_schema_extra={"enum": [SERVICE]})],
    scope: Annotated[list[str], Query(max_length=20, description="Scopes as in repository:<ws>/<env>:pull.")] = [],  # noqa: B006
    account: Annotated[str | None, Query(max_length=200, description="Ignored (sent by some clients).")] = None,
) -> RegistryToken:
    """A registry token for the caller (HTTP Basic: username + API token, or Bearer): pull on the
    environments they can see, push for the builder only, the catalog for platform admins. What the
    caller may not have is left out of the token (the registry then refuses it), never an error."""
    key_file, cert_file = settings.registry_token_key_file, settings.registry_token_cert_file
    if key_file is None or cert_file is None:
        raise NotFound("this platform's registry does not use Reprolab's tokens (registry_token_key_file unset)")
    if service != SERVICE:
        raise Invalid(f"unknown service {service!r}: this realm issues tokens for {SERVICE!r}",
                      errors=[("query.service", f"expected {SERVICE!r}")])
    principal = await _principal(request, settings)
    wanted = [a for a in (parse_scope(s) for s in scope) if a is not None]
    access = await ra.grant(principal, wanted, link=link, timeout=settings.nats_timeout_seconds)
    signing = _signing_key(key_file, cert_file, key_file.stat().st_mtime)
    token = sign_token(signing, subject=principal.subject, access=access)
    issued = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return RegistryToken(token=token, access_token=token, expires_in=TOKEN_SECONDS, issued_at=issued)
