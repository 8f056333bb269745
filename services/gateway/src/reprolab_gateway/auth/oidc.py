"""OpenID Connect single sign-on: authorization code flow with PKCE (S256) through Authlib's client,
ID token checked with joserfc against the issuer's JWKS. Works with any issuer that publishes
``/.well-known/openid-configuration`` (Keycloak, Microsoft Entra ID, Google, ...).

No server-side state between the two legs: the login leg sets a short-lived HttpOnly cookie holding a
random key, and ``state``, ``nonce`` and the PKCE ``code_verifier`` are derived from it by hashing. The
callback derives them again from the browser's cookie, so a callback without that browser's cookie (a
forged or replayed one), a code obtained for another nonce, or a code without the verifier all fail.
What the callback checks, each refused with a clear page and an ``account.signin_failed`` entry:
the state equals the cookie's; the provider's discovery ``issuer`` equals the configured one; the ID
token's signature (RS256/PS256/ES256 keys from the JWKS, refetched once on an unknown ``kid``), ``iss``,
``aud`` (the client id; ``azp`` required and equal when there are several audiences), ``exp``/``iat``
(60 s leeway) and ``nonce``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..core.config import GatewaySettings
from .directory import Person

COOKIE = "reprolab_oidc"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
LEEWAY = 60
METADATA_SECONDS = 3600


class OidcError(Exception):
    """A refused single sign-on, in words a person can act on (also the activity log's reason)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def derive(key: str, purpose: str) -> str:
    return _b64(hashlib.sha256(f"{purpose}:{key}".encode()).digest())


def new_login_key() -> str:
    return secrets.token_urlsafe(32)


class OidcProvider:
    """One configured issuer: its metadata and keys (cached), the two legs of the flow."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def _get(self, url: str) -> dict[str, Any]:
        try:
            r = httpx.get(url, timeout=self.settings.oidc_timeout_seconds, follow_redirects=False)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the sign-in provider did not answer properly ({type(exc).__name__}); try again "
                            "later or ask an admin") from exc

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_SECONDS:
                meta = self._get(f"{self.issuer}/.well-known/openid-configuration")
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcError(f"the provider's discovery document names issuer {meta.get('issuer')!r}, not "
                                    f"the configured {self.issuer!r}; ask an admin to fix the configuration")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not meta.get(name):
                        raise OidcError(f"the provider's discovery document has no {name}")
                self._metadata, self._metadata_at, self._keys = meta, time.monotonic(), None
            return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        meta = self.metadata()
        with self._lock:
            if self._keys is None or refresh:
                self._keys = KeySet.import_key_set(self._get(meta["jwks_uri"]))
            return self._keys

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(client_id=self.settings.oidc_client_id,
                            client_secret=self.settings.oidc_client_secret.get_secret_value() or None,
                            scope=self.settings.oidc_scopes, redirect_uri=redirect_uri,
                            code_challenge_method="S256", timeout=self.settings.oidc_timeout_seconds)

    def authorization_url(self, redirect_uri: str, key: str) -> str:
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=derive(key, "state"), nonce=derive(key, "nonce"),
                code_verifier=derive(key, "pkce"))
        return url

    def finish(self, redirect_uri: str, key: str, *, state: str, code: str) -> Person:
        """The callback leg: check the state, exchange the code (with the verifier), verify the ID token."""
        if not state or not secrets.compare_digest(state.encode(), derive(key, "state").encode()):
            raise OidcError("the sign-in response does not belong to this browser's sign-in (state mismatch); "
                            "start again")
        if not code:
            raise OidcError("the provider sent no authorization code; start again")
        with self._client(redirect_uri) as client:
            try:
                token = client.fetch_token(self.metadata()["token_endpoint"], grant_type="authorization_code",
                                           code=code, code_verifier=derive(key, "pkce"))
            except Exception as exc:  # authlib's OAuthError, httpx errors: all a refused exchange
                raise OidcError(f"the provider refused the sign-in code ({type(exc).__name__}); start again") from exc
        id_token = token.get("id_token")
        if not id_token:
            raise OidcError("the provider returned no ID token (is the 'openid' scope configured?)")
        return self.person(self.verify_id_token(id_token, nonce=derive(key, "nonce")))

    def verify_id_token(self, id_token: str, *, nonce: str, issuer: str | None = None) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, times and nonce are right."""
        try:
            decoded = jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
        except JoseError:
            try:  # the provider may have rotated its keys: fetch them once more
                decoded = jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)
            except JoseError as exc:
                raise OidcError(f"the ID token's signature does not verify ({type(exc).__name__})") from exc
        claims = decoded.claims
        expected = (issuer or self.issuer).rstrip("/")
        if str(claims.get("iss", "")).rstrip("/") != expected:
            raise OidcError(f"the ID token was issued by {claims.get('iss')!r}, not {expected!r}")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
        client_id = self.settings.oidc_client_id
        if client_id not in audiences:
            raise OidcError("the ID token is not meant for this site (aud)")
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise OidcError("the ID token has several audiences and no azp naming this site")
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp + LEEWAY < now:
            raise OidcError("the ID token has expired; start again")
        if not isinstance(iat, int | float) or iat - LEEWAY > now:
            raise OidcError("the ID token is issued in the future (check the clocks)")
        if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OidcError("the ID token was not issued for this sign-in (nonce mismatch); start again")
        if not claims.get("sub"):
            raise OidcError("the ID token has no subject")
        return claims

    def person(self, claims: dict[str, Any]) -> Person:
        s = self.settings
        groups = claims.get(s.oidc_groups_claim, []) if s.oidc_groups_claim else []
        groups = [groups] if isinstance(groups, str) else [str(g) for g in groups or []]
        username = str(claims.get(s.oidc_username_claim) or claims.get("email") or "")
        return Person(issuer=self.issuer, subject=str(claims["sub"]), username=username,
                      display_name=str(claims.get(s.oidc_name_claim) or ""),
                      email=str(claims.get(s.oidc_email_claim) or ""), groups=groups)


def provider_of(app_state, settings: GatewaySettings) -> OidcProvider:
    provider = getattr(app_state, "oidc", None)
    if provider is None:
        provider = app_state.oidc = OidcProvider(settings)
    return provider
