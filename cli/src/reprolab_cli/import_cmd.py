"""``reprolab env import WS DIR --name ENV``: bring a Binder-ready repository in as an environment.

The folder is packed here (tar.gz, without ``.git``) and uploaded; the platform detects its
configuration as repo2docker does and answers with the spec it made, the files it read and what it
could only approximate. ``--build`` builds the new environment right away.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .client import ReprolabError
from .client import connect as _client

err = Console(stderr=True)
SKIPPED = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"}


def pack(folder: Path, dest: Path) -> int:
    """A tar.gz of FOLDER's regular files (links skipped: the platform refuses them), executable bits kept."""
    count = 0
    with tarfile.open(dest, "w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED)
            for filename in sorted(filenames):
                full = Path(dirpath) / filename
                if full.is_symlink() or not full.is_file():
                    continue
                info = tar.gettarinfo(str(full), arcname=full.relative_to(folder).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(full, "rb") as fh:
                    tar.addfile(info, io.BytesIO(fh.read()))
                count += 1
    return count


def env_import(
    workspace: str,
    folder: Annotated[Path, typer.Argument(help="The repository's folder (its binder/ or .binder/ is honoured).",
                                           exists=True, file_okay=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="The new environment's name (default: the folder's).")] = "",
    base: Annotated[str, typer.Option(help="Base image (default: the platform's import base).")] = "",
    strict: Annotated[bool, typer.Option(help="Refuse anything that maps only approximately.")] = False,
    build: Annotated[bool, typer.Option("--build", help="Build the new environment's first version.")] = False,
    url: Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as one JSON document.")] = False,
) -> None:
    """Import a Binder-ready repository (requirements.txt, environment.yml, Pipfile, apt.txt, postBuild, ...)."""
    from .main import env_build  # the build command's own follow/progress logic

    c = _client(url, token)
    env_name = name or folder.resolve().name.lower().replace("_", "-")[:54]
    with tempfile.TemporaryDirectory(prefix="reprolab-import-") as tmp:
        archive = Path(tmp) / "repository.tar.gz"
        count = pack(folder, archive)
        if not count:
            raise ReprolabError(f"{folder} holds no files to import")
        params = {"name": env_name, "strict": str(strict).lower()}
        if base:
            params["base"] = base
        result = c.upload(f"/workspaces/{workspace}/environments/import", archive, params=params,
                          content_type="application/gzip")
    if as_json and not build:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    detected = result["detected"]
    out = err if as_json else Console()
    out.print(f"imported {workspace}/{escape(env_name)} ({detected['buildpack']} pack, "
              f"{'binder folder ' + detected['binder_dir'] if detected['binder_dir'] else 'repository root'})",
              highlight=False)
    out.print("read: " + (", ".join(detected["files"]) or "no configuration file"), highlight=False)
    for note in detected["notes"]:
        out.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    if not detected["bit_reproducible"]:
        out.print("[yellow]build steps run arbitrary commands: the image is not guaranteed bit-reproducible "
                  "(its lock says why)[/yellow]", highlight=False)
    if build:
        env_build(workspace, env_name, version=1, follow=True, url=url, token=token, as_json=as_json)


def _download_version_file(url: str, token: str | None, workspace: str, name: str, version: int,
                           output: Path | None, resource: str, default_name: str) -> tuple[Path, int, int]:
    """Download ``.../versions/{n}/{resource}`` of a version (0: the latest) → (file, bytes, n)."""
    c = _client(url, token)
    number = version or c.get(f"/workspaces/{workspace}/environments/{name}")["latest_version"]
    dest = output or Path(default_name.format(name=name, n=number))
    size = c.download(f"/workspaces/{workspace}/environments/{name}/versions/{number}/{resource}", dest)
    return dest, size, number


def env_export_binder(
    workspace: str,
    name: str,
    version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Zip file to write (default: "
                                                "<env>-v<n>-binder.zip).")] = None,
    url: Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")] = None,
) -> None:
    """Download a built version as a Binder-ready folder (zip): requirements.txt with hashes, apt.txt,
    runtime.txt, postBuild, and an imported repository's files. repo2docker builds it as it is."""
    dest, size, number = _download_version_file(url, token, workspace, name, version, output, "binder",
                                                "{name}-v{n}-binder.zip")
    err.print(f"wrote {dest} ({size} bytes): a Binder-ready folder of {workspace}/{escape(name)} v{number}",
              highlight=False)


def env_download_image(
    workspace: str,
    name: str,
    version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Archive to write (default: "
                                                "<env>-v<n>.oci.tar).")] = None,
    url: Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")] = None,
) -> None:
    """Download a built version's image as an OCI archive, for machines with no network:
    `podman load -i FILE` (or `docker load -i FILE`)."""
    dest, size, _ = _download_version_file(url, token, workspace, name, version, output, "image.tar",
                                           "{name}-v{n}.oci.tar")
    # soft_wrap: the command stays on one line, to be copied
    err.print(f"wrote {dest} ({size} bytes); load it with: podman load -i {dest}", highlight=False, soft_wrap=True)


def env_export_renv(
    workspace: str,
    name: str,
    version: Annotated[int, typer.Option(help="Version (0: latest).")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: "
                                                "<env>-v<n>-renv.lock).")] = None,
    url: Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")] = None,
) -> None:
    """Download a built version's R packages as an renv.lock (R version, repository, exact package
    versions): `renv::restore()` installs them; importing it gives the same lock."""
    dest, size, number = _download_version_file(url, token, workspace, name, version, output, "renv.lock",
                                                "{name}-v{n}-renv.lock")
    err.print(f"wrote {dest} ({size} bytes): the R packages of {workspace}/{escape(name)} v{number}", highlight=False)
