"""OIDC login initiation and the id_token checks of a launch (LTI 1.3 core, 1EdTech security framework).

``start_login`` answers the LMS's login initiation: a random ``state`` (bound to this browser by a cookie
and stored as its sha256) and ``nonce``, then the redirect to the LMS's authorization endpoint.
``validate_launch`` runs every check on the id_token posted back and raises ``LaunchRefused`` naming the
first that failed; the steps, in order:

1. ``state``: known, unused, unexpired, and started in this browser (the cookie's hash matches);
2. the JOSE header: RS256 and a ``kid``;
3. the key: the registration's JWKS holds ``kid`` (refetched once when it does not);
4. the signature, ``exp`` (with the clock skew), ``iss`` equal to the registration's issuer, ``aud``
   containing our client id;
5. several audiences need ``azp``, and an ``azp`` must be our client id;
6. ``iat``: present, not in the future, not older than ``max_token_age_seconds``;
7. ``nonce``: the one this login issued (single use, since the login is);
8. ``deployment_id``: one the registration lists;
9. ``message_type``: LtiResourceLinkRequest or LtiDeepLinkingRequest; ``version``: "1.3.0";
10. ``target_link_uri``: what the login was started for, and on the allow-list;
11. the message's own claims: a resource link id, or the deep-linking settings; ``sub`` and ``roles``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from .config import LtiSettings
from .models import LtiDeepLink, LtiLogin, LtiPlatform
from .platform_keys import KeysUnavailable, PlatformKeys
from .platforms import deployments, find

BROWSER_COOKIE = "reprolab_lti_browser"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
TARGET_LINK_URI = CLAIM + "target_link_uri"
RESOURCE_LINK = CLAIM + "resource_link"
ROLES = CLAIM + "roles"
CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)


class LaunchRefused(Exception):
    """A launch (or login initiation) that fails a check: ``check`` names it, ``reason`` says what to fix."""

    def __init__(self, check: str, reason: str, *, status: int = 400, platform: LtiPlatform | None = None,
                 claims: dict[str, Any] | None = None) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
        self.status = status
        self.platform = platform
        self.claims = claims or {}


@dataclass
class Launch:
    platform: LtiPlatform
    claims: dict[str, Any]
    message_type: str = ""
    deployment_id: str = ""
    roles: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def context(self) -> dict[str, Any]:
        value = self.claims.get(CONTEXT)
        return value if isinstance(value, dict) else {}

    @property
    def custom(self) -> dict[str, Any]:
        value = self.claims.get(CUSTOM)
        return value if isinstance(value, dict) else {}


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def tool_base(settings: LtiSettings, request_base: str) -> str:
    return (settings.public_url or request_base).rstrip("/")


def target_allowed(settings: LtiSettings, base: str, uri: str) -> bool:
    """``uri`` is this tool's (under <base>/lti/) or starts with an allowed prefix; compared as parsed URLs,
    so ``https://reprolab.example.edu.evil.com/lti/`` or a user-info trick cannot pass."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or parts.username or parts.password or not parts.netloc:
        return False
    for prefix in [f"{base}/lti/", *settings.allowed_targets]:
        allowed = urlsplit(prefix)
        if (parts.scheme, parts.netloc.lower()) == (allowed.scheme, allowed.netloc.lower()) and \
                parts.path.startswith(allowed.path or "/"):
            return True
    return False


@dataclass
class LoginRedirect:
    url: str
    browser_cookie: str | None  # a new browser id to set, or None when the browser had one


def start_login(db: Session, settings: LtiSettings, *, base: str, params: dict[str, str],
                browser_cookie: str) -> LoginRedirect:
    """The LMS's third-party login initiation → the authorization request (OIDC implicit, form_post)."""
    issuer = params.get("iss", "")
    login_hint = params.get("login_hint", "")
    target = params.get("target_link_uri", "")
    if not issuer or not login_hint or not target:
        raise LaunchRefused("login", "the login initiation must carry iss, login_hint and target_link_uri")
    platform = find(db, issuer, params.get("client_id"))
    if platform is None:
        raise LaunchRefused("login", f"no LMS with issuer {issuer!r}"
                            + (f" and client id {params['client_id']!r}" if params.get("client_id") else "")
                            + " is registered here; a platform admin registers it under LTI platforms", status=403)
    deployment = params.get("lti_deployment_id")
    if deployment and deployment not in deployments(platform):
        raise LaunchRefused("deployment_id", f"deployment {deployment!r} of {issuer} is not registered here; "
                            "a platform admin adds it to the LMS registration", status=403, platform=platform)
    if not target_allowed(settings, base, target):
        raise LaunchRefused("target_link_uri", f"{target!r} is not a launch URL of this tool", status=403,
                            platform=platform)
    purge_expired(db)  # logins no launch came back for (anyone can start one) do not pile up
    new_cookie = None
    if not browser_cookie:
        browser_cookie = new_cookie = secrets.token_urlsafe(32)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.add(LtiLogin(state_hash=_sha256(state), platform_id=platform.id, nonce=nonce,
                    browser_hash=_sha256(browser_cookie), target_link_uri=target,
                    expires_at=datetime.now(UTC) + timedelta(seconds=settings.login_ttl_seconds)))
    db.commit()
    query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
             "client_id": platform.client_id, "redirect_uri": f"{base}/lti/launch", "login_hint": login_hint,
             "state": state, "nonce": nonce}
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    sep = "&" if urlsplit(platform.auth_login_url).query else "?"
    return LoginRedirect(url=f"{platform.auth_login_url}{sep}{urlencode(query)}", browser_cookie=new_cookie)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise LaunchRefused("id_token", f"the id_token is not a JWT ({exc})") from exc


async def validate_launch(db: Session, settings: LtiSettings, keys: PlatformKeys, *, base: str, id_token: str,
                          state: str, browser_cookie: str) -> Launch:
    """Every check of a launch, in order; the login is used up by a launch that passes."""
    if not id_token or not state:
        raise LaunchRefused("id_token", "the launch must post id_token and state (response_mode=form_post)")
    header, unverified = _unverified(id_token)
    login = db.get(LtiLogin, _sha256(state))
    platform = db.get(LtiPlatform, login.platform_id) if login is not None else None
    hint = {k: unverified.get(k) for k in ("iss", "aud", "sub", DEPLOYMENT_ID, MESSAGE_TYPE)}
    # 1. state
    if login is None or platform is None:
        raise LaunchRefused("state", "this launch was not started here (unknown state); start it again from the "
                            "LMS", status=403, claims=hint)
    if login.used_at is not None:
        raise LaunchRefused("state", "this launch was used already (replayed); start it again from the LMS",
                            status=403, platform=platform, claims=hint)
    if _aware(login.expires_at) <= datetime.now(UTC):
        raise LaunchRefused("state", "the launch took too long after its login; start it again from the LMS",
                            status=403, platform=platform, claims=hint)
    if not browser_cookie or not secrets.compare_digest(_sha256(browser_cookie), login.browser_hash):
        raise LaunchRefused("state", "this launch was started in another browser, or the browser blocked the "
                            "tool's cookie inside the LMS frame; allow third-party cookies for this site or open "
                            "the tool in a new window", status=403, platform=platform, claims=hint)
    # used up here, atomically: of two posts of one state racing each other only one gets past this line
    taken = db.execute(update(LtiLogin).where(LtiLogin.state_hash == login.state_hash, LtiLogin.used_at.is_(None))
                       .values(used_at=datetime.now(UTC))).rowcount
    db.commit()
    if taken != 1:
        raise LaunchRefused("state", "this launch was used already (replayed); start it again from the LMS",
                            status=403, platform=platform, claims=hint)

    def refuse(check: str, reason: str, status: int = 401) -> LaunchRefused:
        return LaunchRefused(check, reason, status=status, platform=platform, claims=hint)

    # 2. header
    if header.get("alg") != "RS256":
        raise refuse("alg", f"the id_token is signed with {header.get('alg')!r}; LTI 1.3 requires RS256")
    kid = header.get("kid")
    if not kid or not isinstance(kid, str):
        raise refuse("kid", "the id_token's header names no key (kid)")
    # 3. key
    try:
        key = await keys.key(platform.jwks_url, kid)
    except KeysUnavailable as exc:
        raise refuse("jwks", str(exc), status=502) from exc
    if key is None:
        raise refuse("kid", f"the LMS's keys ({platform.jwks_url}) hold no key {kid!r}, even after refetching them")
    # 4. signature, exp, iss, aud
    try:
        claims = jwt.decode(id_token, key, algorithms=["RS256"], audience=platform.client_id,
                            issuer=platform.issuer, leeway=settings.clock_skew_seconds,
                            options={"require": ["exp", "iat", "iss", "aud", "nonce"], "verify_iat": False})
    except jwt.InvalidSignatureError as exc:
        raise refuse("signature", "the id_token's signature does not verify with the LMS's key") from exc
    except jwt.ExpiredSignatureError as exc:
        raise refuse("exp", "the id_token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise refuse("aud", f"the id_token is not for this tool: its audience does not contain our client id "
                            f"{platform.client_id!r}") from exc
    except jwt.InvalidIssuerError as exc:
        raise refuse("iss", f"the id_token's issuer is not {platform.issuer!r}, who this launch began with") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise refuse("claims", f"the id_token lacks the {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise refuse("id_token", f"the id_token is invalid ({exc})") from exc
    # 5. several audiences → azp
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and "azp" not in claims:
        raise refuse("azp", "the id_token has several audiences and no azp (authorized party)")
    if "azp" in claims and claims["azp"] != platform.client_id:
        raise refuse("azp", f"the id_token's azp is not our client id {platform.client_id!r}")
    # 6. iat age
    now = time.time()
    iat = claims["iat"]
    if not isinstance(iat, (int, float)):
        raise refuse("iat", "the id_token's iat is not a number")
    if iat > now + settings.clock_skew_seconds:
        raise refuse("iat", "the id_token was issued in the future (check the LMS's clock)")
    if now - iat > settings.max_token_age_seconds:
        raise refuse("iat", f"the id_token was issued more than {settings.max_token_age_seconds} s ago")
    # 7. nonce: the one this login issued. A login is used once (step 1), so a nonce is accepted once: a
    # token replayed into a new login carries the old nonce and stops here.
    if not secrets.compare_digest(str(claims["nonce"]), login.nonce):
        raise refuse("nonce", "the id_token's nonce is not the one this login issued (a replayed token)")
    # 8. deployment
    deployment = claims.get(DEPLOYMENT_ID)
    if not isinstance(deployment, str) or deployment not in deployments(platform):
        raise refuse("deployment_id", f"deployment {deployment!r} of {platform.issuer} is not registered here; a "
                     "platform admin adds it to the LMS registration", status=403)
    # 9. message type and version
    message_type = claims.get(MESSAGE_TYPE)
    if message_type not in MESSAGE_TYPES:
        raise refuse("message_type", f"message type {message_type!r} is not one this tool takes "
                     f"({', '.join(MESSAGE_TYPES)})", status=400)
    if claims.get(VERSION) != "1.3.0":
        raise refuse("version", f"LTI version {claims.get(VERSION)!r} is not supported; this tool speaks 1.3.0",
                     status=400)
    # 10. target_link_uri
    target = claims.get(TARGET_LINK_URI)
    if target != login.target_link_uri or not isinstance(target, str) or not target_allowed(settings, base, target):
        raise refuse("target_link_uri", f"the id_token's target_link_uri {target!r} is not the one the login was "
                     "started for, or not a launch URL of this tool", status=403)
    # 11. the message's claims
    roles = claims.get(ROLES)
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise refuse("roles", "the id_token's roles claim must be a list of role URIs", status=400)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise refuse("sub", "anonymous launches are not supported: the id_token needs a sub", status=400)
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise refuse("resource_link", "a resource-link launch needs the resource_link claim with an id", 400)
    else:
        dl = claims.get(DL_SETTINGS)
        if not isinstance(dl, dict) or not isinstance(dl.get("deep_link_return_url"), str):
            raise refuse("deep_linking_settings", "a deep-linking launch needs deep_link_return_url", 400)
    if not isinstance(claims.get(CONTEXT), dict) or not claims[CONTEXT].get("id"):
        raise refuse("context", "the launch must come from a course (the context claim with an id)", 400)
    return Launch(platform=platform, claims=claims, message_type=message_type, deployment_id=deployment,
                  roles=list(roles))


def purge_expired(db: Session) -> None:
    """Drop logins and deep-linking choices expired an hour ago (an expired one is refused either way; the
    rows are kept that long so a late replay is told it was replayed)."""
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    db.execute(delete(LtiLogin).where(LtiLogin.expires_at < cutoff))
    db.execute(delete(LtiDeepLink).where(LtiDeepLink.expires_at < cutoff))
    db.commit()
