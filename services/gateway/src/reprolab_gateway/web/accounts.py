"""The portal's account pages: follow an invite link (register or sign in, then join), register when
registration is open, set a password through an admin's reset link. Each form carries the CSRF value;
a successful registration or reset signs the browser in (``start_session``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from reprolab_common.errors import ProblemError

from ..api.deps import SessionDep, SettingsDep
from ..auth import accounts, invites, oidc
from ..auth.directory import grant_group_roles, provision
from ..auth.sessions import client_address, end_user_sessions, is_https, start_session
from ..auth.signin import record_failure
from ..core.security import csrf_matches
from .router import PortalUser, _login_page, _page, _safe_next

router = APIRouter(include_in_schema=False)

EXPIRED_FORM = "The form expired (or cookies are blocked). Reload the page and try again."


def _invite_page(request: Request, user, token: str, *, status: int = 200, error: str = "", invite=None,
                 settings=None, **context) -> Response:
    return _page(request, "invite.html", user, status=status, error=error, invite=invite, token=token,
                 registration=settings.registration if settings else "off", **context)


@router.get("/invite/{token}", response_class=HTMLResponse)
def invite_page(token: str, request: Request, user: PortalUser, session: SessionDep, settings: SettingsDep
                ) -> Response:
    try:
        row = invites.find_invite(session, token)
    except ProblemError as exc:
        return _invite_page(request, user, token, status=exc.status, error=exc.detail, settings=settings)
    return _invite_page(request, user, token, invite=row, settings=settings, next=f"/invite/{token}")


@router.post("/invite/{token}", response_class=HTMLResponse)
async def join(token: str, request: Request, user: PortalUser, settings: SettingsDep,
               csrf: Annotated[str, Form()] = "") -> Response:
    """A signed-in person joins with the invite."""
    if user is None:
        return RedirectResponse(f"/invite/{token}", status_code=303)
    if not csrf_matches(request, csrf):
        return _invite_page(request, user, token, status=400, error=EXPIRED_FORM, settings=settings)
    try:
        row = await invites.accept_invite(request, token=token, user=user)
    except ProblemError as exc:
        return _invite_page(request, user, token, status=exc.status, error=exc.detail, settings=settings)
    return RedirectResponse(f"/w/{row.workspace}", status_code=303)


@router.post("/invite/{token}/register", response_class=HTMLResponse)
async def register_with_invite(token: str, request: Request, session: SessionDep, settings: SettingsDep,
                               username: Annotated[str, Form(max_length=200)] = "",
                               password: Annotated[str, Form(max_length=1024)] = "",
                               display_name: Annotated[str, Form(max_length=200)] = "",
                               email: Annotated[str, Form(max_length=320)] = "",
                               csrf: Annotated[str, Form()] = "") -> Response:
    """A new person registers with the invite, joins, and is signed in."""
    def again(status: int, error: str, invite=None) -> Response:
        return _invite_page(request, None, token, status=status, error=error, invite=invite, settings=settings,
                            username=username, display_name=display_name, email=email, next=f"/invite/{token}")

    if not csrf_matches(request, csrf):
        return again(400, EXPIRED_FORM)
    if settings.registration == "off":
        return again(403, "Registration is off here: ask an admin for an account, then sign in and follow the "
                     "link again.")
    row = None
    try:
        row = await run_in_threadpool(invites.find_invite, session, token)
        user = await run_in_threadpool(accounts.register, session, request, settings, username=username,
                                       password=password, display_name=display_name, email=email,
                                       method="invite", ref=row.id)
    except ProblemError as exc:
        return again(exc.status, exc.detail, invite=row)
    try:
        row = await invites.accept_invite(request, token=token, user=user)
        response: Response = RedirectResponse(f"/w/{row.workspace}", status_code=303)
    except ProblemError as exc:  # the account exists: sign it in and say what went wrong
        response = _invite_page(request, user, token, status=exc.status, settings=settings,
                                error=f"Your account was created, but joining failed: {exc.detail}")
    await run_in_threadpool(start_session, session, user, response, request, method="invite")
    return response


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, user: PortalUser, settings: SettingsDep) -> Response:
    if user is not None:
        return RedirectResponse("/", status_code=303)
    status = 200 if settings.registration == "open" else 403
    return _page(request, "register.html", None, status=status, registration=settings.registration)


@router.post("/register", response_class=HTMLResponse)
def register(request: Request, session: SessionDep, settings: SettingsDep,
             username: Annotated[str, Form(max_length=200)] = "",
             password: Annotated[str, Form(max_length=1024)] = "",
             display_name: Annotated[str, Form(max_length=200)] = "",
             email: Annotated[str, Form(max_length=320)] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """Open registration: anyone may create an account (when REPROLAB_GATEWAY_REGISTRATION=open)."""
    def again(status: int, error: str) -> Response:
        return _page(request, "register.html", None, status=status, error=error, registration=settings.registration,
                     username=username, display_name=display_name, email=email)

    if settings.registration != "open":
        return again(403, "Registration is not open here: follow an invite link, or ask an admin for an account.")
    if not csrf_matches(request, csrf):
        return again(400, EXPIRED_FORM)
    try:
        user = accounts.register(session, request, settings, username=username, password=password,
                                 display_name=display_name, email=email)
    except ProblemError as exc:
        return again(exc.status, exc.detail)
    response = RedirectResponse("/", status_code=303)
    start_session(session, user, response, request, method="password")
    return response


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_page(token: str, request: Request, session: SessionDep) -> Response:
    try:
        _, user = accounts.find_reset(session, token)
    except ProblemError as exc:
        return _page(request, "reset.html", None, status=exc.status, error=exc.detail, token=token, for_user="")
    return _page(request, "reset.html", None, token=token, for_user=user.username)


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset(token: str, request: Request, session: SessionDep, settings: SettingsDep,
          password: Annotated[str, Form(max_length=1024)] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """Set a new password with a one-time link; every other session ends and this browser signs in."""
    if not csrf_matches(request, csrf):
        return _page(request, "reset.html", None, status=400, error=EXPIRED_FORM, token=token, for_user="")
    try:
        user = accounts.use_reset(session, request, settings, token=token, password=password)
    except ProblemError as exc:
        try:  # a password that is not good enough: the link still works, show the form again
            for_user = accounts.find_reset(session, token)[1].username
        except ProblemError:
            for_user = ""
        return _page(request, "reset.html", None, status=exc.status, error=exc.detail, token=token,
                     for_user=for_user)
    end_user_sessions(session, request, user=user, by=user, reason="password reset")
    response = RedirectResponse("/", status_code=303)
    start_session(session, user, response, request, method="reset")
    return response


# --- OIDC single sign-on -------------------------------------------------------------------------------

def _signed_in_page(request: Request, next: str) -> Response:
    """A same-site page that moves on to ``next``: the SameSite=Strict session cookie set on a response
    to the provider's (cross-site) redirect would not be sent on a redirect chain that started there."""
    response = _page(request, "signed_in.html", None, next=next)
    response.headers["Refresh"] = f"0; url={next}"
    return response


@router.get("/auth/oidc/login")
def oidc_login(request: Request, settings: SettingsDep, next: str = "") -> Response:
    if not settings.oidc_issuer:
        return RedirectResponse("/", status_code=303)
    key = oidc.new_login_key()
    try:
        url = oidc.provider_of(request.app.state, settings).authorization_url(_redirect_uri(request, settings), key)
    except oidc.OidcError as exc:
        return _login_page(request, settings, status=502, next=next, error=str(exc))
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider's redirect back is a top-level GET from another site
    response.set_cookie(oidc.COOKIE, f"{key}.{quote(_safe_next(next) if next else '/', safe='')}", max_age=600,
                        httponly=True, samesite="lax", secure=is_https(request), path="/auth/oidc")
    return response


def _redirect_uri(request: Request, settings) -> str:
    return f"{accounts.base_url(request, settings)}/auth/oidc/callback"


@router.get("/auth/oidc/callback", response_class=HTMLResponse)
async def oidc_callback(request: Request, session: SessionDep, settings: SettingsDep, code: str = "",
                        state: str = "", error: str = "", error_description: str = "") -> Response:
    cookie = request.cookies.get(oidc.COOKIE, "")
    key, _, next_quoted = cookie.partition(".")
    next = _safe_next(unquote(next_quoted) or "/")
    provider = oidc.provider_of(request.app.state, settings) if settings.oidc_issuer else None

    def refuse(reason: str, status: int = 401) -> Response:
        record_failure(session, user=None, method="oidc", address=client_address(request), reason=reason[:200],
                       issuer=settings.oidc_issuer)
        response = _login_page(request, settings, status=status, next=next, error=f"Single sign-on failed: {reason}")
        response.delete_cookie(oidc.COOKIE, path="/auth/oidc")
        return response

    if provider is None:
        return RedirectResponse("/", status_code=303)
    if error:
        return await run_in_threadpool(refuse, f"the provider answered {error}: {error_description}"[:200])
    if not key:
        return await run_in_threadpool(refuse, "this browser did not start a sign-in (cookies blocked, or it "
                                       "expired after 10 minutes); start again", 400)
    try:
        person = await run_in_threadpool(provider.finish, _redirect_uri(request, settings), key, state=state,
                                         code=code)
        user = await run_in_threadpool(provision, session, request, person, method="oidc")
    except oidc.OidcError as exc:
        return await run_in_threadpool(refuse, str(exc))
    except ProblemError as exc:
        return await run_in_threadpool(refuse, exc.detail, exc.status)
    response = _signed_in_page(request, next)
    await run_in_threadpool(start_session, session, user, response, request, method="oidc",
                            issuer=person.issuer, external_subject=person.subject)
    response.delete_cookie(oidc.COOKIE, path="/auth/oidc")
    await grant_group_roles(request, user, person.groups, settings.oidc_group_roles, method="oidc")
    return response
