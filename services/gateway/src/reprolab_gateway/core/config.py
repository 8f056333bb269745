"""Settings of the gateway service (``REPROLAB_GATEWAY_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from reprolab_common.settings import CommonSettings

from ..lti.config import LtiSettings

GIB = 1024**3


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_GATEWAY_", extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings, description="Shared REPROLAB_* settings.")
    host: str = Field(default="127.0.0.1", description="Address uvicorn listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port uvicorn listens on.")
    bootstrap_token_file: Path | None = Field(
        default=None,
        description=(
            "When set and no user named 'admin' exists at start, create the platform admin 'admin' and "
            "write its new API token to this file (mode 0600). An existing admin is left untouched."
        ),
    )
    max_upload_bytes: int = Field(
        default=GIB,
        ge=1,
        description="Largest dataset upload or audit bundle accepted, in bytes (413 above).",
    )
    max_document_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description="Largest JSON/YAML request body (environment specs), in bytes; keep it below NATS's "
        "max payload.",
    )
    nats_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a request to the registry or audit service may take."
    )
    build_request_timeout_seconds: float = Field(
        default=180.0, gt=0, description="How long requesting a build may take (the builder locks the spec first)."
    )
    audit_timeout_seconds: float = Field(
        default=120.0, gt=0, description="How long an activity export or bundle verification may take."
    )
    nats_connect_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        description="How long start-up waits for NATS before serving anyway (requests needing NATS "
        "answer 503 meanwhile).",
    )
    tmp_dir: Path | None = Field(
        default=None, description="Where uploads are spooled while hashed; default <data_dir>/tmp/gateway."
    )
    lti: LtiSettings = Field(default_factory=LtiSettings, description="LTI 1.3 (REPROLAB_GATEWAY_LTI_*).")
    token_touch_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A token's last_used_at is written at most this often, so reads do not all "
        "become writes.",
    )

    import_base: str = Field(
        default="localhost/reprolab/bookworm-python:latest",
        description="Base image of environments imported from a repository when the request names none "
        "(the repository's runtime.txt then picks the Python version inside it).",
    )
    import_roots: list[Path] = Field(
        default=[],
        description="Folders on the gateway's host whose subfolders may be imported by path "
        "(JSON list); empty: import by path is off.",
    )
    import_url_hosts: list[str] = Field(
        default=[],
        description="host[:port] names the gateway may download repository archives from (JSON list); "
        "empty: import by URL is off, so the gateway cannot be used to reach internal addresses.",
    )
    token_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A checked API token is remembered this long, so requests skip the database. A token "
        "revoked through another gateway process (another replica) keeps working there for at most this "
        "long; the process that revokes it forgets it at once. 0 turns the cache off.",
    )
    read_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="The registry's answer to a read (GET of a workspace, its environments, an environment, its "
        "versions) is reused for the same caller this long, so repeated reads skip the NATS round trip. Changes "
        "drop it at once: this process's writes before their response, any other change (another replica, a build "
        "recording its image, a member removed) when the registry's notice arrives; nothing is cached while the "
        "notices may be missed (NATS disconnected). This time bounds what a lost notice could leave stale. "
        "0 turns the cache off.",
    )
    registry_token_key_file: Path | None = Field(
        default=None,
        description="EC private key (PEM) that signs the OCI registry's tokens at /api/v1/registry/token; the "
        "registry trusts its certificate (registry_token_cert_file). Unset: the token realm answers 404.",
    )
    registry_token_cert_file: Path | None = Field(
        default=None, description="Certificate (PEM) of registry_token_key_file, the registry's rootcertbundle."
    )
    registry_credentials_file: Path | None = Field(
        default=None,
        description="JSON {identity: password} of the registry's service identities (reprolab-builder may push, "
        "reprolab-runner may pull) that sign in to the token realm with HTTP Basic.",
    )

    # --- JupyterLab sessions (sessions_proxy/) -----------------------------------------------------
    session_touch_seconds: float = Field(
        default=30.0, gt=0, description="The proxy reports a session's activity to the runner at most this often "
        "(per session), never per message.")
    session_resolve_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long the proxy reuses the runner's answer to where a session runs "
        "(a JupyterLab page load is ~100 requests).")

    # --- model serving (serving/) -----------------------------------------------------------------------
    serve_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body the /serve proxy forwards to a model "
        "(413 above).")
    serve_default_rate_per_minute: int = Field(
        default=600, ge=1, description="Requests per minute per model API key whose own rate is 0, and per user "
        "calling a model with their API token (429 with Retry-After above).")
    serve_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long the /serve proxy reuses the runner's answer to where a model is "
        "served and which model a key opens (rollbacks and revocations made through this gateway apply at once).")
    serve_flush_seconds: float = Field(
        default=5.0, gt=0, description="Collected inference traffic is written to the object store this often.")

    # --- accounts and sign-in (auth/) ---------------------------------------------------------------
    public_url: str = Field(
        default="",
        description="The portal's address as people reach it (https://reprolab.example.edu), used in invite "
        "and reset links and as the OIDC redirect; empty: taken from each request.",
    )
    registration: Literal["off", "invite", "open"] = Field(
        default="invite",
        description="Who may create an account with a password: off (admins create users), invite (people "
        "following an invite link), open (anyone).",
    )
    password_min_length: int = Field(default=10, ge=8, le=128, description="Shortest password accepted.")
    session_hours: float = Field(
        default=168.0, gt=0, description="A browser session ends this long after sign-in, whatever happens."
    )
    session_idle_hours: float = Field(
        default=72.0, gt=0, description="A browser session not used for this long ends."
    )
    reset_link_hours: float = Field(default=24.0, gt=0, description="How long an admin-issued reset link works.")
    invite_max_days: int = Field(default=180, ge=1, description="The longest expiry an invite link may have.")
    signin_account_failures: int = Field(
        default=5, ge=1, description="Failed password sign-ins in a row after which an account refuses "
        "sign-ins for signin_lock_seconds (whatever the password)."
    )
    signin_lock_seconds: float = Field(default=300.0, ge=0, description="How long a locked account refuses.")
    signin_address_failures: int = Field(
        default=20, ge=1, description="Failed sign-ins from one address within signin_window_seconds after "
        "which that address is refused until the window has passed."
    )
    signin_window_seconds: float = Field(default=600.0, gt=0, description="The per-address window.")

    oidc_issuer: str = Field(
        default="", description="OIDC single sign-on: the issuer URL (its /.well-known/openid-configuration "
        "is read); empty: off."
    )
    oidc_client_id: str = Field(default="", description="OIDC client id registered at the issuer.")
    oidc_client_secret: SecretStr = Field(default=SecretStr(""), description="OIDC client secret.")
    oidc_scopes: str = Field(default="openid profile email", description="Scopes requested, space-separated.")
    oidc_label: str = Field(default="Sign in with your institution", description="The button's text.")
    oidc_username_claim: str = Field(default="preferred_username", description="Claim that becomes the username.")
    oidc_name_claim: str = Field(default="name", description="Claim that becomes the display name.")
    oidc_email_claim: str = Field(default="email", description="Claim that becomes the email address.")
    oidc_groups_claim: str = Field(default="", description="Claim listing the user's groups; empty: none.")
    oidc_group_roles: dict[str, str] = Field(
        default={}, description='Group -> workspace roles, JSON: {"cs101-staff": "cs101:instructor", '
        '"cs101-2026": "cs101:student,lab:student"}; a member of the group joins those workspaces.'
    )
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of requests to the issuer.")

    ldap_url: str = Field(default="", description="LDAP / Active Directory: ldap://host:389 or ldaps://host:636; "
                          "empty: off.")
    ldap_start_tls: bool = Field(default=False, description="Upgrade an ldap:// connection with StartTLS.")
    ldap_ca_file: Path | None = Field(default=None, description="CA bundle the server's certificate must chain to.")
    ldap_bind_dn: str = Field(default="", description="The service account that searches for users (empty: "
                              "anonymous search).")
    ldap_bind_password: SecretStr = Field(default=SecretStr(""), description="Its password.")
    ldap_base_dn: str = Field(default="", description="Where users are searched, e.g. ou=people,dc=uni,dc=edu.")
    ldap_user_filter: str = Field(
        default="(uid={username})", description="Finds the user; {username} is escaped (AD: "
        "(sAMAccountName={username}))."
    )
    ldap_username_attr: str = Field(default="uid", description="Attribute that becomes the username.")
    ldap_name_attr: str = Field(default="cn", description="Attribute that becomes the display name.")
    ldap_email_attr: str = Field(default="mail", description="Attribute that becomes the email address.")
    ldap_group_base_dn: str = Field(default="", description="Where groups are searched; empty: no groups.")
    ldap_group_filter: str = Field(
        default="(&(objectClass=groupOfNames)(member={dn}))",
        description="Finds the user's groups; {dn} is the user's escaped DN (AD: (member={dn}) too)."
    )
    ldap_group_name_attr: str = Field(default="cn", description="Attribute naming a group.")
    ldap_group_roles: dict[str, str] = Field(default={}, description="Group -> workspace roles, as oidc_group_roles.")
    ldap_timeout_seconds: float = Field(default=5.0, gt=0, description="Connect/receive timeout with the server.")

    def upload_dir(self) -> Path:
        return self.tmp_dir or self.common.data_dir / "tmp" / "gateway"


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
