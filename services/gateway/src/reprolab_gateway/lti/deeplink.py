"""Deep Linking: an instructor picks an assignment or environment in the LMS's "add content" dialog; the
tool answers with a signed ``LtiDeepLinkingResponse`` JWT posted (by the browser) to the LMS's return URL.

The request waits server-side under a random secret that the picker page carries (its sha256 is the
row's key), so the choice needs no session cookie inside the LMS frame and is used once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from .flows import ASSIGNMENT_PARAM, ENVIRONMENT_PARAM
from .grades import SCORE_MAXIMUM
from .keys import ToolKey
from .launch import DEPLOYMENT_ID, DL_SETTINGS, MESSAGE_TYPE, VERSION, Launch, LaunchRefused
from .models import LtiContext, LtiDeepLink, LtiPlatform

CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
RESPONSE = "LtiDeepLinkingResponse"
KINDS = ("assignment", "environment")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def begin(db: Session, launch: Launch, context: LtiContext, user_id: str, ttl: int) -> str:
    """Keep the deep-linking request; returns the secret for the picker page."""
    settings = launch.claims[DL_SETTINGS]
    accepts = settings.get("accept_types") or ["ltiResourceLink"]
    if "ltiResourceLink" not in accepts:
        raise LaunchRefused("deep_linking_settings", "the LMS accepts no LTI resource links here "
                            f"(accept_types {accepts}); add Reprolab as an assignment or module item", status=400,
                            platform=launch.platform)
    secret = secrets.token_urlsafe(32)
    db.add(LtiDeepLink(id_hash=_sha256(secret), platform_id=launch.platform.id, context_pk=context.id,
                       deployment_id=launch.deployment_id, return_url=settings["deep_link_return_url"],
                       data=json.dumps(settings["data"]) if "data" in settings else "", user_id=user_id,
                       expires_at=datetime.now(UTC) + timedelta(seconds=ttl)))
    db.commit()
    return secret


def take(db: Session, secret: str) -> LtiDeepLink | None:
    """The waiting request for ``secret``, used up now; None when unknown, used or expired."""
    key = _sha256(secret)
    taken = db.execute(update(LtiDeepLink).where(LtiDeepLink.id_hash == key, LtiDeepLink.used_at.is_(None),
                                                 LtiDeepLink.expires_at > datetime.now(UTC))
                       .values(used_at=datetime.now(UTC))).rowcount
    db.commit()
    return db.get(LtiDeepLink, key) if taken == 1 else None


def content_item(kind: str, name: str, title: str, launch_url: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "ltiResourceLink", "title": title or name, "url": launch_url}
    if kind == "assignment":
        item["custom"] = {ASSIGNMENT_PARAM: name}
        # the LMS makes the gradebook column now; grades later find it by resourceId
        item["lineItem"] = {"scoreMaximum": SCORE_MAXIMUM, "label": title or name, "resourceId": name,
                            "tag": "reprolab"}
    else:
        item["custom"] = {ENVIRONMENT_PARAM: name}
    return item


def response_jwt(key: ToolKey, platform: LtiPlatform, link: LtiDeepLink, items: list[dict[str, Any]]) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": platform.client_id, "aud": platform.issuer, "iat": now, "exp": now + 300,
        "nonce": secrets.token_urlsafe(16), DEPLOYMENT_ID: link.deployment_id, MESSAGE_TYPE: RESPONSE,
        VERSION: "1.3.0", CONTENT_ITEMS: items,
    }
    if link.data:
        claims[DATA] = json.loads(link.data)
    return key.sign(claims)
