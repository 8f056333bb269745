"""The portal's account pages: follow an invite link (register or sign in, then join), register when
registration is open, set a password through an admin's reset link. Each form carries the CSRF value;
a successful registration or reset signs the browser in (``start_session``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from reprolab_common.errors import ProblemError

from ..api.deps import SessionDep, SettingsDep
from ..auth import accounts, invites
from ..auth.sessions import end_user_sessions, start_session
from ..core.security import csrf_matches
from .router import PortalUser, _page

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
