"""``reprolab workspace quotas``: a workspace's quotas (concurrent runs, storage) and what it uses now.

Without options it shows them; with options an instructor changes the limits named (the others stay).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from .client import connect as _client

UrlOpt = Annotated[str, typer.Option("--url", envvar="REPROLAB_URL", help="Gateway URL.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="REPROLAB_TOKEN", help="API token.")]
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
          "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """'10GiB' → 10737418240, '500MB' → 500000000, '0' → 0 (no limit)."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size; write e.g. 10GiB, 500MB or 0 (no limit)")
    return int(float(m.group(1)) * _UNITS[unit])


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def _limit(n: int, text: str | None = None) -> str:
    return "no limit" if not n else (text or str(n))


def describe(q: dict[str, Any]) -> str:
    """The quotas in plain words, as the portal says them."""
    lim, use = q["limits"], q["usage"]
    lines = [
        f"concurrent runs: {use['concurrent']} going of {_limit(lim['max_concurrent_runs'])} "
        f"({use['runs']} runs, {use['sessions']} sessions, {use['model_servers']} model servers)",
        f"per member: {_limit(lim['max_concurrent_runs_per_member'])} (yours going now: {use['yours']})",
        f"storage: {size_text(use['storage_bytes'])} used of "
        f"{_limit(lim['max_storage_bytes'], size_text(lim['max_storage_bytes']))} "
        f"(datasets {size_text(use['dataset_bytes'])}, run outputs {size_text(use['output_bytes'])})",
    ]
    return "\n".join(lines)


def workspace_quotas(
    workspace: str,
    concurrent_runs: Annotated[int | None, typer.Option("--concurrent-runs", min=0, help=(
        "Runs, sessions and model servers at once in the workspace (0: no limit)."))] = None,
    per_member: Annotated[int | None, typer.Option("--per-member", min=0, help=(
        "Runs and sessions one member may have going at once (0: no limit)."))] = None,
    storage: Annotated[str | None, typer.Option("--storage", help=(
        "Datasets + kept run outputs, e.g. 10GiB or 500MB (0: no limit)."))] = None,
    url: UrlOpt = "http://127.0.0.1:8080", token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Show WORKSPACE's quotas and usage; instructors change them with the options."""
    c = _client(url, token)
    path = f"/workspaces/{workspace}/quotas"
    q = c.get(path)
    if concurrent_runs is not None or per_member is not None or storage is not None:
        body = dict(q["limits"])
        if concurrent_runs is not None:
            body["max_concurrent_runs"] = concurrent_runs
        if per_member is not None:
            body["max_concurrent_runs_per_member"] = per_member
        if storage is not None:
            body["max_storage_bytes"] = parse_size(storage)
        q = c.request("PUT", path, json=body)
    typer.echo(json.dumps(q, indent=2) if as_json else describe(q))
