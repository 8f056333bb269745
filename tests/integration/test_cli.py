"""The reprolab command as a user runs it: `up` in the foreground, thin API commands, offline verify."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from reprolab_cli.main import app
from reprolab_common.natsserver import free_port
from typer.testing import CliRunner

REPROLAB = [sys.executable, "-m", "reprolab_cli.main"]


def test_up_starts_everything_writes_the_token_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "state"
    proc = subprocess.Popen([*REPROLAB, "up", "--data-dir", str(data), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 90
        out = ""
        while "Press Ctrl-C" not in out:
            assert proc.poll() is None, out + proc.stdout.read()
            assert time.monotonic() < deadline, out
            out += proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in out
        token = (data / "admin-token").read_text().strip()
        assert token.startswith("rpl_") and oct((data / "admin-token").stat().st_mode)[-3:] == "600"
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["username"] == "admin"
        children = _children(proc.pid)
        assert len(children) >= 6, children  # nats-server + five services
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    assert not [pid for pid in children if _alive(pid)], "a child outlived reprolab up"
    assert {p.name for p in data.iterdir()} >= {"registry.db", "audit.db", "gateway.db", "nats", "logs"}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_thin_commands_and_offline_verify(running, tmp_path: Path) -> None:
    cli = CliRunner()
    common = ["--url", running.platform.url, "--token", running.platform.admin_token()]
    ws = f"cli-{os.getpid()}-{running.backend}"

    def ok(*args: str) -> str:
        result = cli.invoke(app, list(args), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    ok("workspace", "create", ws, "--title", "CLI course", *common)
    assert ws in ok("workspace", "list", *common)
    spec = tmp_path / "spec.yaml"
    spec.write_text("base: python:3.12-slim\npython:\n  version: '3.12'\n  requirements: [numpy]\n")
    ok("env", "create", ws, "iris", "--spec", str(spec), *common)
    spec.write_text("base: python:3.12-slim\npython:\n  version: '3.12'\n  requirements: [numpy, scipy]\n")
    ok("env", "new-version", ws, "iris", "--spec", str(spec), *common)
    ok("env", "rollback", ws, "iris", "1", *common)
    versions = ok("env", "versions", ws, "iris", "--json", *common)
    assert [int(n) for n in re.findall(r'"number": (\d+)', versions)] == [1, 2, 3]
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    up = ok("dataset", "upload", ws, str(data), "--visibility", "public", "--json", *common)
    digest = re.search(r'"digest": "(sha256:[0-9a-f]{64})"', up).group(1)
    ok("dataset", "download", ws, digest, "-o", str(tmp_path / "back.csv"), *common)
    assert (tmp_path / "back.csv").read_bytes() == data.read_bytes()

    bad = cli.invoke(app, ["env", "create", ws, "bad", "--spec", str(spec), "--url", running.platform.url,
                           "--token", "rpl_wrong"])
    assert bad.exit_code == 1 and "401" in bad.output

    running.admin.wait_activity(ws, at_least=6)
    bundle = tmp_path / "a.jsonl"
    ok("audit", "export", ws, "-o", str(bundle), *common)
    assert "OK" in ok("audit", "verify", str(bundle))
    lines = bundle.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"environment.created"' in line)
    lines[at] = lines[at].replace('"iris"', '"irix"', 1)
    assert lines[at] != bundle.read_text().splitlines()[at]
    tampered = tmp_path / "t.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    result = cli.invoke(app, ["audit", "verify", str(tampered)])
    assert result.exit_code == 1 and f"line {at + 1}" in result.output, result.output
    result = cli.invoke(app, ["audit", "verify", str(bundle), "--key-id", "0" * 16])
    assert result.exit_code == 1, result.output
