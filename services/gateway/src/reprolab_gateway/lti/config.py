"""Settings of the LTI 1.3 tool (``REPROLAB_GATEWAY_LTI_*``), a part of the gateway's settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LtiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPROLAB_GATEWAY_LTI_", extra="ignore")

    public_url: str = Field(
        default="",
        description="The gateway's public base URL as the LMS reaches it, e.g. https://reprolab.example.edu: the "
        "tool's launch, login, JWKS and deep-link URLs are built from it, and a launch's target_link_uri must "
        "start with it. Empty: taken from each request (development only).",
    )
    allowed_targets: list[str] = Field(
        default=[],
        description="Further target_link_uri prefixes a launch may name (JSON list), besides <public_url>/lti/.",
    )
    http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a request to an LMS (its keys, tokens, grades, rosters) may take.")
    max_token_age_seconds: int = Field(
        default=300, ge=10, description="An id_token issued (iat) longer ago than this is refused.")
    clock_skew_seconds: int = Field(
        default=60, ge=0, description="Tolerance for the LMS's clock on exp and iat.")
    login_ttl_seconds: int = Field(
        default=600, ge=30, description="How long a login's state and nonce stay usable before the launch.")
    jwks_refetch_seconds: float = Field(
        default=5.0, ge=0, description="An unknown key id refetches the LMS's keys at most this often "
        "(so forged tokens cannot make the gateway hammer the LMS).")
    grade_attempts: int = Field(default=3, ge=1, le=10, description="Tries per grade post before it is failed.")
