"""The ``reprolab`` command: run the platform (``up``), tell its story (``demo``), talk to its API.

Written for people and for scripts at once: progress bars, spinners and live logs go to stderr, the
answer goes to stdout, and ``--json`` makes that answer one plain JSON document (a listing is a JSON
array) that pipes into ``jq``. A failed call prints one line and a hint, never a traceback: exit
code 1 for an error of the platform or the request, 2 for a usage error.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from .client import DEFAULT_DATA_DIR, Client, ReprolabError
from .client import connect as _client
from .credentials_cmd import credentials_app
from .import_cmd import env_download_image, env_export_binder, env_export_renv, env_import
from .index_cmd import index_app
from .quotas_cmd import workspace_quotas
from .registry_cmd import env_publish, registry_app


class _Group(TyperGroup):
    """Every subcommand runs inside this ``invoke``: a platform or request error becomes one line and
    a hint on stderr and exit code 1, instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ReprolabError as exc:
            _fail(exc)
            raise typer.Exit(1) from None


# Help is plain click text (rich_markup_mode=None on every Typer): typer's rich help imports markdown-it and
# pygments, which took half of `reprolab --help`'s start (bench/cli.py).
app = typer.Typer(rich_markup_mode=None, help="Reprolab: reproducible environments for courses and research groups.",
                  no_args_is_help=True, add_completion=False, cls=_Group)
workspace_app = typer.Typer(rich_markup_mode=None, help="Workspaces and their members.", no_args_is_help=True)
env_app = typer.Typer(rich_markup_mode=None, help="Environments and their versions.", no_args_is_help=True)
dataset_app = typer.Typer(rich_markup_mode=None, help="Datasets.", no_args_is_help=True)
audit_app = typer.Typer(rich_markup_mode=None, help="The activity log: export and verify.", no_args_is_help=True)
user_app = typer.Typer(rich_markup_mode=None, help="Users and API tokens (platform admins).", no_args_is_help=True)
run_app = typer.Typer(rich_markup_mode=None,
                      help="Run code in an environment's image against datasets.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(env_app, name="env")
env_app.command("import")(env_import)
env_app.command("export-binder")(env_export_binder)
env_app.command("export-renv")(env_export_renv)
env_app.command("download-image")(env_download_image)
env_app.command("publish")(env_publish)
app.add_typer(registry_app, name="registry")
app.add_typer(index_app, name="index")
app.add_typer(dataset_app, name="dataset")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.add_typer(run_app, name="run")
session_app = typer.Typer(rich_markup_mode=None,
                          help="JupyterLab sessions in an environment's image (your home is kept).",
                          no_args_is_help=True)
app.add_typer(session_app, name="session")
assignment_app = typer.Typer(rich_markup_mode=None,
                             help="Assignments (evaluation code + hidden labels) and leaderboards.",
                             no_args_is_help=True)
app.add_typer(assignment_app, name="assignment")

console = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN",
                                              help="API token (default: <data-dir>/admin-token).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the answer as one JSON document (no colours, no "
                                                  "progress) for scripts.")]


def _fail(exc: ReprolabError) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/yellow] {escape(exc.hint)}", highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    """Plain JSON on stdout: no colours, no wrapping, whatever the terminal."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def _show(data: Any, as_json: bool, columns: tuple[str, ...] = ()) -> None:
    items = data["items"] if isinstance(data, dict) and set(data) == {"items"} else data
    if as_json:
        _print_json(items)  # a listing is a JSON array
        return
    if not columns:
        console.print_json(json.dumps(data))
        return
    from rich.table import Table

    if isinstance(items, dict):
        # one object: "field  value" lines, never wrapped or cut (ids and pull references get copied);
        # reasons below in full
        width = max(len(c) for c in columns)
        for c in columns:
            if c not in REASONS:
                console.print(f"[bold]{c:<{width}}[/bold]  {_cell(items.get(c))}", soft_wrap=True, highlight=False)
        for c in REASONS:
            if c in columns and items.get(c):
                console.print(f"[red]{REASONS[c]}:[/red] {escape(str(items[c]))}", soft_wrap=True, highlight=False)
        return
    table = Table(*columns)
    for column in table.columns:
        if column.header in ("id", "run_id", "digest"):  # ids stay whole, other columns give way
            column.no_wrap = True
            column.min_width = min(71, max((len(str(r.get(column.header, ""))) for r in items), default=0))
    for row in items:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


REASONS = {"error": "error", "score_error": "not scored"}


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else escape(str(value))


def _upload(c: Client, path: str, file: Path, label: str, quiet: bool, params: dict[str, str] | None = None,
            expect: tuple[int, ...] = (200, 201)) -> Any:
    """Stream FILE with a progress bar on stderr (none with --json or when stderr is not a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn  # lazily: CLI start
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True, disable=quiet or not err.is_terminal) as progress:
        task = progress.add_task(escape(label), total=file.stat().st_size)
        return c.upload(path, file, params, progress=lambda n: progress.advance(task, n), expect=expect)


def _upload_code(c: Client, workspace: str, code: Path, quiet: bool) -> dict[str, Any]:
    archive = _pack(code)
    try:
        return _upload(c, f"/workspaces/{workspace}/code", archive, f"uploading {code}", quiet, expect=(201,))
    finally:
        if archive != code:
            archive.unlink(missing_ok=True)


STEP = re.compile(r"^STEP (\d+)/(\d+): (.*)")
PHASES = ("resolving", "locked", "fetching", "context", "base image", "base ", "pushed", "build ")


def _follow_build(c: Client, build: dict[str, Any], quiet: bool, log: bool = True) -> dict[str, Any]:
    """Stream a build's log to stderr under a progress bar (the Containerfile's STEP n/m), then return
    the finished build."""
    from rich.progress import (  # lazily: CLI start
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=quiet or not err.is_terminal) as progress:
        label = f"build {build['environment']} v{build['version']}"
        task = progress.add_task(f"{label}: {build['status']}", total=None)
        for line in c.sse(f"/builds/{build['id']}/logs"):
            if log:
                err.print(line, markup=False, highlight=False, soft_wrap=True)
            step = STEP.match(line)
            if step:
                progress.update(task, total=int(step[2]), completed=int(step[1]) - 1,
                                description=escape(f"{label}: step {step[1]}/{step[2]} {step[3][:40]}"))
            elif line.startswith(PHASES):
                progress.update(task, description=escape(f"{label}: {line[:60]}"))
    return c.get(f"/builds/{build['id']}")


def _follow_run(c: Client, run: dict[str, Any], quiet: bool, scoring_timeout: float = 900) -> dict[str, Any]:
    """Stream a run's output to stderr under a spinner until it ends; with an assignment, wait for its
    score too (the evaluation runs afterwards, in its own sandbox)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # lazily: CLI start
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True, disable=quiet or not err.is_terminal) as progress:
        label = f"run {run['id']} ({run['environment']} v{run['version']}, {run['target']})"
        task = progress.add_task(escape(f"{label}: {run['status']}"), total=None)
        for n, line in enumerate(c.sse(f"/runs/{run['id']}/logs")):
            if n == 0:
                progress.update(task, description=escape(f"{label}: running"))
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        run = c.get(f"/runs/{run['id']}")
        if run.get("scoring") == "pending":
            progress.update(task, description=escape(f"scoring run {run['id']} for assignment "
                                                     f"{run['assignment']!r} in the evaluation sandbox"))
            run = c.poll(f"/runs/{run['id']}", lambda r: r.get("scoring") == "pending", scoring_timeout)
    return run


def _spec_body(spec_file: Path) -> dict[str, Any]:
    import yaml  # lazily: CLI start
    try:
        doc = yaml.safe_load(spec_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/red] cannot read spec {spec_file}: {exc}")
        raise typer.Exit(2) from None
    return doc.get("spec", doc) if isinstance(doc, dict) else doc


# --- platform -------------------------------------------------------------------------------

@app.command()
def up(data_dir: Annotated[Path, typer.Option(help="Where the platform keeps its state.")] = DEFAULT_DATA_DIR,
       port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
       nats_url: Annotated[str | None, typer.Option(help="Use this NATS server instead of starting one.")] = None,
       ) -> None:
    """Start NATS and the five services on this machine; Ctrl-C stops them all."""
    from .supervisor import Platform

    platform = Platform(data_dir, port=port, nats_url=nats_url)
    stop = {"requested": False}

    def _stop(*_: object) -> None:
        stop["requested"] = True

    try:
        with console.status("starting NATS and the services..."):
            platform.start()
    except (RuntimeError, TimeoutError) as exc:
        platform.stop()
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Reprolab is up at [bold]{platform.url}[/bold] (API docs: {platform.url}/api/v1/docs)")
    console.print(f"Admin token: {platform.admin_token_file}   Logs: {platform.log_dir}")
    console.print("Press Ctrl-C to stop.")
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["requested"]:
            time.sleep(0.5)
            for name, proc in list(platform.procs.items()):
                if proc.poll() is not None:
                    err.print(f"[red]{name} exited with {proc.returncode}[/red]\n{platform.tail(name)}")
                    stop["requested"] = True
    finally:
        console.print("stopping...")
        platform.stop()
        console.print("stopped.")


@app.command()
def demo(data_dir: Annotated[Path, typer.Option(help="Fresh directory for the demo platform.")
                             ] = DEFAULT_DATA_DIR / "demo",
         url: Annotated[str | None, typer.Option(help="Run against this running platform instead.")] = None,
         token: Annotated[str | None, typer.Option(help="Admin token for --url.")] = None,
         keep_running: Annotated[bool | None, typer.Option(
             "--keep-running/--exit",
             help="After the story, keep the platform it started running for the portal until Ctrl-C, or stop "
                  "it and exit. Default: keep running when run from a terminal, exit otherwise (CI).")] = None,
         ) -> None:
    """The course story through the REST API: an instructor sets up "Intro to ML" with the Iris data, an
    environment and an assignment; a student forks the environment, trains locally and is scored on the
    leaderboard; the activity log is exported and verified. Ends with the portal URL and each person's
    username, password and API token."""
    from .demo import run_demo

    if keep_running is None:
        keep_running = sys.stdin.isatty() and sys.stdout.isatty()
    raise typer.Exit(run_demo(data_dir=data_dir, url=url, token=token, console=console, keep_running=keep_running))


# --- users ----------------------------------------------------------------------------------

@user_app.command("create")
def user_create(username: str, admin: Annotated[bool, typer.Option("--admin")] = False,
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Create a user; prints their API token once."""
    c = _client(url, token)
    data = c.post("/users", json={"username": username, "platform_admin": admin})
    if as_json:
        _print_json(data)
        return
    console.print(f"created {'platform admin' if admin else 'user'} [bold]{escape(data['user']['username'])}"
                  "[/bold]; their API token (shown only now):")
    print(data["token"])


@user_app.command("list")
def user_list(url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Every user (platform admins only)."""
    c = _client(url, token)
    _show(c.get("/users"), as_json, ("username", "display_name", "platform_admin", "created_at"))


@user_app.command("set-password")
def user_set_password(username: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                      password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                                            envvar="REPROLAB_NEW_PASSWORD",
                                                            help="The new password (asked when not given).")] = "",
                      ) -> None:
    """Set a user's password for the portal's sign-in (platform admins)."""
    c = _client(url, token)
    c.request("PUT", f"/users/{username}/password", json={"password": password}, expect=(204,))
    console.print(f"password of [bold]{escape(username)}[/bold] set")


@user_app.command("reset-link")
def user_reset_link(username: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                    as_json: JsonOpt = False) -> None:
    """A one-time link with which the user sets a new password (platform admins); hand it over privately."""
    data = _client(url, token).post(f"/users/{username}/password-reset")
    if as_json:
        _print_json(data)
        return
    console.print(f"reset link for [bold]{escape(username)}[/bold], valid until {data['expires_at']} (shown only now):")
    print(data["url"])


@user_app.command("end-sessions")
def user_end_sessions(username: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Sign a user out of every browser (platform admins); their API tokens keep working."""
    data = _client(url, token).request("DELETE", f"/users/{username}/sessions")
    console.print(f"ended {data['ended']} session(s) of [bold]{escape(username)}[/bold]")


# --- workspaces -----------------------------------------------------------------------------

@workspace_app.command("create")
def workspace_create(slug: str, title: Annotated[str, typer.Option()] = "",
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Create a workspace (you become its admin)."""
    c = _client(url, token)
    _show(c.post("/workspaces", json={"slug": slug, "title": title or slug}), as_json,
          ("slug", "title", "caller_role"))


@workspace_app.command("list")
def workspace_list(url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(c.get("/workspaces"), as_json, ("slug", "title", "caller_role"))


@workspace_app.command("add-member")
def workspace_add_member(workspace: str, username: str, role: str,
                         url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                         as_json: JsonOpt = False) -> None:
    """Add USERNAME to WORKSPACE as admin, instructor or student."""
    c = _client(url, token)
    _show(c.post(f"/workspaces/{workspace}/members", json={"username": username, "role": role}),
          as_json, ("username", "role"))


@workspace_app.command("members")
def workspace_members(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                      as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/members"), as_json, ("username", "role", "added_at"))


workspace_app.command("quotas")(workspace_quotas)


# --- environments ---------------------------------------------------------------------------

ENV_COLUMNS = ("name", "kind", "owner", "latest_version", "forked_from")
VERSION_COLUMNS = ("number", "origin", "parent", "spec_digest", "created_by", "created_at")


@env_app.command("create")
def env_create(workspace: str, name: str, spec: Annotated[Path, typer.Option(help="YAML or JSON spec file.")],
               description: str = "", url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
               as_json: JsonOpt = False) -> None:
    """Create an environment from a spec file."""
    c = _client(url, token)
    body = {"name": name, "description": description, "spec": _spec_body(spec)}
    _show(c.post(f"/workspaces/{workspace}/environments", json=body), as_json, ENV_COLUMNS)


@env_app.command("list")
def env_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False,
             archived: Annotated[bool, typer.Option("--archived", help="Include archived environments.")] = False,
             ) -> None:
    c = _client(url, token)
    params = {"archived": "true"} if archived else None
    _show(c.get(f"/workspaces/{workspace}/environments", params=params), as_json,
          (*ENV_COLUMNS, "archived_at") if archived else ENV_COLUMNS)


@env_app.command("archive")
def env_archive(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                as_json: JsonOpt = False) -> None:
    """Hide an environment from lists and run forms; every version stays reproducible (restore undoes it)."""
    _show(_client(url, token).post(f"/workspaces/{workspace}/environments/{name}/archive"), as_json,
          (*ENV_COLUMNS, "archived_at"))


@env_app.command("restore")
def env_restore(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                as_json: JsonOpt = False) -> None:
    """Bring an archived environment back to lists and run forms."""
    _show(_client(url, token).post(f"/workspaces/{workspace}/environments/{name}/restore"), as_json, ENV_COLUMNS)


@env_app.command("delete")
def env_delete(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Delete an environment and its versions; refused (naming them) while an assignment, fork or run uses it."""
    _client(url, token).request("DELETE", f"/workspaces/{workspace}/environments/{name}", expect=(204,))
    typer.echo(f"deleted environment {workspace}/{name}")


@env_app.command("show")
def env_show(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False) -> None:
    """An environment and its latest version's spec."""
    import yaml  # lazily: CLI start
    c = _client(url, token)
    data = c.get(f"/workspaces/{workspace}/environments/{name}")
    if as_json:
        _print_json(data)
        return
    _show(data, False, ENV_COLUMNS)
    console.print(yaml.safe_dump(data.get("latest", {}).get("spec", {}), sort_keys=False), markup=False,
                  highlight=False)


@env_app.command("versions")
def env_versions(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Version history with lineage."""
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/environments/{name}/versions"), as_json, VERSION_COLUMNS)


@env_app.command("new-version")
def env_new_version(workspace: str, name: str, spec: Annotated[Path, typer.Option()], note: str = "",
                    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    body = {"spec": _spec_body(spec), "note": note}
    _show(c.post(f"/workspaces/{workspace}/environments/{name}/versions", json=body), as_json,
          VERSION_COLUMNS)


@env_app.command("rollback")
def env_rollback(workspace: str, name: str, to: int, url: UrlOpt = "http://127.0.0.1:8080",
                 token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Make a new version equal to version TO (history is never rewritten)."""
    c = _client(url, token)
    _show(c.post(f"/workspaces/{workspace}/environments/{name}/versions", json={"rollback_to": to}), as_json,
          VERSION_COLUMNS)


@env_app.command("fork")
def env_fork(workspace: str, name: str, new_name: Annotated[str | None, typer.Option("--name")] = None,
             version: Annotated[int, typer.Option(help="Version to fork (0: the latest).")] = 0,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Fork an environment into one of your own."""
    c = _client(url, token)
    # the API takes the latest when no version is named (0 is not a version: it would be refused)
    body: dict[str, Any] = {"version": version} if version else {}
    if new_name:
        body["name"] = new_name
    _show(c.post(f"/workspaces/{workspace}/environments/{name}/fork", json=body), as_json,
          ENV_COLUMNS)


@env_app.command("build")
def env_build(workspace: str, name: str, version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
              follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f/-F",
                                                   help="Stream the build log under a progress bar until it ends; "
                                                        "--no-follow: return once the build is queued.")] = True,
              url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Lock a version's spec and build its image; prints the pull reference. Exit 1 if the build fails."""
    c = _client(url, token)
    number = version or c.get(f"/workspaces/{workspace}/environments/{name}")["latest_version"]
    with err.status(f"locking {workspace}/{name} v{number} (resolving packages)..."):
        build = c.post(f"/workspaces/{workspace}/environments/{name}/versions/{number}/builds",
                       expect=(200, 201, 202))
    if follow and build["status"] in ("queued", "running"):
        build = _follow_build(c, build, quiet=as_json)
    _show(build, as_json, BUILD_COLUMNS)
    if build["status"] == "failed":
        raise typer.Exit(1)


BUILD_COLUMNS = ("id", "environment", "version", "status", "pull", "error")


@env_app.command("logs")
def env_logs(build_id: str, follow: Annotated[bool, typer.Option("--follow", "-f",
                                                                 help="Keep streaming until the build ends.")] = False,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """A build's log (its id is printed by `env build`); live with --follow."""
    c = _client(url, token)
    for line in c.sse(f"/builds/{build_id}/logs", until_idle=not follow):
        typer.echo(line)
    if follow and c.end_status == "failed":
        raise typer.Exit(1)


@env_app.command("build-status")
def env_build_status(build_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                     as_json: JsonOpt = False) -> None:
    """A build's status, lock and image."""
    c = _client(url, token)
    _show(c.get(f"/builds/{build_id}"), as_json, BUILD_COLUMNS)


@env_app.command("pull")
def env_pull(workspace: str, name: str, version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Load a built version's image into the local engine (podman or docker), or print how to. The
    registry is pulled from as you: your username and the API token this command uses."""
    import shutil

    from .pull_cmd import api_token, login_hint, pull_image

    c = _client(url, token)
    number = version or c.get(f"/workspaces/{workspace}/environments/{name}")["latest_version"]
    v = c.get(f"/workspaces/{workspace}/environments/{name}/versions/{number}")
    if not v.get("image_digest"):
        err.print(f"[red]error:[/red] version {number} of {name} has no image yet; "
                  f"run: reprolab env build {workspace} {name} --version {number}")
        raise typer.Exit(1)
    pinned = f"{v['image_ref'].rsplit(':', 1)[0]}@{v['image_digest']}"
    engine = shutil.which("podman") or shutil.which("docker")
    if not engine:
        username = c.get("/me")["username"] if api_token(c) else "<username>"
        console.print("No container engine here. Pull it with:\n  " + login_hint(pinned, username), markup=False)
        return
    done = pull_image(c, engine, pinned)
    if done.returncode:
        raise typer.Exit(done.returncode)
    console.print(f"pulled {pinned} (tag {v['image_ref']})")


@env_app.command("add-package")
def env_add_package(workspace: str, name: str, packages: list[str], note: str = "",
                    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A derived version: the latest spec plus Python PACKAGES (PEP 508 requirements)."""
    c = _client(url, token)
    env = c.get(f"/workspaces/{workspace}/environments/{name}")
    spec = env["latest"]["spec"]
    python = spec.setdefault("python", {})
    python["requirements"] = [*python.get("requirements", []), *packages]
    body = {"spec": spec, "note": note or f"add {', '.join(packages)}"}
    _show(c.post(f"/workspaces/{workspace}/environments/{name}/versions", json=body), as_json,
          VERSION_COLUMNS)


@env_app.command("capture")
def env_capture(workspace: str, name: str,
                container: Annotated[str, typer.Option("--container", help="The running container (podman).")],
                version: Annotated[int, typer.Option(help="The version the container runs (0: found by its "
                                                          "image's lock).")] = 0,
                submit: Annotated[bool, typer.Option("--submit", help="Create and build the derived version.")] = False,
                podman: Annotated[str, typer.Option(help="Container engine command.")] = "podman",
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Compare what is installed in a running container with its image and propose (or, with --submit,
    create and build) the derived version."""
    from .capture import capture, change_lines

    result = capture(_client(url, token), workspace=workspace, name=name, container=container, version=version,
                     submit=submit, podman=podman)
    if as_json:
        _print_json(result)
        return
    for line in change_lines(result["changes"]) or ["no changes since the image was built"]:
        console.print(line, markup=False, highlight=False)
    if submit:
        err.print(f"created and built {result['version']} ({result['build']['status']})")
    else:
        console.print_json(json.dumps(result["spec"]))


# --- datasets -------------------------------------------------------------------------------

@dataset_app.command("upload")
def dataset_upload(workspace: str, file: Path, name: str | None = None,
                   visibility: Annotated[str, typer.Option(help="public (students see it) or hidden.")] = "hidden",
                   url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Upload FILE (streamed with a progress bar; its sha256 becomes its id)."""
    c = _client(url, token)
    if not file.is_file():
        err.print(f"[red]error:[/red] {escape(str(file))} is not a file")
        raise typer.Exit(2)
    data = _upload(c, f"/workspaces/{workspace}/datasets", file, f"uploading {file.name}", as_json,
                   params={"name": name or file.name, "visibility": visibility})
    _show(data, as_json, ("name", "digest", "size", "visibility"))


@dataset_app.command("list")
def dataset_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/datasets"), as_json, ("name", "digest", "size", "visibility"))


@dataset_app.command("delete")
def dataset_delete(workspace: str, digest: str, url: UrlOpt = "http://127.0.0.1:8080",
                   token: TokenOpt = None) -> None:
    """Delete a dataset no version or assignment uses (refused, naming them, otherwise)."""
    _client(url, token).request("DELETE", f"/workspaces/{workspace}/datasets/{digest}", expect=(204,))
    typer.echo(f"deleted dataset {digest}")


@dataset_app.command("download")
def dataset_download(workspace: str, digest: str, output: Annotated[Path, typer.Option("-o", "--output")],
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Download a dataset by its digest (a progress bar on stderr)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn  # lazily: CLI start
    c = _client(url, token)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(escape(f"downloading {digest[:19]}"), total=None)

        def advance(n: int, total: int | None) -> None:
            progress.update(task, advance=n, total=total)

        n = c.download(f"/workspaces/{workspace}/datasets/{digest}/content", output, progress=advance)
    console.print(f"wrote {n} bytes to {output}")


# --- audit ----------------------------------------------------------------------------------

@audit_app.command("export")
def audit_export(workspace: str, output: Annotated[Path, typer.Option("-o", "--output")],
                 url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Download the workspace's activity log as a signed JSONL bundle."""
    c = _client(url, token)
    n = c.download(f"/workspaces/{workspace}/activity/export", output)
    console.print(f"wrote {n} bytes to {output}")


@audit_app.command("verify")
def audit_verify(bundle: Path,
                 against: Annotated[Path | None, typer.Option(
                     "--against", help="A checkpoint you kept (reprolab audit checkpoint): the bundle must extend it.")
                 ] = None,
                 key: Annotated[list[str] | None, typer.Option(
                     "--key", "--key-id",
                     help="Trust only these signing keys: verifier keys (name+hash+key) or key ids (repeatable).")
                 ] = None) -> None:
    """Verify an exported bundle offline: every leaf, the Merkle tree, every signed checkpoint and,
    with --against, that the log only grew since your checkpoint. Names the first bad line.
    Exit 0 only if it verifies."""
    from reprolab_common.auditlog import verify_bundle

    if not bundle.is_file():
        err.print(f"[red]error:[/red] {bundle} is not a file")
        raise typer.Exit(2)
    if against is not None and not against.is_file():
        err.print(f"[red]error:[/red] {against} is not a file")
        raise typer.Exit(2)
    result = verify_bundle(bundle, trusted_keys=set(key) if key else None,
                           against=against.read_bytes() if against else None)
    if result.ok:
        grew = f"; it extends your checkpoint of {result.against_size} entries" if against else ""
        console.print(f"[green]OK[/green] {bundle}: {result.entries} entries of {result.origin}, "
                      f"{result.checkpoints} signed checkpoints verified, root {result.root[:16]}…{grew}")
        return
    # the reason already names the line (and seq) of the first bad spot
    err.print(f"[red]FAILED[/red] {bundle}: {result.reason}")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(workspace: str, output: Annotated[Path, typer.Option("-o", "--output")],
                     against: Annotated[Path | None, typer.Option(
                         "--against", help="An older checkpoint you kept: fetch and check the consistency proof.")
                     ] = None,
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Save the log's newest signed checkpoint (a C2SP signed note); with --against, first prove
    that it extends the older one (RFC 9162 consistency proof, checked here)."""
    from reprolab_common import merkle, signednote
    from reprolab_common.auditlog import verify_consistency_notes

    c = _client(url, token)
    base = f"/workspaces/{workspace}/activity"
    r = c.response("GET", f"{base}/checkpoint", expect=(200,))
    note = r.text
    try:
        vkeys = [signednote.Verifier.parse(k) for k in r.headers.get("x-reprolab-verifier-keys", "").split()]
        cp, _ = signednote.open_checkpoint(note, vkeys)
    except signednote.NoteError as exc:
        err.print(f"[red]FAILED[/red] the server's checkpoint does not verify: {exc}")
        raise typer.Exit(1) from None
    if against is not None:
        old_note = against.read_text()
        try:
            old = signednote.parse_checkpoint(old_note[:old_note.rfind("\n\n") + 1])
            proof = c.get(f"{base}/proof/consistency", params={"old": old.size, "new": cp.size})
            verify_consistency_notes(old_note, note, [bytes.fromhex(h) for h in proof["hashes"]], vkeys)
        except (signednote.NoteError, merkle.ProofError, ValueError) as exc:
            err.print(f"[red]FAILED[/red] the log does not extend {against}: {exc}")
            raise typer.Exit(1) from None
        console.print(f"[green]OK[/green] the log grew from {old.size} to {cp.size} entries without changing any")
    output.write_text(note)
    console.print(f"wrote the checkpoint of {cp.origin} at size {cp.size} to {output}")


# --- runs -----------------------------------------------------------------------------------

RUN_COLUMNS = ("id", "environment", "version", "status", "target", "exit_code", "error")
SCORED_COLUMNS = ("id", "environment", "version", "status", "exit_code", "error", "assignment", "scoring", "score",
                  "score_error")


def _pack(path: Path) -> Path:
    """A directory becomes a deterministic tar.gz (sorted, no owners or times); a file is sent as is."""
    import gzip
    import io
    import tarfile
    import tempfile

    if path.is_file():
        return path
    if not path.is_dir():
        err.print(f"[red]error:[/red] {path} is neither a directory nor a .tar.gz/.zip file")
        raise typer.Exit(2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()
                        and "__pycache__" not in p.parts and ".git" not in p.parts):
            info = tarfile.TarInfo(f.relative_to(path).as_posix())
            info.size, info.mode, info.mtime = f.stat().st_size, 0o644, 0
            with open(f, "rb") as fh:
                tar.addfile(info, fh)
    out = Path(tempfile.mkstemp(suffix=".tar.gz")[1])
    out.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return out


@run_app.command("submit")
def run_submit(workspace: str, environment: str,
               command: Annotated[list[str] | None, typer.Argument(help="The command, e.g. python train.py")] = None,
               code: Annotated[Path | None, typer.Option(
                   help="A project directory (packed for you) or a .tar.gz/.zip.")] = None,
               git: Annotated[str, typer.Option(help="Run the code of this Git repository URL instead.")] = "",
               ref: Annotated[str, typer.Option(help="Branch, tag or commit of --git (default branch).")] = "",
               notebook: Annotated[str, typer.Option(help="Execute this notebook of the code top to bottom "
                                                          "instead of a command.")] = "",
               version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
               dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d",
                                                                 help="Dataset name or digest (repeatable).")] = None,
               target: str = "local", cpu: str = "1", memory: str = "1Gi", timeout: int = 600,
               network: Annotated[bool, typer.Option(help="Allow network access.")] = False,
               assignment: Annotated[str, typer.Option(help="Score the run for this assignment.")] = "",
               follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream the run's output.")] = True,
               url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Upload CODE and run COMMAND in an environment version's image; prints the outcome and metrics.

    With --follow (the default) its output streams to stderr until it ends, and with --assignment the
    command also waits for the score. Exit 1 if the run fails, times out or is cancelled."""
    if (code is None) == (not git):
        raise typer.BadParameter("give the code with either --code or --git")
    c = _client(url, token)
    body = {"environment": environment, "version": version, "command": command or [], "notebook": notebook,
            "datasets": dataset or [], "target": target, "network": network,
            "resources": {"cpu": cpu, "memory": memory, "timeout": timeout}, "assignment": assignment}
    if git:
        body["git"] = {"url": git, "ref": ref}
    else:
        body["code"] = _upload_code(c, workspace, code, quiet=as_json)["digest"]
    run = c.request("POST", f"/workspaces/{workspace}/runs", json=body, expect=(202,))
    if follow:
        run = _follow_run(c, run, quiet=as_json)
    _show_run(run, as_json)
    if run["status"] in ("failed", "timed_out", "cancelled"):
        raise typer.Exit(1)


def _show_run(run: dict[str, Any], as_json: bool) -> None:
    _show(run, as_json, SCORED_COLUMNS if run.get("assignment") else RUN_COLUMNS)
    if run.get("metrics") and not as_json:
        console.print_json(json.dumps(run["metrics"]))


@run_app.command("again")
def run_again(run_id: str,
              command: Annotated[list[str] | None, typer.Argument(help="A new command (default: the earlier one).")]
              = None,
              version: Annotated[int | None, typer.Option(help="Environment version (0: latest; default: the "
                                                               "earlier run's).")] = None,
              code: Annotated[Path | None, typer.Option(help="New code: a directory or a .tar.gz/.zip.")] = None,
              follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream the run's output.")] = True,
              url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Run an earlier run again (its code, a Git run's pinned commit, datasets and limits), optionally in
    another environment version, with new code or a new command. Exit 1 if the new run fails."""
    c = _client(url, token)
    change: dict[str, Any] = {}
    if version is not None:
        change["version"] = version
    if command:
        change["command"] = command
    if code is not None:
        change["code"] = _upload_code(c, c.get(f"/runs/{run_id}")["workspace"], code, quiet=as_json)["digest"]
    run = c.request("POST", f"/runs/{run_id}/rerun", json=change, expect=(202,))
    if follow:
        run = _follow_run(c, run, quiet=as_json)
    _show_run(run, as_json)
    if run["status"] in ("failed", "timed_out", "cancelled"):
        raise typer.Exit(1)


@run_app.command("list")
def run_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False) -> None:
    """Your runs (instructors and admins: every run of the workspace)."""
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/runs"), as_json,
          ("id", "requested_by", "environment", "status", "score"))


@run_app.command("show")
def run_show(run_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False) -> None:
    """A run: status, exit code, metrics, score and provenance (with --json)."""
    c = _client(url, token)
    _show_run(c.get(f"/runs/{run_id}"), as_json)


@run_app.command("logs")
def run_logs(run_id: str, follow: Annotated[bool, typer.Option("--follow", "-f",
                                                               help="Keep streaming until the run ends.")] = False,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """A run's stdout and stderr so far; with --follow, live until the run ends."""
    c = _client(url, token)
    run = c.get(f"/runs/{run_id}")
    if run["status"] in ("succeeded", "failed", "timed_out", "cancelled"):
        # finished: its kept logs.txt is complete (the live stream expires)
        sys.stdout.write(c.get(f"/runs/{run_id}/outputs/logs.txt").decode(errors="replace"))
        return
    for line in c.sse(f"/runs/{run_id}/logs", until_idle=not follow):
        typer.echo(line)


@run_app.command("cancel")
def run_cancel(run_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
               as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(c.post(f"/runs/{run_id}/cancel"), as_json, RUN_COLUMNS)


@run_app.command("delete")
def run_delete(run_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Delete a finished run with its outputs and log (not an assignment's submission; cancel a live one first)."""
    _client(url, token).request("DELETE", f"/runs/{run_id}", expect=(204,))
    typer.echo(f"deleted run {run_id}")


@run_app.command("outputs")
def run_outputs(run_id: str, output: Annotated[Path | None, typer.Option(
                    "-o", "--output", help="Download every output into this directory.")] = None,
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List a run's outputs (metrics.json, artifacts, logs.txt) or download them with -o DIR."""
    c = _client(url, token)
    outs = c.get(f"/runs/{run_id}/outputs")
    if output:
        for f in outs["files"]:
            dest = output / f["name"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            c.download(f"/runs/{run_id}/outputs/{f['name']}", dest)
        console.print(f"downloaded {len(outs['files'])} files into {output}")
        return
    _show(outs["files"], as_json, ("name", "size", "sha256"))


@assignment_app.command("create")
def assignment_create(workspace: str, name: str,
                      environment: Annotated[str, typer.Option(help="Environment the evaluation runs in.")],
                      evaluation: Annotated[Path, typer.Option(
                          help="The evaluation code: a directory (packed for you) or a .tar.gz/.zip.")],
                      labels: Annotated[str, typer.Option(help="Name or digest of a hidden dataset.")],
                      predictions: Annotated[str, typer.Option(
                          help="File the students' runs write under /outputs.")] = "predictions.csv",
                      metric: str = "score",
                      higher_is_better: Annotated[bool, typer.Option("--higher-is-better/--lower-is-better")] = True,
                      version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
                      title: str = "",
                      command: Annotated[list[str] | None, typer.Option(
                          "--command", help="Evaluation command argument (repeatable); "
                          "default: python3 evaluate.py")] = None,
                      url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Create an assignment: the evaluation reads /inputs/<predictions> and /data/labels and writes
    /outputs/score.json {"score": n}."""
    c = _client(url, token)
    uploaded = _upload_code(c, workspace, evaluation, quiet=as_json)
    body = {"name": name, "title": title, "environment": environment, "version": version,
            "evaluation_code": uploaded["digest"], "labels": labels, "predictions": predictions,
            "metric": metric, "higher_is_better": higher_is_better}
    if command:
        body["command"] = command
    _show(c.post(f"/workspaces/{workspace}/assignments", json=body), as_json,
          ("name", "environment", "version", "predictions", "metric", "higher_is_better"))


@assignment_app.command("list")
def assignment_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                    as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/assignments")["items"], as_json,
          ("name", "title", "environment", "version", "predictions", "metric"))


@assignment_app.command("show")
def assignment_show(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                    as_json: JsonOpt = False) -> None:
    """An assignment (students do not see its labels or evaluation code)."""
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/assignments/{name}"), as_json,
          ("name", "title", "environment", "version", "predictions", "metric", "higher_is_better"))


@assignment_app.command("leaderboard")
def assignment_leaderboard(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080",
                           token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Each member's best score, best first (equal scores: earlier first)."""
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/assignments/{name}/leaderboard")["rows"], as_json,
          ("rank", "username", "score", "run_id", "scored_at"))


app.add_typer(credentials_app, name="credentials")

def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


# --- JupyterLab sessions ----------------------------------------------------------------------------


@session_app.command("start")
def session_start(workspace: str, environment: str,
                  version: Annotated[int, typer.Option(help="0: the latest version.")] = 0,
                  wait: Annotated[bool, typer.Option(help="Wait until JupyterLab answers.")] = True,
                  url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Start JupyterLab in a built version; prints where to open it (through the platform)."""
    c = _client(url, token)
    s = c.post(f"/workspaces/{workspace}/sessions", json={"environment": environment, "version": version},
               expect=(201,))
    if wait:
        s = c.poll(f"/workspaces/{workspace}/sessions/{s['id']}", lambda x: x["status"] == "starting", timeout=900)
    if as_json:
        _print_json(s)
        return
    if s["status"] == "failed":
        typer.echo(f"session {s['id']} failed: {s['error']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"session {s['id']} {s['status']}: open {url.rstrip('/')}{s['url']}")


@session_app.command("list")
def session_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Your sessions (instructors and admins: everyone's in the workspace)."""
    c = _client(url, token)
    _show(c.get(f"/workspaces/{workspace}/sessions"), as_json,
          ("id", "owner_username", "environment", "version", "status", "last_activity", "cull_in_seconds"))


@session_app.command("stop")
def session_stop(workspace: str, session_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Stop a session; the files in your home stay for the next one."""
    c = _client(url, token)
    s = c.request("DELETE", f"/workspaces/{workspace}/sessions/{session_id}")
    if as_json:
        _print_json(s)
    else:
        typer.echo(f"session {s['id']} {s['status']}")


# --- deployed models (issue 15) ---------------------------------------------------------------------

model_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                        help="A run's model served as an Open Inference Protocol web service, its versions and keys.")
app.add_typer(model_app, name="model")
model_key_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                            help="A model's API keys (for programs calling it without a Reprolab account).")
model_app.add_typer(model_key_app, name="key")
MODEL_COLUMNS = ("name", "version", "state", "active", "run_id", "artifact", "created_by", "error")


@model_app.command("deploy")
def model_deploy(run_id: str,
                 artifact: Annotated[str, typer.Option(help="The run's output to serve: model.joblib, a .pkl, "
                                                            ".onnx or score.py.")],
                 name: Annotated[str, typer.Option(help="The model's name (default: from the artifact).")] = "",
                 wait: Annotated[bool, typer.Option(help="Wait until the version serves.")] = True,
                 url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Serve a run's output in the run's own image; a name deployed again gets a new version."""
    c = _client(url, token)
    ws = c.get(f"/runs/{run_id}")["workspace"]
    m = c.post(f"/workspaces/{ws}/models", json={"run_id": run_id, "artifact": artifact, "name": name},
               expect=(202,))
    if wait:
        m = c.poll(f"/workspaces/{ws}/models/{m['name']}/versions/{m['version']}",
                   lambda x: x["state"] == "deploying", timeout=300)
    if as_json:
        _print_json(m)
        return
    if m["state"] == "failed":
        typer.echo(f"model {m['name']} v{m['version']} failed: {m['error']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"model {m['name']} v{m['version']} {m['state']}"
               f"{' (active)' if m['active'] else ''}: {url.rstrip('/')}/serve/{ws}/{m['name']}/v2/models/{m['name']}")


@model_app.command("list")
def model_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
               as_json: JsonOpt = False) -> None:
    """Every version of every model of the workspace."""
    models = _client(url, token).get(f"/workspaces/{workspace}/models")["items"]
    if as_json:
        _print_json(models)
        return
    _show([v for m in models for v in m["versions"]], False, MODEL_COLUMNS)


@model_app.command("rollback")
def model_rollback(workspace: str, name: str, version: int, url: UrlOpt = "http://127.0.0.1:8080",
                   token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Serve VERSION at the model's stable URL."""
    m = _client(url, token).post(f"/workspaces/{workspace}/models/{name}/rollback", json={"version": version})
    if as_json:
        _print_json(m)
    else:
        typer.echo(f"model {m['name']} now serves v{m['version']}")


@model_key_app.command("create")
def model_key_create(workspace: str, name: str, label: Annotated[str, typer.Option(help="What the key is for.")] = "",
                     rate: Annotated[int, typer.Option(help="Requests per minute (0: the gateway's default).")] = 0,
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A new API key; its secret is printed this once."""
    k = _client(url, token).post(f"/workspaces/{workspace}/models/{name}/keys",
                                 json={"label": label, "rate_per_minute": rate}, expect=(201,))
    if as_json:
        _print_json(k)
    else:
        typer.echo(f"key {k['id']} ({k['prefix']}...): {k['secret']}\nkeep it now: it is not shown again")


@model_key_app.command("list")
def model_key_list(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                   as_json: JsonOpt = False) -> None:
    """The model's keys (prefix only)."""
    _show(_client(url, token).get(f"/workspaces/{workspace}/models/{name}/keys"), as_json,
          ("id", "prefix", "label", "rate_per_minute", "revoked", "created_by", "created"))


@model_key_app.command("revoke")
def model_key_revoke(workspace: str, name: str, key_id: str, url: UrlOpt = "http://127.0.0.1:8080",
                     token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key: requests with it are refused from now on."""
    k = _client(url, token).request("DELETE", f"/workspaces/{workspace}/models/{name}/keys/{key_id}")
    if as_json:
        _print_json(k)
    else:
        typer.echo(f"key {k['id']} revoked")
