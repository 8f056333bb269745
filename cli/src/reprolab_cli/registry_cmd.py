"""``reprolab registry``: a workspace's logins to external registries (write-only secrets), and
``reprolab env publish``: push a built version there with its digest unchanged.

The password never comes from the command line (argv is visible to every user in ``ps``): a hidden
prompt, or ``--password-stdin`` as ``docker login`` takes it.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from .client import ReprolabError
from .client import connect as _client

registry_app = typer.Typer(rich_markup_mode=None,
                           help="Credentials for external registries (Docker Hub, GHCR, Quay, Harbor), per "
                                "workspace; write-only.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")]


@registry_app.command("login")
def login(workspace: str, registry: Annotated[str, typer.Argument(help="host[:port], e.g. ghcr.io")],
          username: Annotated[str, typer.Option("--username", "-u", help="Registry user name.")],
          password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password or token from "
                                                       "standard input.")] = False,
          url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Store the workspace's credentials for REGISTRY (encrypted by the platform, never shown again)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password", hide_input=True)
    if not password:
        raise ReprolabError("no password given")
    c = _client(url, token)
    saved = c.request("PUT", f"/workspaces/{workspace}/registry-credentials/{registry}",
                      json={"username": username, "password": password})
    err.print(f"stored credentials for {saved['registry']} (user {saved['username']}) in {workspace}", highlight=False)


@registry_app.command("list")
def list_(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The workspace's registry logins (no secrets)."""
    items = _client(url, token).get(f"/workspaces/{workspace}/registry-credentials")["items"]
    if as_json:
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return
    for item in items:
        console.print(f"{item['registry']}  {item['username']}  (by {item['created_by']}, {item['created_at']})",
                      highlight=False)


@registry_app.command("rm")
@registry_app.command("logout")
def logout(workspace: str, registry: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Forget the workspace's credentials for REGISTRY."""
    _client(url, token).request("DELETE", f"/workspaces/{workspace}/registry-credentials/{registry}", expect=(204,))
    err.print(f"removed credentials for {registry} from {workspace}")


def env_publish(workspace: str, name: str,
                destination: Annotated[str, typer.Argument(help="host[:port]/path[:tag], e.g. ghcr.io/org/img:v1")],
                version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Push a built version's image to an external registry (credentials: `reprolab registry login`);
    the digest stays the platform's."""
    c = _client(url, token)
    number = version or c.get(f"/workspaces/{workspace}/environments/{name}")["latest_version"]
    with err.status(f"publishing {workspace}/{name} v{number} to {destination}..."):
        result = c.post(f"/workspaces/{workspace}/environments/{name}/versions/{number}/publish",
                        json={"destination": destination}, timeout=1900)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    console.print(f"published {result['destination']}@{result['digest']}", highlight=False)
