"""LDAP / Active Directory sign-in with ldap3: search the user with a service account (or anonymously),
bind as the user with the password given, read their groups, and sign them in as the linked account.

Connections use LDAPS (``ldaps://``) or StartTLS (``ldap_start_tls``) with the certificate checked
against ``ldap_ca_file`` (or the system's CAs); plain LDAP sends passwords readable on the wire and is
for loopback tests only. The username is escaped in the search filter (RFC 4515), so ``*`` or ``)``
cannot widen the search, and an empty password is refused before any bind (an LDAP "unauthenticated
bind" with an empty password succeeds on many servers). The account is linked by
(``ldap:<server>``, the entry's ``entryUUID``/``objectGUID``, else its DN).
"""

from __future__ import annotations

import math
import ssl

from fastapi import Request
from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from reprolab_common.errors import ProblemError
from sqlalchemy.orm import Session

from ..core.config import GatewaySettings
from ..models import User
from .directory import Person, provision
from .sessions import client_address
from .signin import SignInRefused, check_address, record_failure

UUID_ATTRS = ("entryUUID", "objectGUID")
ACCOUNT_KEY = "ldap-account:"  # failures per directory account, in the sign-in throttle's counters


class DirectoryUnavailable(Exception):
    """The server cannot be reached or refused the service account: not the person's fault."""


def issuer_of(settings: GatewaySettings) -> str:
    return f"ldap:{settings.ldap_url.rstrip('/')}"


def _server(settings: GatewaySettings) -> Server:
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(settings.ldap_ca_file) if settings.ldap_ca_file else None,
              version=ssl.PROTOCOL_TLS_CLIENT)
    return Server(settings.ldap_url, use_ssl=settings.ldap_url.lower().startswith("ldaps://"), tls=tls,
                  get_info=NONE, connect_timeout=settings.ldap_timeout_seconds)


def _connect(settings: GatewaySettings, user: str | None, password: str | None) -> Connection:
    """A connection, TLS started when configured, bound as ``user`` (None: anonymously). Raises
    LDAPException on a failed TLS or network; returns an unbound connection when the bind is refused."""
    conn = Connection(_server(settings), user=user, password=password, auto_bind=False, raise_exceptions=False,
                      receive_timeout=max(1, math.ceil(settings.ldap_timeout_seconds)),
                      read_only=True)  # ldap3 packs it as an integer
    conn.open()
    if settings.ldap_start_tls and not conn.server.ssl:
        if not conn.start_tls():
            conn.unbind()
            raise DirectoryUnavailable(f"StartTLS failed: {conn.result.get('description')}")
    conn.bind()
    return conn


def lookup(settings: GatewaySettings, username: str, password: str) -> Person | None:
    """The directory's person for these credentials, or None (unknown user, several matches, wrong
    password). Raises DirectoryUnavailable when the directory cannot be asked."""
    try:
        search = _connect(settings, settings.ldap_bind_dn or None,
                          settings.ldap_bind_password.get_secret_value() or None)
    except (LDAPException, OSError) as exc:
        raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        if not search.bound:
            raise DirectoryUnavailable(f"the service account's bind was refused ({search.result.get('description')})")
        query = settings.ldap_user_filter.replace("{username}", escape_filter_chars(username))
        attrs = [settings.ldap_username_attr, settings.ldap_name_attr, settings.ldap_email_attr, *UUID_ATTRS]
        search.search(settings.ldap_base_dn, query, attributes=[a for a in attrs if a])
        entries = list(search.entries)
        if len(entries) != 1:
            return None
        entry = entries[0]
        dn = entry.entry_dn
        try:
            check = _connect(settings, dn, password)
        except (LDAPException, OSError) as exc:
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
        ok = check.bound
        check.unbind()
        if not ok:
            return None
        groups: list[str] = []
        if settings.ldap_group_base_dn:
            gquery = settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn))
            search.search(settings.ldap_group_base_dn, gquery, attributes=[settings.ldap_group_name_attr])
            groups = [str(g[settings.ldap_group_name_attr].value) for g in search.entries
                      if settings.ldap_group_name_attr in g]
        return Person(issuer=issuer_of(settings), subject=_subject(entry), groups=groups,
                      username=_first(entry, settings.ldap_username_attr) or username,
                      display_name=_first(entry, settings.ldap_name_attr),
                      email=_first(entry, settings.ldap_email_attr))
    finally:
        search.unbind()


def _first(entry, attr: str) -> str:
    if not attr or attr not in entry:
        return ""
    value = entry[attr].value
    return str(value[0] if isinstance(value, list) else value or "")


def _subject(entry) -> str:
    for attr in UUID_ATTRS:
        if attr in entry and entry[attr].value:
            return str(entry[attr].value)
    return entry.entry_dn


def ldap_signin(request: Request, db: Session, settings: GatewaySettings, *, username: str,
                password: str) -> User:
    """Sign-in through the directory; the account is created or found (``provision``) and its group roles
    granted. ``SignInRefused`` for wrong credentials (recorded) or an unreachable directory."""
    throttle = request.app.state.signin_throttle
    address = client_address(request)
    check_address(throttle, settings, address)
    username = username.strip()
    # per account too: the directory's own lockout may be off, and a bind per guess is what it costs
    account = ACCOUNT_KEY + username.lower()
    wait = throttle.wait_seconds(account, limit=settings.signin_account_failures, window=settings.signin_lock_seconds)
    if wait > 0:
        throttle.failed(address, window=settings.signin_window_seconds)
        record_failure(db, user=None, method="ldap", address=address, reason="account locked",
                       issuer=issuer_of(settings))
        raise SignInRefused(f"too many failed sign-ins for this account; try again in {math.ceil(wait)} s",
                            status=429, retry_after=math.ceil(wait))
    if not username or not password:
        throttle.failed(address, window=settings.signin_window_seconds)
        raise SignInRefused("wrong username or password")
    try:
        person = lookup(settings, username, password)
    except DirectoryUnavailable as exc:
        record_failure(db, user=None, method="ldap", address=address, reason=f"directory unavailable: {exc}"[:200],
                       issuer=issuer_of(settings))
        raise SignInRefused("the university directory cannot be reached just now; try again shortly",
                            status=503) from exc
    if person is None:
        throttle.failed(address, window=settings.signin_window_seconds)
        throttle.failed(account, window=settings.signin_lock_seconds)
        record_failure(db, user=None, method="ldap", address=address, reason="wrong username or password",
                       issuer=issuer_of(settings))
        raise SignInRefused("wrong username or password")
    try:
        user = provision(db, request, person, method="ldap")
    except ProblemError as exc:
        record_failure(db, user=None, method="ldap", address=address, reason=exc.detail[:200],
                       issuer=issuer_of(settings))
        raise SignInRefused(exc.detail, status=exc.status) from exc
    request.state.sso_person = person  # its groups are granted by the caller once the session exists
    return user
