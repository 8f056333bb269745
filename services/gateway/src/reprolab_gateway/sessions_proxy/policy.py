"""What the proxy lets through, as pure functions: header filtering, the Origin and CSRF checks, the CSP.

Why the gateway checks Origin and CSRF itself: Jupyter skips its own XSRF check for token-authenticated
requests, and every request the gateway forwards is token-authenticated (the gateway adds the token). So a
cross-site form POST or a websocket opened by another site's page, riding on the portal's cookie, would
reach the kernel unless the gateway refuses it here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from ..core.security import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"transfer-encoding", b"upgrade"})
# Jupyter's double-submit pair: JupyterLab echoes the _xsrf cookie in this header on every change.
JUPYTER_XSRF_COOKIE = "_xsrf"
JUPYTER_XSRF_HEADER = "x-xsrftoken"
# Cookies of the portal never go to the session: the server runs the student's code, and an instructor opening
# a student's session must not hand it their portal session.
PORTAL_COOKIES = frozenset({SESSION_COOKIE, CSRF_COOKIE})

# JupyterLab under /sessions/: its bundles are webpack chunks (eval in some extensions), widgets and output
# renderers use inline styles, blob: workers and data: images; connections (including the kernel websocket)
# go to this origin only. It may be framed by this origin only (the portal does not frame it today).
SESSION_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
               "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
               "media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; frame-src 'self' blob:; "
               "frame-ancestors 'self'; base-uri 'self'; form-action 'self'; object-src 'none'")
SESSION_HEADERS = {"content-security-policy": SESSION_CSP, "x-frame-options": "SAMEORIGIN"}


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased, default ports dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443), ("ws", 80), ("wss", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origins(public_url: str, scheme: str, host_header: str) -> set[str]:
    """The origins a page of this gateway has: the configured public URL, else the address the browser used."""
    if public_url:
        return {origin_of(public_url)}
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return {origin_of(f"{scheme}://{host_header}")} if host_header else set()


def origin_allowed(origin: str | None, allowed: set[str]) -> bool:
    return origin is not None and origin != "null" and origin_of(origin) in allowed


def parse_cookies(header: str) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {k: m.value for k, m in jar.items()}


def csrf_ok(method: str, headers: dict[str, str], cookies: dict[str, str]) -> bool:
    """A change authenticated by the portal's cookie must prove its page: Jupyter's own pair (the X-XSRFToken
    header equal to the _xsrf cookie, as JupyterLab sends on every change) or the portal's pair."""
    if method in SAFE_METHODS:
        return True
    for cookie_name, header_name in ((JUPYTER_XSRF_COOKIE, JUPYTER_XSRF_HEADER), (CSRF_COOKIE, CSRF_HEADER.lower())):
        cookie, supplied = cookies.get(cookie_name, ""), headers.get(header_name, "")
        if cookie and supplied and secrets.compare_digest(cookie.encode(), supplied.encode()):
            return True
    return False


def upstream_request_headers(raw: Iterable[tuple[bytes, bytes]], token: str) -> list[tuple[bytes, bytes]]:
    """The browser's headers minus hop-by-hop ones, its credentials (Authorization, the portal's cookies),
    Origin/Referer (already checked here; Jupyter skips them for token requests anyway) and Host; plus the
    server token."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        key = name.lower()
        if key in HOP_BY_HOP or key in (b"host", b"authorization", b"origin", b"referer", b"cookie"):
            if key == b"cookie":
                kept = _without_portal_cookies(value.decode("latin-1"))
                if kept:
                    out.append((b"cookie", kept.encode("latin-1")))
            continue
        if key.startswith(b"sec-websocket-") or key.startswith(b"x-forwarded-"):
            continue
        out.append((key, value))
    out.append((b"authorization", f"token {token}".encode()))
    return out


def _without_portal_cookies(header: str) -> str:
    parts = []
    for piece in header.split(";"):
        name = piece.split("=", 1)[0].strip()
        if name and name not in PORTAL_COOKIES and not name.startswith("username-"):
            parts.append(piece.strip())
    return "; ".join(parts)


def is_jupyter_auth_cookie(set_cookie: str) -> bool:
    """Jupyter's login cookie (``username-<host>-<port>``, or a configured ``cookie_name``) would sign the
    browser in to the server directly: never passed on. ``_xsrf`` is passed on (JupyterLab echoes it)."""
    name = set_cookie.split("=", 1)[0].strip()
    return name != JUPYTER_XSRF_COOKIE


def browser_response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Upstream's response headers minus hop-by-hop ones, any cookie but _xsrf and its security headers
    (the gateway's session policy replaces them)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        key = name.lower()
        if key in HOP_BY_HOP or key in (b"content-security-policy", b"x-frame-options", b"server",
                                        b"content-security-policy-report-only"):
            continue
        if key == b"set-cookie" and is_jupyter_auth_cookie(value.decode("latin-1")):
            continue
        out.append((key, value))
    out.extend((k.encode(), v.encode()) for k, v in SESSION_HEADERS.items())
    return out


def scrub(body: bytes, token: str) -> bytes:
    """Remove the server token from a page (jupyterlab_server writes it into the page's config)."""
    return body.replace(token.encode(), b"") if token else body
