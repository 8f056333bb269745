"""``reprolab credentials``: set, show, list and delete your cloud credentials for a workspace.

Secrets never come from the command line (argv is visible to every user of the machine in ``ps``
and lands in shell history): they are typed at hidden prompts, or read from the environment
variables the vendors' own tools use (``--from-env``), or from a JSON file (``--from-file``).
Non-secret settings (region, image, endpoint) are ``--option key=value``. The platform answers with
metadata only; it never shows a secret back.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .client import ReprolabError
from .client import connect as _client

credentials_app = typer.Typer(rich_markup_mode=None,
                              help="Your cloud credentials (aws, azure, openstack) per workspace; write-only.",
                              no_args_is_help=True)
console = Console()
err = Console(stderr=True)

VENDORS = ("aws", "azure", "openstack")
# What the prompts ask for (the platform validates; this only decides what to ask).
PROMPTS: dict[str, tuple[str, ...]] = {
    "aws": ("access_key_id", "secret_access_key"),
    "azure": ("client_id", "client_secret"),
    "openstack": ("application_credential_id", "application_credential_secret"),
}
OPENSTACK_PASSWORD = ("username", "password")
# --from-env: the variables each vendor's own CLI reads. (secret field or option, variable)
ENV_SECRET: dict[str, tuple[tuple[str, str], ...]] = {
    "aws": (("access_key_id", "AWS_ACCESS_KEY_ID"), ("secret_access_key", "AWS_SECRET_ACCESS_KEY")),
    "azure": (("client_id", "AZURE_CLIENT_ID"), ("client_secret", "AZURE_CLIENT_SECRET")),
    "openstack": (("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID"),
                  ("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET"),
                  ("username", "OS_USERNAME"), ("password", "OS_PASSWORD")),
}
ENV_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "aws": (("region", "AWS_REGION"), ("region", "AWS_DEFAULT_REGION"), ("endpoint_url", "AWS_ENDPOINT_URL")),
    "azure": (("tenant_id", "AZURE_TENANT_ID"), ("subscription_id", "AZURE_SUBSCRIPTION_ID")),
    "openstack": (("auth_url", "OS_AUTH_URL"), ("project", "OS_PROJECT_NAME"), ("project_id", "OS_PROJECT_ID"),
                  ("user_domain", "OS_USER_DOMAIN_NAME"), ("project_domain", "OS_PROJECT_DOMAIN_NAME"),
                  ("region", "OS_REGION_NAME")),
}
COLUMNS = ("workspace", "vendor", "key_hint", "secret_fields", "options", "key_id", "updated_at")

UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN",
                                              help="API token (default: <data-dir>/admin-token).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the answer as one JSON document.")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace the credentials are for.")]


class UsageError(ReprolabError):
    """A mistake on the command line (exit 1 with a hint, like every other failure)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _vendor(vendor: str) -> str:
    if vendor not in VENDORS:
        raise UsageError(f"unknown vendor {vendor!r}", f"use one of {', '.join(VENDORS)}")
    return vendor


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes key=value, got {key!r} without '='",
                             "e.g. --option region=us-east-1 --option image_id=ami-0123")
        out[key.strip()] = value
    return out


def _from_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:  # the message has a position, never the content
        raise UsageError(f"{path} is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path} must hold a JSON object", 'e.g. {"secret": {...}, "options": {...}}')
    if isinstance(doc.get("secret"), dict):
        return doc["secret"], doc.get("options") or {}
    return doc, {}


def _from_env(vendor: str) -> tuple[dict[str, str], dict[str, str]]:
    secret = {field: os.environ[var] for field, var in ENV_SECRET[vendor] if os.environ.get(var)}
    options: dict[str, str] = {}
    for field, var in ENV_OPTIONS[vendor]:
        if os.environ.get(var):
            options.setdefault(field, os.environ[var])
    if not secret:
        names = ", ".join(var for _, var in ENV_SECRET[vendor])
        raise UsageError(f"--from-env found none of {names} in the environment",
                         "export them first, or leave out --from-env to be prompted")
    return secret, options


def _prompt(vendor: str, password_login: bool) -> dict[str, str]:
    # Hidden on a terminal; without one (a pipe) the lines are read from stdin, which is fine too.
    fields = OPENSTACK_PASSWORD if vendor == "openstack" and password_login else PROMPTS[vendor]
    return {field: typer.prompt(field, hide_input=True) for field in fields}


def _show(data: Any, as_json: bool) -> None:
    items = data["items"] if isinstance(data, dict) and "items" in data else [data]
    if as_json:
        sys.stdout.write(json.dumps(data["items"] if "items" in data else data, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(*COLUMNS)
    for row in items:
        table.add_row(*(", ".join(row[c]) if c == "secret_fields" else
                        ", ".join(f"{k}={v}" for k, v in sorted(row[c].items())) if c == "options" else
                        str(row.get(c, "")) for c in COLUMNS))
    console.print(table)


@credentials_app.command("set")
def set_credentials(
    vendor: Annotated[str, typer.Argument(help="aws, azure or openstack.")],
    workspace: WorkspaceOpt,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="A non-secret setting, key=value (repeatable): region, image_id, endpoint_url, ...")
    ] = None,
    from_env: Annotated[bool, typer.Option(
        "--from-env", help="Read the secret from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AZURE_CLIENT_ID/"
                           "AZURE_CLIENT_SECRET or OS_APPLICATION_CREDENTIAL_ID/..._SECRET (or OS_USERNAME/"
                           "OS_PASSWORD), and region, tenant, auth URL etc. from the usual variables.")] = False,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help='A JSON file: {"secret": {...}, "options": {...}} or just the secret fields.')] = None,
    password_login: Annotated[bool, typer.Option(
        "--password-login", help="openstack: prompt for username/password instead of an application "
                                 "credential.")] = False,
    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set (create or replace) your credentials for VENDOR in a workspace. The secret is prompted for
    (hidden) unless --from-env or --from-file; it is encrypted by the platform and never shown again."""
    _vendor(vendor)
    if from_env and from_file:
        raise UsageError("use --from-env or --from-file, not both")
    if from_file:
        secret, options = _from_file(from_file)
    elif from_env:
        secret, options = _from_env(vendor)
    else:
        secret, options = _prompt(vendor, password_login), {}
    options = {**options, **_options(option or [])}
    c = _client(url, token)
    info = c.request("PUT", f"/me/credentials/{vendor}", params={"workspace": workspace},
                     json={"secret": secret, "options": options})
    if not as_json:
        err.print(f"stored your {vendor} credentials for {workspace} ({info['key_hint']})", highlight=False)
    _show(info, as_json)


@credentials_app.command("show")
def show_credentials(vendor: str, workspace: WorkspaceOpt, url: UrlOpt = "http://127.0.0.1:8080",
                     token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """What is stored for VENDOR in a workspace (metadata only)."""
    _show(_client(url, token).get(f"/me/credentials/{_vendor(vendor)}", params={"workspace": workspace}), as_json)


@credentials_app.command("list")
def list_credentials(workspace: WorkspaceOpt, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                     as_json: JsonOpt = False) -> None:
    """Your credentials in a workspace (metadata only)."""
    _show(_client(url, token).get("/me/credentials", params={"workspace": workspace}), as_json)


@credentials_app.command("delete")
def delete_credentials(vendor: str, workspace: WorkspaceOpt, url: UrlOpt = "http://127.0.0.1:8080",
                       token: TokenOpt = None) -> None:
    """Delete your credentials for VENDOR in a workspace."""
    _client(url, token).request("DELETE", f"/me/credentials/{_vendor(vendor)}", params={"workspace": workspace},
                                expect=(204,))
    err.print(f"deleted your {vendor} credentials for {workspace}", highlight=False)
