"""The ``reprolab`` command: run the platform (``up``), tell its story (``demo``), talk to its API."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from .client import ApiError, Client

app = typer.Typer(help="Reprolab: reproducible environments for courses and research groups.",
                  no_args_is_help=True, add_completion=False)
workspace_app = typer.Typer(help="Workspaces and their members.", no_args_is_help=True)
env_app = typer.Typer(help="Environments and their versions.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets.", no_args_is_help=True)
audit_app = typer.Typer(help="The activity log: export and verify.", no_args_is_help=True)
user_app = typer.Typer(help="Users and API tokens (platform admins).", no_args_is_help=True)
run_app = typer.Typer(help="Run code in an environment's image against datasets.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(env_app, name="env")
app.add_typer(dataset_app, name="dataset")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.add_typer(run_app, name="run")
assignment_app = typer.Typer(help="Assignments (evaluation code + hidden labels) and leaderboards.",
                             no_args_is_help=True)
app.add_typer(assignment_app, name="assignment")

console = Console()
err = Console(stderr=True)

DEFAULT_DATA_DIR = Path(".reprolab")
UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN",
                                              help="API token (default: <data-dir>/admin-token).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]


def _client(url: str, token: str | None) -> Client:
    if not token:
        token_file = Path(os.environ.get("REPROLAB_DATA_DIR", DEFAULT_DATA_DIR)) / "admin-token"
        if token_file.exists():
            token = token_file.read_text().strip()
    return Client(url, token)


def _show(data: Any, as_json: bool, columns: tuple[str, ...] = ()) -> None:
    if as_json or not columns:
        console.print_json(json.dumps(data))
        return
    items = data.get("items", data) if isinstance(data, dict) else data
    rows = items if isinstance(items, list) else [items]
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def _run(fn: Any) -> Any:
    try:
        return fn()
    except ApiError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _spec_body(spec_file: Path) -> dict[str, Any]:
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
         token: Annotated[str | None, typer.Option(help="Admin token for --url.")] = None) -> None:
    """Run the course scenario through the REST API and verify the exported activity log."""
    from .demo import run_demo

    raise typer.Exit(run_demo(data_dir=data_dir, url=url, token=token, console=console))


# --- users ----------------------------------------------------------------------------------

@user_app.command("create")
def user_create(username: str, admin: Annotated[bool, typer.Option("--admin")] = False,
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Create a user; prints their API token once."""
    c = _client(url, token)
    data = _run(lambda: c.post("/users", json={"username": username, "platform_admin": admin}))
    _show(data, True)


# --- workspaces -----------------------------------------------------------------------------

@workspace_app.command("create")
def workspace_create(slug: str, title: Annotated[str, typer.Option()] = "",
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Create a workspace (you become its admin)."""
    c = _client(url, token)
    _show(_run(lambda: c.post("/workspaces", json={"slug": slug, "title": title or slug})), as_json,
          ("slug", "title", "caller_role"))


@workspace_app.command("list")
def workspace_list(url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.get("/workspaces")), as_json, ("slug", "title", "caller_role"))


@workspace_app.command("add-member")
def workspace_add_member(workspace: str, username: str, role: str,
                         url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                         as_json: JsonOpt = False) -> None:
    """Add USERNAME to WORKSPACE as admin, instructor or student."""
    c = _client(url, token)
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/members", json={"username": username, "role": role})),
          as_json, ("username", "role"))


@workspace_app.command("members")
def workspace_members(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                      as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/members")), as_json, ("username", "role", "added_at"))


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
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/environments", json=body)), as_json, ENV_COLUMNS)


@env_app.command("list")
def env_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/environments")), as_json, ENV_COLUMNS)


@env_app.command("versions")
def env_versions(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Version history with lineage."""
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/environments/{name}/versions")), as_json, VERSION_COLUMNS)


@env_app.command("new-version")
def env_new_version(workspace: str, name: str, spec: Annotated[Path, typer.Option()], note: str = "",
                    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    body = {"spec": _spec_body(spec), "note": note}
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/environments/{name}/versions", json=body)), as_json,
          VERSION_COLUMNS)


@env_app.command("rollback")
def env_rollback(workspace: str, name: str, to: int, url: UrlOpt = "http://127.0.0.1:8080",
                 token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Make a new version equal to version TO (history is never rewritten)."""
    c = _client(url, token)
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/environments/{name}/versions",
                              json={"rollback_to": to})), as_json, VERSION_COLUMNS)


@env_app.command("fork")
def env_fork(workspace: str, name: str, new_name: Annotated[str | None, typer.Option("--name")] = None,
             version: int = 0, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
             as_json: JsonOpt = False) -> None:
    """Fork an environment into one of your own."""
    c = _client(url, token)
    body: dict[str, Any] = {"version": version}
    if new_name:
        body["name"] = new_name
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/environments/{name}/fork", json=body)), as_json,
          ENV_COLUMNS)


@env_app.command("build")
def env_build(workspace: str, name: str, version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
              follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream the build log.")] = True,
              url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Lock a version's spec and build its image; prints the pull reference."""
    c = _client(url, token)
    number = version or _run(lambda: c.get(f"/workspaces/{workspace}/environments/{name}"))["latest_version"]
    with console.status(f"locking {workspace}/{name} v{number} (resolving packages)..."):
        build = _run(lambda: c.post(f"/workspaces/{workspace}/environments/{name}/versions/{number}/builds",
                                    expect=(200, 201, 202)))
    if follow and build["status"] in ("queued", "running"):
        for line in c.sse(f"/builds/{build['id']}/logs"):
            err.print(line, markup=False, highlight=False)
        build = _run(lambda: c.get(f"/builds/{build['id']}"))
    _show(build, as_json, ("id", "status", "pull", "error"))
    if build["status"] == "failed":
        raise typer.Exit(1)


@env_app.command("pull")
def env_pull(workspace: str, name: str, version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Load a built version's image into the local engine (podman or docker), or print how to."""
    import shutil
    import subprocess

    c = _client(url, token)
    number = version or _run(lambda: c.get(f"/workspaces/{workspace}/environments/{name}"))["latest_version"]
    v = _run(lambda: c.get(f"/workspaces/{workspace}/environments/{name}/versions/{number}"))
    if not v.get("image_digest"):
        err.print(f"[red]error:[/red] version {number} of {name} has no image yet; "
                  f"run: reprolab env build {workspace} {name} --version {number}")
        raise typer.Exit(1)
    pinned = f"{v['image_ref'].rsplit(':', 1)[0]}@{v['image_digest']}"
    engine = shutil.which("podman") or shutil.which("docker")
    loopback = pinned.startswith(("127.", "localhost"))
    cmd = [engine or "podman", "pull", *(["--tls-verify=false"] if loopback and engine and "podman" in engine
                                         else []), pinned]
    if not engine:
        console.print("No container engine here. Pull it with:\n  " + " ".join(cmd))
        return
    done = subprocess.run(cmd)
    if done.returncode:
        raise typer.Exit(done.returncode)
    console.print(f"pulled {pinned} (tag {v['image_ref']})")


@env_app.command("add-package")
def env_add_package(workspace: str, name: str, packages: list[str], note: str = "",
                    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A derived version: the latest spec plus Python PACKAGES (PEP 508 requirements)."""
    c = _client(url, token)
    env = _run(lambda: c.get(f"/workspaces/{workspace}/environments/{name}"))
    spec = env["latest"]["spec"]
    python = spec.setdefault("python", {})
    python["requirements"] = [*python.get("requirements", []), *packages]
    body = {"spec": spec, "note": note or f"add {', '.join(packages)}"}
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/environments/{name}/versions", json=body)), as_json,
          VERSION_COLUMNS)


# --- datasets -------------------------------------------------------------------------------

@dataset_app.command("upload")
def dataset_upload(workspace: str, file: Path, name: str | None = None,
                   visibility: Annotated[str, typer.Option(help="public (students see it) or hidden.")] = "hidden",
                   url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Upload FILE (streamed; its sha256 becomes its id)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    c = _client(url, token)
    if not file.is_file():
        err.print(f"[red]error:[/red] {file} is not a file")
        raise typer.Exit(2)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
        data = _run(lambda: c.upload(f"/workspaces/{workspace}/datasets", file,
                                     {"name": name or file.name, "visibility": visibility},
                                     progress=lambda n: progress.advance(task, n)))
    _show(data, as_json, ("name", "digest", "size", "visibility"))


@dataset_app.command("list")
def dataset_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                 as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/datasets")), as_json, ("name", "digest", "size", "visibility"))


@dataset_app.command("download")
def dataset_download(workspace: str, digest: str, output: Annotated[Path, typer.Option("-o", "--output")],
                     url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    c = _client(url, token)
    n = _run(lambda: c.download(f"/workspaces/{workspace}/datasets/{digest}/content", output))
    console.print(f"wrote {n} bytes to {output}")


# --- audit ----------------------------------------------------------------------------------

@audit_app.command("export")
def audit_export(workspace: str, output: Annotated[Path, typer.Option("-o", "--output")],
                 url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """Download the workspace's activity log as a signed JSONL bundle."""
    c = _client(url, token)
    n = _run(lambda: c.download(f"/workspaces/{workspace}/activity/export", output))
    console.print(f"wrote {n} bytes to {output}")


@audit_app.command("verify")
def audit_verify(bundle: Path, key_id: Annotated[list[str] | None, typer.Option(
        "--key-id", help="Trust only these signing key ids (repeatable).")] = None) -> None:
    """Verify an exported bundle offline; names the first bad entry. Exit 0 only if it verifies."""
    from reprolab_common.auditlog import verify_bundle

    if not bundle.is_file():
        err.print(f"[red]error:[/red] {bundle} is not a file")
        raise typer.Exit(2)
    result = verify_bundle(bundle, trusted_key_ids=set(key_id) if key_id else None)
    if result.ok:
        console.print(f"[green]OK[/green] {bundle}: {result.entries} entries of workspace {result.workspace!r}, "
                      f"{result.checkpoints} signed checkpoints verified")
        return
    # the reason already names the line (and seq) of the first bad spot
    err.print(f"[red]FAILED[/red] {bundle}: {result.reason}")
    raise typer.Exit(1)


# --- runs -----------------------------------------------------------------------------------

RUN_COLUMNS = ("id", "status", "target", "exit_code", "error")


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
def run_submit(workspace: str, environment: str, code: Annotated[Path, typer.Option(
                   help="A project directory (packed for you) or a .tar.gz/.zip.")],
               command: Annotated[list[str], typer.Argument(help="The command, e.g. python train.py")],
               version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
               dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d",
                                                                 help="Dataset name or digest (repeatable).")] = None,
               target: str = "local", cpu: str = "1", memory: str = "1Gi", timeout: int = 600,
               network: Annotated[bool, typer.Option(help="Allow network access.")] = False,
               assignment: Annotated[str, typer.Option(help="Score the run for this assignment.")] = "",
               follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream the run's output.")] = True,
               url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Upload CODE and run COMMAND in an environment version's image; prints the outcome and metrics."""
    c = _client(url, token)
    archive = _pack(code)
    with console.status(f"uploading {code}..."):
        uploaded = _run(lambda: c.request("POST", f"/workspaces/{workspace}/code",
                                          content=archive.read_bytes(), expect=(201,)))
    body = {"environment": environment, "version": version, "code": uploaded["digest"], "command": command,
            "datasets": dataset or [], "target": target, "network": network,
            "resources": {"cpu": cpu, "memory": memory, "timeout": timeout}, "assignment": assignment}
    run = _run(lambda: c.request("POST", f"/workspaces/{workspace}/runs", json=body, expect=(202,)))
    if follow:
        for line in c.sse(f"/runs/{run['id']}/logs"):
            err.print(line, markup=False, highlight=False)
        run = _run(lambda: c.get(f"/runs/{run['id']}"))
    _show(run, as_json, RUN_COLUMNS)
    if run.get("metrics") and not as_json:
        console.print_json(json.dumps(run["metrics"]))
    if run["status"] in ("failed", "timed_out", "cancelled"):
        raise typer.Exit(1)


@run_app.command("logs")
def run_logs(run_id: str, follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
             url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None) -> None:
    """A run's stdout and stderr (live with --follow)."""
    c = _client(url, token)
    if follow:
        for line in c.sse(f"/runs/{run_id}/logs"):
            console.print(line, markup=False, highlight=False)
        return
    console.print(_run(lambda: c.get(f"/runs/{run_id}/outputs/logs.txt")).decode(errors="replace"),
                  markup=False, highlight=False)


@run_app.command("cancel")
def run_cancel(run_id: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
               as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.post(f"/runs/{run_id}/cancel")), as_json, RUN_COLUMNS)


@run_app.command("outputs")
def run_outputs(run_id: str, output: Annotated[Path | None, typer.Option(
                    "-o", "--output", help="Download every output into this directory.")] = None,
                url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List a run's outputs (metrics.json, artifacts, logs.txt) or download them with -o DIR."""
    c = _client(url, token)
    outs = _run(lambda: c.get(f"/runs/{run_id}/outputs"))
    if output:
        for f in outs["files"]:
            dest = output / f["name"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            _run(lambda f=f, dest=dest: c.download(f"/runs/{run_id}/outputs/{f['name']}", dest))
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
    archive = _pack(evaluation)
    uploaded = _run(lambda: c.request("POST", f"/workspaces/{workspace}/code", content=archive.read_bytes(),
                                      expect=(201,)))
    body = {"name": name, "title": title, "environment": environment, "version": version,
            "evaluation_code": uploaded["digest"], "labels": labels, "predictions": predictions,
            "metric": metric, "higher_is_better": higher_is_better}
    if command:
        body["command"] = command
    _show(_run(lambda: c.post(f"/workspaces/{workspace}/assignments", json=body)), as_json,
          ("name", "environment", "version", "predictions", "metric", "higher_is_better"))


@assignment_app.command("list")
def assignment_list(workspace: str, url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
                    as_json: JsonOpt = False) -> None:
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/assignments"))["items"], as_json,
          ("name", "title", "environment", "version", "predictions", "metric"))


@assignment_app.command("leaderboard")
def assignment_leaderboard(workspace: str, name: str, url: UrlOpt = "http://127.0.0.1:8080",
                           token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Each member's best score, best first (equal scores: earlier first)."""
    c = _client(url, token)
    _show(_run(lambda: c.get(f"/workspaces/{workspace}/assignments/{name}/leaderboard"))["rows"], as_json,
          ("rank", "username", "score", "run_id", "scored_at"))


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
