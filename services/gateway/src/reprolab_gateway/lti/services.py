"""LTI Advantage service clients: the access token (client credentials with a signed client assertion),
Assignment and Grade Services (line items, scores) and Names and Role Provisioning (paged memberships).

Every call has the settings' timeout; a failure raises ``ServiceFailed`` with a message fit for the
grade's status column and the activity log (never a token).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from .keys import ToolKey, client_assertion
from .models import LtiPlatform

AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_MEMBERSHIPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ServiceFailed(Exception):
    """A call to the LMS failed: the message says which and how (status, timeout), without secrets;
    ``status`` is the LMS's HTTP status when it answered; ``retry`` whether trying again may help."""

    def __init__(self, message: str, *, status: int = 0, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


def with_path_suffix(url: str, suffix: str) -> str:
    """``.../line_items/7?type_id=3`` + ``/scores`` → ``.../line_items/7/scores?type_id=3``: the suffix goes on
    the path, the query string stays (naive appending breaks on LMSs whose line-item URLs carry one)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, parts.fragment))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def next_link(header: str) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 Link header."""
    for part in header.split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        url = section[0].strip()
        if url.startswith("<") and url.endswith(">") and any(
                p.strip().replace('"', "") in ("rel=next",) for p in section[1:]):
            return url[1:-1]
    return None


@dataclass
class _Token:
    value: str
    expires: float


class LtiServices:
    """One per app: caches access tokens per (registration, scopes) until shortly before they expire."""

    def __init__(self, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self._transport = transport
        self._tokens: dict[tuple[str, str], _Token] = {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, transport=self._transport, follow_redirects=False)

    async def token(self, platform: LtiPlatform, key: ToolKey, scopes: list[str]) -> str:
        scope = " ".join(sorted(scopes))
        cached = self._tokens.get((platform.id, scope))
        if cached is not None and cached.expires > time.monotonic():
            return cached.value
        form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "scope": scope,
                "client_assertion": client_assertion(key, client_id=platform.client_id, token_url=platform.token_url)}
        doc = await self._call("POST", platform.token_url, what="the LMS's token endpoint", data=form)
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise ServiceFailed("the LMS's token endpoint answered without an access_token")
        ttl = float(doc.get("expires_in") or 3600)
        self._tokens[(platform.id, scope)] = _Token(token, time.monotonic() + max(ttl - 30, 1))
        return token

    def forget(self, platform: LtiPlatform) -> None:
        for k in [k for k in self._tokens if k[0] == platform.id]:
            del self._tokens[k]

    async def _call(self, method: str, url: str, *, what: str, token: str | None = None, accept: str | None = None,
                    content_type: str | None = None, json_body: Any = None, data: Any = None,
                    want_response: bool = False) -> Any:
        headers = {"Accept": accept or "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self._client() as client:
                if json_body is not None:
                    response = await client.request(method, url, headers=headers, content=json.dumps(json_body))
                else:
                    response = await client.request(method, url, headers=headers, data=data)
        except httpx.TimeoutException as exc:
            raise ServiceFailed(f"{what} did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ServiceFailed(f"{what} could not be reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ServiceFailed(f"{what} answered {response.status_code} {response.reason_phrase}",
                                status=response.status_code,
                                retry=response.status_code in (401, 408, 429) or response.status_code >= 500)
        if want_response:
            return response
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceFailed(f"{what} answered with something that is not JSON") from exc

    # --- Assignment and Grade Services ---------------------------------------------------------------

    async def find_or_create_line_item(self, platform: LtiPlatform, key: ToolKey, lineitems_url: str, *,
                                       resource_id: str, label: str, score_maximum: float) -> str:
        """The URL of the line item for ``resource_id`` (our assignment name), created when missing."""
        token = await self.token(platform, key, [AGS_LINEITEM, AGS_SCORE])
        items = await self._call("GET", with_query(lineitems_url, resource_id=resource_id),
                                 what="the LMS's line items", token=token, accept=LINEITEMS_TYPE)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("resourceId") == resource_id and item.get("id"):
                return str(item["id"])
        made = await self._call("POST", lineitems_url, what="creating the line item", token=token,
                                accept=LINEITEM_TYPE, content_type=LINEITEM_TYPE,
                                json_body={"scoreMaximum": score_maximum, "label": label, "resourceId": resource_id,
                                           "tag": "reprolab"})
        if not isinstance(made, dict) or not made.get("id"):
            raise ServiceFailed("the LMS created a line item but did not say its URL (id)")
        return str(made["id"])

    async def post_score(self, platform: LtiPlatform, key: ToolKey, line_item_url: str, *, user_sub: str,
                         score: float, score_maximum: float, comment: str = "") -> None:
        token = await self.token(platform, key, [AGS_LINEITEM, AGS_SCORE])
        body = {"userId": user_sub, "scoreGiven": score, "scoreMaximum": score_maximum,
                "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
        if comment:
            body["comment"] = comment
        await self._call("POST", with_path_suffix(line_item_url, "/scores"), what="posting the score", token=token,
                         content_type=SCORE_TYPE, json_body=body)

    # --- Names and Role Provisioning -----------------------------------------------------------------

    async def memberships(self, platform: LtiPlatform, key: ToolKey, url: str, *, max_pages: int = 100
                          ) -> list[dict[str, Any]]:
        """Every member of the course, following the ``rel="next"`` Link headers page by page."""
        token = await self.token(platform, key, [NRPS_MEMBERSHIPS])
        members: list[dict[str, Any]] = []
        page: str | None = url
        for _ in range(max_pages):
            if page is None:
                break
            response = await self._call("GET", page, what="the LMS's roster", token=token, accept=MEMBERSHIPS_TYPE,
                                        want_response=True)
            try:
                doc = response.json()
            except ValueError as exc:
                raise ServiceFailed("the LMS's roster is not JSON") from exc
            members.extend(m for m in doc.get("members", []) if isinstance(m, dict))
            page = next_link(response.headers.get("link", ""))
        return members
