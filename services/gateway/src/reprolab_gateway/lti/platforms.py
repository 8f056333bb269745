"""LMS registrations, made by a platform admin: plain functions over a session."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from reprolab_common.errors import Conflict, Invalid, NotFound
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import LtiPlatform

URL_FIELDS = ("auth_login_url", "token_url", "jwks_url")


def deployments(platform: LtiPlatform) -> list[str]:
    return list(json.loads(platform.deployment_ids or "[]"))


def _check(issuer: str, urls: dict[str, str], deployment_ids: list[str]) -> None:
    errors = []
    if not issuer.strip():
        errors.append(("body.issuer", "is required: the LMS's issuer, e.g. https://canvas.instructure.com"))
    for name, value in urls.items():
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            errors.append((f"body.{name}", f"{value!r} is not an http(s) URL"))
    if not deployment_ids or any(not d.strip() for d in deployment_ids):
        errors.append(("body.deployment_ids", "name at least one deployment id (the LMS shows it when the tool is "
                                              "installed), none empty"))
    if errors:
        raise Invalid("the LMS registration is incomplete: " + "; ".join(f"{loc}: {msg}" for loc, msg in errors),
                      errors=errors)


def register(db: Session, *, title: str, issuer: str, client_id: str, auth_login_url: str, token_url: str,
             jwks_url: str, deployment_ids: list[str]) -> LtiPlatform:
    urls = {"auth_login_url": auth_login_url, "token_url": token_url, "jwks_url": jwks_url}
    _check(issuer, urls, deployment_ids)
    row = LtiPlatform(title=title or issuer, issuer=issuer.strip(), client_id=client_id.strip(),
                      deployment_ids=json.dumps(sorted(set(deployment_ids))), **urls)
    db.add(row)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict(f"issuer {issuer!r} with client id {client_id!r} is registered already; "
                       "PATCH it to change its URLs or deployments") from exc
    return row


def update(db: Session, platform_id: str, **changes: object) -> LtiPlatform:
    row = get(db, platform_id)
    for name, value in changes.items():
        if value is None:
            continue
        setattr(row, name, json.dumps(sorted(set(value))) if name == "deployment_ids" else value)  # type: ignore[arg-type]
    _check(row.issuer, {n: getattr(row, n) for n in URL_FIELDS}, deployments(row))
    db.commit()
    return row


def get(db: Session, platform_id: str) -> LtiPlatform:
    row = db.get(LtiPlatform, platform_id)
    if row is None:
        raise NotFound(f"no LMS registration with id {platform_id!r}; GET /api/v1/lti/platforms lists them")
    return row


def find(db: Session, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The registration of ``issuer`` (and ``client_id`` when the LMS sent one; with one registration
    of the issuer it may be left out, as Canvas and Moodle do in some login initiations)."""
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
    if client_id:
        return db.scalar(query.where(LtiPlatform.client_id == client_id))
    rows = list(db.scalars(query.limit(2)))
    return rows[0] if len(rows) == 1 else None


def list_all(db: Session) -> list[LtiPlatform]:
    return list(db.scalars(select(LtiPlatform).order_by(LtiPlatform.created_at)))


def delete(db: Session, platform_id: str) -> None:
    db.delete(get(db, platform_id))
    db.commit()
