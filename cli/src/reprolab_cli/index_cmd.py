"""``reprolab index``: a workspace's private and extra Python package indexes (write-only secrets).

The password or token never comes from the command line (argv is visible to every user in ``ps``):
a hidden prompt, or ``--password-stdin`` as ``docker login`` takes it.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from .client import ReprolabError
from .client import connect as _client

index_app = typer.Typer(help="Private and extra Python package indexes, per workspace (credentials write-only). "
                             "Extra indexes are searched first, by priority, then the primary (PyPI unless one "
                             "replaces it); a package found on one index is taken from that index only.",
                        no_args_is_help=True)
console = Console()
err = Console(stderr=True)
UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")]


@index_app.command("set")
def set_(workspace: str, name: Annotated[str, typer.Argument(help="A short name, e.g. corp.")],
         index_url: Annotated[str, typer.Argument(help="The simple index, e.g. https://pkgs.example.org/simple")],
         primary: Annotated[bool, typer.Option("--primary", help="Replace PyPI with this index.")] = False,
         priority: Annotated[int, typer.Option(help="Among extra indexes, lower is searched first.")] = 0,
         username: Annotated[str, typer.Option("--username", "-u", help="Basic-auth user.")] = "",
         password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard "
                                                      "input.")] = False,
         token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read an access token from standard "
                                                   "input (sent as user __token__ unless --username).")] = False,
         url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Add or replace index NAME of WORKSPACE; a password (with --username) is prompted for, hidden."""
    body: dict[str, object] = {"url": index_url, "kind": "primary" if primary else "extra", "priority": priority,
                               "username": username}
    if token_stdin:
        body["token"] = sys.stdin.readline().rstrip("\n")
        if not body["token"]:
            raise ReprolabError("no token given")
    elif password_stdin or username:
        body["password"] = (sys.stdin.readline().rstrip("\n") if password_stdin
                            else typer.prompt("Password", hide_input=True))
        if not body["password"]:
            raise ReprolabError("no password given")
    saved = _client(url, token).request("PUT", f"/workspaces/{workspace}/package-indexes/{name}", json=body)
    who = f", user {saved['username']}" if saved["username"] else ""
    err.print(f"stored {saved['kind']} index {saved['name']} ({saved['url']}{who}) in {workspace}", highlight=False)


@index_app.command("list")
def list_(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The workspace's indexes in search order (no secrets)."""
    items = _client(url, token).get(f"/workspaces/{workspace}/package-indexes")["items"]
    if as_json:
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return
    for i in items:
        auth = f"  user {i['username']}" if i["has_secret"] else "  (no credentials)"
        console.print(f"{i['name']}  {i['kind']}  priority {i['priority']}  {i['url']}{auth}", highlight=False)


@index_app.command("rm")
def rm(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Forget index NAME (and its credentials)."""
    _client(url, token).request("DELETE", f"/workspaces/{workspace}/package-indexes/{name}", expect=(204,))
    err.print(f"removed index {name} from {workspace}")
