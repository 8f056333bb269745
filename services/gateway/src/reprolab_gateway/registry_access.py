"""Who may pull or push what in the OCI registry: the decisions of the token realm.

A repository is ``<workspace>/<environment>`` (the builder pushes ``<registry>/<ws>/<env>:v<n>``), so
pulling it is exactly seeing that environment: the registry service's ``ENV_GET`` answers the caller's
view, with workspace membership and fork ownership/visibility already in it (a student's private fork
is 404 to every other student). Nothing else is decided here, so the registry's pull rule cannot drift
from the REST API's.

* A user (HTTP Basic with their username and an API token, or Bearer): ``pull`` on repositories whose
  environment they can see; never ``push``; ``registry:catalog:*`` only for a platform admin.
* ``reprolab-builder`` (its service password): ``pull`` and ``push`` on any repository, no catalog.
* ``reprolab-runner``: ``pull`` on any repository (it runs what the gateway already authorised).
* a pull grant (``reprolab-grant``, minted by the runner for a VM or a pod): ``pull`` on its one
  repository until it expires.
Anything else in a scope is left out of the token: the registry then refuses the request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path

from reprolab.v1 import common_pb2
from reprolab_common.errors import ProblemError
from reprolab_common.registrytoken import BUILDER, GRANT_USER, RUNNER, Access, check_grant

from .clients import RegistryClient
from .core.natslink import NatsLink
from .models import User

REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$")
LOGIN_HINT = ("sign in with your username and an API token as the password: "
              "podman login <registry> -u <username> (an API token, rpl_...: make one with "
              "POST /api/v1/me/tokens)")


class RegistryLoginFailed(ProblemError):
    """401 from the token realm; podman/skopeo show it as 'unauthorized'."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail}; {LOGIN_HINT}")
        self.headers = {"WWW-Authenticate": 'Basic realm="reprolab registry"'}


@dataclass(frozen=True)
class Principal:
    """Who asked for a token: a user, a service identity, or the holder of a pull grant."""

    subject: str
    user: User | None = None
    service: str | None = None
    grant_repository: str | None = None


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(username, password) of a ``Basic`` Authorization header; None if it is not Basic."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise RegistryLoginFailed("malformed Basic Authorization header") from None
    if not sep or not username:
        raise RegistryLoginFailed("malformed Basic Authorization header: expected base64 of 'username:password'")
    return username, password


def service_passwords(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    return {k: v for k, v in json.loads(path.read_text()).items() if isinstance(v, str) and v}


def service_principal(username: str, password: str, passwords: dict[str, str]) -> Principal | None:
    """The service identity or grant these credentials prove; None if ``username`` names neither.
    A wrong password for a service name is refused (401), never tried as a user's."""
    if username in (BUILDER, RUNNER):
        expected = passwords.get(username)
        if not expected or not hmac.compare_digest(expected.encode(), password.encode()):
            raise RegistryLoginFailed(f"wrong password for the service identity {username}")
        return Principal(subject=username, service=username)
    if username == GRANT_USER:
        repository = check_grant(passwords.get(RUNNER, ""), password) if passwords.get(RUNNER) else None
        if repository is None:
            raise RegistryLoginFailed("the pull grant is forged, malformed or expired")
        return Principal(subject=f"{GRANT_USER}:{repository}", grant_repository=repository)
    return None


async def grant(principal: Principal, wanted: list[Access], *, link: NatsLink, timeout: float) -> list[Access]:
    """The part of ``wanted`` that ``principal`` may have (each resource with the allowed actions)."""
    out: list[Access] = []
    seen: dict[str, bool] = {}
    for access in wanted:
        allowed = await _allowed(principal, access, seen, link=link, timeout=timeout)
        actions = tuple(a for a in access.actions if a in allowed)
        if actions:
            out.append(Access(access.type, access.name, actions))
    return out


async def _allowed(principal: Principal, access: Access, seen: dict[str, bool], *, link: NatsLink,
                   timeout: float) -> set[str]:
    if access.type == "registry":
        # the catalog names every workspace's repositories: platform admins only
        return {"*"} if access.name == "catalog" and principal.user and principal.user.platform_admin else set()
    if access.type != "repository" or not REPOSITORY.match(access.name):
        return set()
    if principal.service == BUILDER:
        return {"pull", "push"}
    if principal.service == RUNNER:
        return {"pull"}
    if principal.grant_repository is not None:
        return {"pull"} if principal.grant_repository == access.name else set()
    if principal.user is None:
        return set()
    if access.name not in seen:
        seen[access.name] = await can_see(principal.user, access.name, link=link, timeout=timeout)
    return {"pull"} if seen[access.name] else set()


async def can_see(user: User, repository: str, *, link: NatsLink, timeout: float) -> bool:
    """Whether ``user`` sees the environment behind ``repository`` (the registry service decides)."""
    workspace, _, environment = repository.partition("/")
    actor = common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)
    try:
        await RegistryClient(link, actor, timeout).get_environment(workspace, environment)
    except ProblemError as exc:
        if exc.status in (403, 404):
            return False
        raise
    return True
