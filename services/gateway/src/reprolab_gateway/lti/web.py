"""The LTI protocol's endpoints and pages (outside /api/v1: the LMS and the browser call them).

``/lti/login`` (OIDC login initiation, GET or POST), ``/lti/launch`` (the id_token, form_post),
``/lti/deep-link`` (the instructor's pick), ``/lti/jwks`` (the tool's public key), ``/lti/canvas.json``
(Canvas's developer key configuration). Pages here may be framed by the registered LMSs only, and every
refusal is a page with a 4xx status that names the failed check, and an ``lti.launch_refused`` entry.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from reprolab_common.errors import ProblemError
from sqlalchemy.orm import Session

from ..api.deps import SessionDep, SettingsDep
from ..auth.sessions import set_cookie, start_session
from ..clients import RegistryClient
from ..core.security import csrf_matches
from ..models import User
from ..web.router import PortalUser, templates
from ..web.router import _page as portal_page
from . import audit, deeplink, flows
from .keys import tool_jwks, tool_key
from .launch import (
    BROWSER_COOKIE,
    DEEP_LINKING_REQUEST,
    MESSAGE_TYPE,
    LaunchRefused,
    start_login,
    tool_base,
    validate_launch,
)
from .models import LtiContext, LtiPlatform
from .platform_keys import PlatformKeys
from .platforms import deployments, list_all, register

log = logging.getLogger(__name__)

router = APIRouter(prefix="/lti", include_in_schema=False)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _lms_origins(db: Session, platform: LtiPlatform | None = None) -> list[str]:
    rows = [platform] if platform is not None else list_all(db)
    return sorted({o for p in rows for o in (_origin(p.issuer), _origin(p.auth_login_url)) if o})


def _csp(origins: list[str], form_to: str = "") -> str:
    ancestors = " ".join(["'self'", *origins])
    form_action = " ".join(["'self'", *([form_to] if form_to else [])])
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"form-action {form_action}; frame-ancestors {ancestors}; base-uri 'none'")


def _page(request: Request, template: str, *, origins: list[str], status: int = 200, form_to: str = "",
          **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, context, status_code=status,
        headers={"Content-Security-Policy": _csp(origins, form_to), "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


def _keys(request: Request) -> PlatformKeys:
    keys = getattr(request.app.state, "lti_keys", None)
    if keys is None:
        lti = request.app.state.settings.lti
        keys = request.app.state.lti_keys = PlatformKeys(timeout=lti.http_timeout_seconds,
                                                         min_interval=lti.jwks_refetch_seconds)
    return keys


def _base(request: Request) -> str:
    return tool_base(request.app.state.settings.lti, str(request.base_url))


def _refused(request: Request, db: Session, exc: LaunchRefused) -> HTMLResponse:
    """The refusal page, and ``lti.launch_refused`` in the accounts log (never the token itself)."""
    claims = exc.claims or {}
    platform = exc.platform

    def text(value: Any) -> str:
        return (value if isinstance(value, str) else "" if value is None else str(value))[:300]

    try:
        db.rollback()
        audit.record(db, request, type="launch_refused", subject="lti/launches", outcome="refused",
                     reason=f"{exc.check}: {exc.reason}"[:500],
                     issuer=platform.issuer if platform else text(claims.get("iss")),
                     client_id=platform.client_id if platform else "",
                     deployment_id=text(claims.get("https://purl.imsglobal.org/spec/lti/claim/deployment_id")),
                     lms_subject=text(claims.get("sub")), message_type=text(claims.get(MESSAGE_TYPE)))
    except Exception:  # the page must still say why; the log's outage is logged here
        log.exception("could not record a refused LTI launch")
    log.info("LTI launch refused: %s: %s", exc.check, exc.reason)
    return _page(request, "lti_message.html", origins=_lms_origins(db, platform), status=exc.status,
                 heading="Reprolab could not open", check=exc.check, message=exc.reason)


def _set_browser_cookie(response: Response, value: str) -> None:
    # SameSite=None: the launch is a cross-site POST from the LMS, inside its frame
    # Partitioned too (CHIPS): a browser that blocks third-party cookies keeps that copy under the LMS's site
    set_cookie(response, BROWSER_COOKIE, value, max_age=30 * 86400, httponly=True, secure=True, samesite="none",
               path="/lti/", partitioned=True)
    response.set_cookie(BROWSER_COOKIE, value, max_age=30 * 86400, httponly=True, secure=True, samesite="none",
                        path="/lti/")


@router.api_route("/login", methods=["GET", "POST"], response_class=HTMLResponse)
async def login(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """OIDC third-party login initiation from the LMS."""
    params: dict[str, str] = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params |= {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        redirect = start_login(db, settings.lti, base=_base(request), params=params,
                               browser_cookie=request.cookies.get(BROWSER_COOKIE, ""))
    except LaunchRefused as exc:
        return _refused(request, db, exc)
    response = RedirectResponse(redirect.url, status_code=302)
    if redirect.browser_cookie:
        _set_browser_cookie(response, redirect.browser_cookie)
    return response


@router.post("/launch", response_class=HTMLResponse)
async def launch(request: Request, db: SessionDep, settings: SettingsDep,
                 id_token: Annotated[str, Form()] = "", state: Annotated[str, Form()] = "") -> Response:
    """The resource-link or deep-linking launch: every check, then sign-in and the course's workspace."""
    try:
        checked = await validate_launch(db, settings.lti, _keys(request), base=_base(request), id_token=id_token,
                                        state=state, browser_cookie=request.cookies.get(BROWSER_COOKIE, ""))
        if checked.message_type == DEEP_LINKING_REQUEST and \
                flows.workspace_role(checked.roles) != flows.INSTRUCTOR:
            raise LaunchRefused("roles", "only an instructor can add Reprolab content to a course", status=403,
                                platform=checked.platform, claims=checked.claims)
        user = flows.provision_user(db, request.app, checked.platform, checked.subject, checked.claims)
        course = await flows.join_course(db, request.app, checked, user, timeout=settings.nats_timeout_seconds)
    except LaunchRefused as exc:
        return _refused(request, db, exc)
    except ProblemError as exc:  # the registry refused or is away: still a page, not JSON in the LMS frame
        return _refused(request, db, LaunchRefused("workspace", exc.to_dict()["detail"], status=exc.status))
    platform, context = checked.platform, course.context
    audit.record(db, request, type="launched", subject=f"lti/courses/{context.context_id}", actor=audit.actor_of(user),
                 workspace=context.workspace, outcome="accepted", issuer=platform.issuer,
                 client_id=platform.client_id, deployment_id=checked.deployment_id, context_id=context.context_id,
                 lms_subject=checked.subject, username=user.username, message_type=checked.message_type,
                 role=course.role, assignment=str(checked.custom.get(flows.ASSIGNMENT_PARAM) or ""))
    origins = _lms_origins(db, platform)
    if checked.message_type == DEEP_LINKING_REQUEST:
        response = await _picker(request, db, checked, context, user, origins, settings.nats_timeout_seconds,
                                 settings.lti.login_ttl_seconds)
    else:
        response = _page(request, "lti_launched.html", origins=origins, title=context.title or context.workspace,
                         username=user.username, role=course.role, workspace=context.workspace, created=course.created,
                         assignment=str(checked.custom.get(flows.ASSIGNMENT_PARAM) or ""),
                         environment=str(checked.custom.get(flows.ENVIRONMENT_PARAM) or ""))
    start_session(db, user, response, request, method="lti", lms=True, issuer=platform.issuer,
                  external_subject=checked.subject)
    return response


async def _picker(request: Request, db: Session, checked, context: LtiContext, user: User, origins: list[str],
                  timeout: float, ttl: int) -> Response:
    secret = deeplink.begin(db, checked, context, user.id, ttl)
    registry = RegistryClient(request.app.state.nats, audit.actor_of(user), timeout)
    assignments = (await registry.list_assignments(context.workspace)).items
    environments = (await registry.list_environments(context.workspace)).items
    return _page(request, "lti_deep_link.html", origins=origins, secret=secret, course=context.title,
                 assignments=assignments, environments=environments)


@router.post("/deep-link", response_class=HTMLResponse)
async def deep_link(request: Request, db: SessionDep, dl: Annotated[str, Form()] = "",
                    choice: Annotated[str, Form()] = "") -> Response:
    """The instructor's pick → the signed LtiDeepLinkingResponse, posted back to the LMS by the browser."""
    kind, _, name = choice.partition(":")
    if kind not in deeplink.KINDS or not name:
        return _page(request, "lti_message.html", origins=_lms_origins(db), status=400, heading="Nothing picked",
                     check="choice", message="Pick an assignment or an environment, then submit again.")
    link = deeplink.take(db, dl)
    if link is None:
        return _page(request, "lti_message.html", origins=_lms_origins(db), status=400, heading="This page expired",
                     check="deep_link", message="This choice was made already or waited too long; open the "
                     "LMS's \"add content\" dialog again.")
    platform = db.get(LtiPlatform, link.platform_id)
    context = db.get(LtiContext, link.context_pk)
    user = db.get(User, link.user_id)
    assert platform is not None and context is not None and user is not None
    registry = RegistryClient(request.app.state.nats, audit.actor_of(user),
                              request.app.state.settings.nats_timeout_seconds)
    try:  # it must exist, and the instructor must see it
        if kind == "assignment":
            title = (await registry.get_assignment(context.workspace, name)).title
        else:
            title = (await registry.get_environment(context.workspace, name)).name
    except ProblemError as exc:
        return _page(request, "lti_message.html", origins=_lms_origins(db, platform), status=exc.status,
                     heading="Cannot add that", check="choice", message=exc.to_dict()["detail"])
    item = deeplink.content_item(kind, name, title, f"{_base(request)}/lti/launch")
    token = deeplink.response_jwt(tool_key(db), platform, link, [item])
    audit.record(db, request, type="linked", subject=f"lti/courses/{context.context_id}/{kind}s/{name}",
                 actor=audit.actor_of(user), workspace=context.workspace, outcome="placed", issuer=platform.issuer,
                 client_id=platform.client_id, deployment_id=link.deployment_id, context_id=context.context_id,
                 username=user.username, assignment=name if kind == "assignment" else "")
    return _page(request, "lti_deep_link_return.html", origins=_lms_origins(db, platform),
                 form_to=_origin(link.return_url), return_url=link.return_url, jwt=token, title=title)


@router.get("/jwks")
def jwks(db: SessionDep) -> JSONResponse:
    """The tool's public key (the LMS checks our client assertions and deep-link responses with it)."""
    return JSONResponse(tool_jwks(db), headers={"Cache-Control": "max-age=300"})


def tool_values(base: str) -> dict[str, str]:
    return {"login_url": f"{base}/lti/login", "launch_url": f"{base}/lti/launch", "redirect_uri": f"{base}/lti/launch",
            "jwks_url": f"{base}/lti/jwks", "deep_link_url": f"{base}/lti/launch", "domain": urlsplit(base).netloc,
            "canvas_config_url": f"{base}/lti/canvas.json"}


def canvas_config(base: str) -> dict[str, Any]:
    """What Canvas's "LTI key → Enter URL" reads (developer key configuration, LTI 1.3)."""
    values = tool_values(base)
    placement = {"message_type": "LtiDeepLinkingRequest", "target_link_uri": values["launch_url"],
                 "text": "Reprolab", "selection_width": 800, "selection_height": 600}
    return {
        "title": "Reprolab",
        "description": "Reproducible environments, assignments and grades for data-science courses.",
        "oidc_initiation_url": values["login_url"],
        "target_link_uri": values["launch_url"],
        "public_jwk_url": values["jwks_url"],
        "scopes": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        ],
        "extensions": [{
            "platform": "canvas.instructure.com", "privacy_level": "public", "domain": values["domain"],
            "settings": {"placements": [
                {**placement, "placement": "assignment_selection"},
                {**placement, "placement": "link_selection"},
                {"placement": "course_navigation", "message_type": "LtiResourceLinkRequest",
                 "target_link_uri": values["launch_url"], "text": "Reprolab"},
            ]},
        }],
        "custom_fields": {},
    }


@router.get("/canvas.json")
def canvas_json(request: Request) -> JSONResponse:
    return JSONResponse(canvas_config(_base(request)))


# --- the platform admin's page in the portal -----------------------------------------------------------

def _setup_page(request: Request, db: Session, user: User, *, status: int = 200, **context: Any) -> Response:
    rows = [{"title": p.title, "issuer": p.issuer, "client_id": p.client_id, "deployments": deployments(p)}
            for p in list_all(db)]
    return portal_page(request, "lti_setup.html", user, status=status, page="lti", tool=tool_values(_base(request)),
                       platforms=rows, **context)


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, db: SessionDep, user: PortalUser) -> Response:
    """Platform admins: the values to give the LMS, the registered LMSs, and a form to register one."""
    if user is None:
        return RedirectResponse("/?next=/lti/setup", status_code=303)
    if not user.platform_admin:
        return _setup_denied(request)
    return _setup_page(request, db, user)


@router.post("/setup", response_class=HTMLResponse)
def setup_register(request: Request, db: SessionDep, user: PortalUser, csrf: Annotated[str, Form()] = "",
                   title: Annotated[str, Form()] = "", issuer: Annotated[str, Form()] = "",
                   client_id: Annotated[str, Form()] = "", auth_login_url: Annotated[str, Form()] = "",
                   token_url: Annotated[str, Form()] = "", jwks_url: Annotated[str, Form()] = "",
                   deployment_ids: Annotated[str, Form()] = "") -> Response:
    if user is None:
        return RedirectResponse("/?next=/lti/setup", status_code=303)
    if not user.platform_admin:
        return _setup_denied(request)
    if not csrf_matches(request, csrf):
        return _setup_page(request, db, user, status=400, error="The form expired; reload the page and try again.")
    try:
        row = register(db, title=title, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                       token_url=token_url, jwks_url=jwks_url,
                       deployment_ids=[d.strip() for d in deployment_ids.split(",") if d.strip()])
    except ProblemError as exc:
        return _setup_page(request, db, user, status=exc.status, error=exc.to_dict()["detail"])
    audit.record(db, request, type="platform_registered", subject=f"lti/platforms/{row.id}",
                 actor=audit.actor_of(user), issuer=row.issuer, client_id=row.client_id)
    return _setup_page(request, db, user, status=201, notice=f"Registered {row.title} ({row.issuer}).")


def _setup_denied(request: Request) -> Response:
    return HTMLResponse("Only a platform admin can register LMSs.", status_code=403)
