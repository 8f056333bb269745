"""The web portal: server-rendered pages (Jinja2) that call the REST API from a small script.

Why this shape: the pages are templates plus one hand-written vanilla JavaScript file, with no
build step and no npm tree to keep current, so the portal works offline from the gateway alone and
a browser test sees exactly what ships. Every piece of data is fetched by the page from
``/api/v1/...`` with the session cookie, so the portal has precisely the API's authentication, roles
and error messages; the routes here only render page shells and manage the session cookie.

Sign-in: a username and password (or single sign-on, or an API token pasted for scripts' users) starts
a server-side session (``auth/sessions.py``) whose random id is kept in an HttpOnly, SameSite=Strict
cookie; signing out revokes it. Forms posted here carry the double-submit CSRF value, so another site
cannot sign a browser in or out either.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from anyio import from_thread
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..api.deps import SessionDep, SettingsDep, authenticate, session_user
from ..auth.directory import grant_group_roles
from ..auth.ldap import ldap_signin
from ..auth.sessions import clear_session_cookies, client_address, end_session, is_https, start_session
from ..auth.signin import SignInRefused, password_signin, record_failure
from ..core.security import CSRF_COOKIE, SESSION_COOKIE, csrf_matches, hash_token, looks_like_token, new_csrf_token
from ..core.throttle import TooManyAttempts, check_token_attempt, token_failed
from ..models import User

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Pages load only what the gateway serves: no CDN, no inline script, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SESSION_DAYS = 7  # the CSRF cookie of a page seen before sign-in
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

router = APIRouter(include_in_schema=False)


def _session_user(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    return session_user(session, settings, request.cookies.get(SESSION_COOKIE, ""))


PortalUser = Annotated[User | None, Depends(_session_user)]


def _secure(request: Request) -> bool:
    return is_https(request)


def _set_csrf(response: Response, request: Request, value: str) -> None:
    # readable by the page's script on purpose (double submit); useless to another origin
    response.set_cookie(CSRF_COOKIE, value, max_age=SESSION_DAYS * 86400, samesite="strict",
                        secure=_secure(request), httponly=False, path="/")


def _page(request: Request, template: str, user: User | None, status: int = 200, **context: object) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = templates.TemplateResponse(
        request, template, {"user": user, "csrf": csrf, **context}, status_code=status,
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                 "Cache-Control": "no-store"})
    if request.cookies.get(CSRF_COOKIE) != csrf:
        _set_csrf(response, request, csrf)
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/?next={quote(request.url.path)}", status_code=303)


def _safe_next(value: str) -> str:
    # only a path on this site: never "//other.example" or "https://..."
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _login_page(request: Request, settings, *, status: int = 200, next: str = "", error: str = "",
                username: str = "", headers: dict[str, str] | None = None) -> Response:
    response = _page(request, "login.html", None, status=status, next=_safe_next(next) if next else "",
                     error=error, username=username, registration=settings.registration,
                     oidc_label=settings.oidc_label if settings.oidc_issuer else "",
                     ldap=bool(settings.ldap_url))
    response.headers.update(headers or {})
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: PortalUser, settings: SettingsDep, next: str = "") -> Response:
    if user is None:
        return _login_page(request, settings, next=next)
    return _page(request, "dashboard.html", user, page="dashboard")


@router.get("/login", include_in_schema=False)
def login_page(next: str = "") -> Response:
    """People type /login: the sign-in form lives at / (it shows the portal once signed in)."""
    target = "/" + (f"?{urlencode({'next': next})}" if next.startswith("/") and not next.startswith("//") else "")
    return RedirectResponse(target, status_code=303)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str, Form()] = "",
          username: Annotated[str, Form(max_length=200)] = "", password: Annotated[str, Form()] = "",
          csrf: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    """Sign in with a username and password (or, with ``token``, an API token); either starts a session."""
    if not csrf_matches(request, csrf):
        return _login_page(request, settings, status=400, next=next,
                           error="The sign-in form expired (or cookies are blocked). Reload the page and try again.")
    response = RedirectResponse(_safe_next(next), status_code=303)
    if token or not username:
        return _token_login(request, session, settings, token.strip(), next, response)
    person = None
    try:
        if settings.ldap_url and not _has_local_password(session, username):
            user = ldap_signin(request, session, settings, username=username, password=password)
            person = request.state.sso_person
        else:
            user = password_signin(session, request.app.state.signin_throttle, settings, username=username,
                                   password=password, address=client_address(request))
    except SignInRefused as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
        return _login_page(request, settings, status=refused.status, next=next, error=refused.message,
                           username=username, headers=headers)
    if person is None:
        start_session(session, user, response, request, method="password")
        return response
    start_session(session, user, response, request, method="ldap", issuer=person.issuer,
                  external_subject=person.subject)
    # this route runs in a worker thread; the registry is asked from the event loop
    from_thread.run(partial(grant_group_roles, request, user, person.groups, settings.ldap_group_roles,
                            method="ldap"))
    return response


def _has_local_password(session, username: str) -> bool:
    from ..crud import get_user_by_username

    user = get_user_by_username(session, username.strip())
    return user is not None and bool(user.password_hash)


def _token_login(request: Request, session, settings, token: str, next: str, response: Response) -> Response:
    if not looks_like_token(token):
        return _login_page(request, settings, status=401, next=next,
                           error="That is not an API token: tokens start with 'rpl_'. Paste the whole token.")
    try:
        check_token_attempt(request, settings, hash_token(token))
    except TooManyAttempts as refused:
        return _login_page(request, settings, status=429, next=next, error=refused.detail,
                           headers=refused.headers)
    user = authenticate(session, settings, token)
    if user is None:
        record_failure(session, user=None, method="token", address=client_address(request),
                       reason="unknown or revoked API token")
        try:
            token_failed(request, settings, hash_token(token))
        except TooManyAttempts as refused:
            return _login_page(request, settings, status=429, next=next, error=refused.detail,
                               headers=refused.headers)
        return _login_page(request, settings, status=401, next=next,
                           error="This API token is unknown or has been revoked. Ask an admin for a new one.")
    start_session(session, user, response, request, method="token")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    if not csrf_matches(request, csrf):
        return RedirectResponse("/", status_code=303)  # not from our page: change nothing
    end_session(session, request, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/", status_code=303)
    clear_session_cookies(response)
    return response


# --- pages: a shell each; the script fills it from the API -------------------------------------------

PAGES = {
    "workspace": ("/w/{ws}", "workspace.html"),
    "new_env": ("/w/{ws}/new-environment", "env_new.html"),
    "environment": ("/w/{ws}/env/{env}", "environment.html"),
    "runs": ("/w/{ws}/runs", "runs.html"),
    "run": ("/w/{ws}/runs/{run_id}", "run.html"),
    "assignment": ("/w/{ws}/assignments/{name}", "assignment.html"),
    "activity": ("/w/{ws}/activity", "activity.html"),
    "people": ("/w/{ws}/people", "people.html"),
    "package_indexes": ("/w/{ws}/package-indexes", "package_indexes.html"),
    "registries": ("/w/{ws}/registries", "registries.html"),
    "sessions": ("/w/{ws}/sessions", "sessions.html"),
    "models": ("/w/{ws}/models", "models.html"),
    "model": ("/w/{ws}/models/{model}", "model.html"),
    "users": ("/admin/users", "users.html"),
}


def _register(name: str, path: str, template: str) -> None:
    def page(request: Request, user: PortalUser) -> Response:
        if user is None:
            return _login_redirect(request)
        return _page(request, template, user, page=name, **request.path_params)

    page.__name__ = f"page_{name}"
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse, name=f"page_{name}")


for _name, (_path, _template) in PAGES.items():
    _register(_name, _path, _template)


@router.get("/me/credentials", response_class=HTMLResponse)
def credentials_page(request: Request, user: PortalUser) -> Response:
    if user is None:
        return _login_redirect(request)
    # keep the workspace the user came from in the navigation (only a well-formed slug)
    ws = request.query_params.get("workspace", "")
    return _page(request, "credentials.html", user, page="credentials", ws=ws if _SLUG.match(ws) else "")


@router.get("/me/account", response_class=HTMLResponse)
def account_page(request: Request, user: PortalUser) -> Response:
    if user is None:
        return _login_redirect(request)
    return _page(request, "account.html", user, page="account")


# the account pages (invites, registration, reset links) live in their own module
from .accounts import router as _accounts_router  # noqa: E402

router.include_router(_accounts_router)
