"""The reprolab command as a user and a script run it: `up` in the foreground, thin API commands, --json,
one-line errors with hints, following logs, offline verify."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from reprolab_cli.client import ReprolabError
from reprolab_cli.main import app
from reprolab_common.natsserver import free_port
from typer.testing import CliRunner

from .test_assignments import TRAIN, course_with_assignment  # noqa: F401 - the fixture builds a course
from .test_runs import submit

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


# --- scripts and people: --json, helpful errors, progress, following logs ---------------------------------


def _invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output and not isinstance(result.exception, ReprolabError), result.output


def test_json_outputs_parse_and_errors_are_one_line_with_a_hint(running, tmp_path: Path) -> None:
    common = ["--url", running.platform.url, "--token", running.platform.admin_token()]
    ws = f"json-{uuid.uuid4().hex[:8]}"

    def doc(*args: str):
        result = _invoke(*args, *common, "--json")
        assert result.exit_code == 0, result.output
        assert "\x1b[" not in result.stdout  # no colours
        return json.loads(result.stdout)

    made = doc("workspace", "create", ws, "--title", "JSON course")
    assert made["slug"] == ws and made["caller_role"] == "admin"
    assert ws in [w["slug"] for w in doc("workspace", "list")]
    user = doc("user", "create", f"stu-{ws}")
    assert user["user"]["username"] == f"stu-{ws}" and user["token"].startswith("rpl_")
    assert f"stu-{ws}" in [u["username"] for u in doc("user", "list")]
    assert doc("workspace", "add-member", ws, f"stu-{ws}", "student")["role"] == "student"
    assert {m["username"]: m["role"] for m in doc("workspace", "members", ws)}[f"stu-{ws}"] == "student"
    spec = tmp_path / "spec.yaml"
    spec.write_text("base: python:3.12-slim\npython:\n  version: '3.12'\n  requirements: [numpy]\n")
    assert doc("env", "create", ws, "iris", "--spec", str(spec))["latest_version"] == 1
    assert doc("env", "add-package", ws, "iris", "scipy")["number"] == 2
    shown = doc("env", "show", ws, "iris")
    assert shown["latest"]["spec"]["python"]["requirements"] == ["numpy", "scipy"]
    assert [v["number"] for v in doc("env", "versions", ws, "iris")] == [1, 2]
    data = tmp_path / "d.csv"
    data.write_bytes(b"a,b\n" + b"1,2\n" * 50_000)
    up = doc("dataset", "upload", ws, str(data), "--visibility", "public")
    assert up["digest"] == "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest() and up["size"] == 200_004
    assert [d["digest"] for d in doc("dataset", "list", ws)] == [up["digest"]]
    assert doc("run", "list", ws) == [] and doc("assignment", "list", ws) == []

    # the API's problem as one line (status, title, detail), exit 1, no traceback
    missing = _invoke("env", "show", ws, "nope", *common)
    assert missing.exit_code == 1, missing.output
    assert missing.stdout == "" and missing.stderr.startswith("error: 404 Not found:") and "nope" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    _no_traceback(missing)
    invalid = _invoke("workspace", "create", "Not A Slug!", *common)
    assert invalid.exit_code == 1 and invalid.stderr.startswith("error: 422"), invalid.output
    _no_traceback(invalid)

    # no token at all: says how to set one
    empty = tmp_path / "no-state"
    empty.mkdir()
    anonymous = _invoke("workspace", "list", "--url", running.platform.url,
                        env={"REPROLAB_DATA_DIR": str(empty), "REPROLAB_TOKEN": ""})
    assert anonymous.exit_code == 1 and "401" in anonymous.stderr, anonymous.output
    assert "hint:" in anonymous.stderr and "export REPROLAB_TOKEN=" in anonymous.stderr
    _no_traceback(anonymous)
    wrong = _invoke("workspace", "list", "--url", running.platform.url, "--token", "rpl_wrong")
    assert wrong.exit_code == 1 and "the token was refused" in wrong.stderr, wrong.output

    # usage errors exit 2
    assert _invoke("dataset", "upload", ws, str(tmp_path / "absent.csv"), *common).exit_code == 2
    assert _invoke("env", "show", ws, *common).exit_code == 2


def test_connection_refused_says_to_start_the_platform_without_a_traceback() -> None:
    port = free_port()
    done = subprocess.run([*REPROLAB, "workspace", "list", "--url", f"http://127.0.0.1:{port}", "--token", "rpl_x"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    assert f"error: cannot reach the platform at http://127.0.0.1:{port}" in done.stderr
    assert "hint: is the platform running? start it with `reprolab up`" in done.stderr


def test_run_submit_json_waits_for_the_score_and_run_logs_follow_ends_with_the_run(
        running, course_with_assignment, tmp_path: Path) -> None:  # noqa: F811
    ws, teacher, ((sname, student), _), _, _ = course_with_assignment
    token = student.http.headers["Authorization"].split()[1]
    common = ["--url", running.platform.url, "--token", token]
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)

    # the build of py v1 exists: `env build --json` joins it and prints one document
    teacher_common = ["--url", running.platform.url, "--token", teacher.http.headers["Authorization"].split()[1]]
    built = _invoke("env", "build", ws, "py", "--version", "1", "--json", *teacher_common)
    assert built.exit_code == 0, built.output
    build = json.loads(built.stdout)
    assert build["status"] == "succeeded" and build["pull"].endswith(build["image_digest"]), build
    log = _invoke("env", "logs", build["id"], *teacher_common)
    assert log.exit_code == 0 and "STEP 1/" in log.stdout, log.output
    status = _invoke("env", "build-status", build["id"], "--json", *teacher_common)
    assert json.loads(status.stdout)["id"] == build["id"]

    submitted = _invoke("run", "submit", ws, "py", "--code", str(project), "-d", "iris-train.csv",
                        "-d", "iris-test-features.csv", "--assignment", "iris", "--json", *common,
                        "--", "python3", "train.py")
    assert submitted.exit_code == 0, submitted.output
    run = json.loads(submitted.stdout)  # stdout is the JSON alone; the run's output went to stderr
    assert run["status"] == "succeeded" and run["scoring"] == "scored" and float(run["score"]) > 0.85, run
    assert run["requested_by"] == sname and run["target"] == "local"
    assert "student sees /data: ['iris-test-features.csv', 'iris-train.csv']" in submitted.stderr
    shown = _invoke("run", "show", run["id"], "--json", *common)
    assert json.loads(shown.stdout)["score"] == run["score"]
    assert [r["id"] for r in json.loads(_invoke("run", "list", ws, "--json", *common).stdout)] == [run["id"]]
    board = json.loads(_invoke("assignment", "leaderboard", ws, "iris", "--json", *common).stdout)
    assert [(r["username"], r["run_id"]) for r in board] == [(sname, run["id"])]
    finished = _invoke("run", "logs", run["id"], *common)
    assert finished.exit_code == 0 and "student sees /data" in finished.stdout, finished.output

    # a run that prints for a few seconds: `run logs -f` streams it and returns when it ends
    slow = submit(student, ws, {"slow.py": "import time\nfor i in range(8):\n    print('tick', i, flush=True)\n"
                                           "    time.sleep(0.5)\n"}, ["python3", "slow.py"])
    started = time.monotonic()
    followed = _invoke("run", "logs", slow["id"], "-f", *common)
    assert followed.exit_code == 0, followed.output
    assert [line for line in followed.stdout.splitlines() if line.startswith("tick")] == [
        f"tick {i}" for i in range(8)], followed.stdout
    assert student.get(f"/runs/{slow['id']}")["status"] == "succeeded"  # it ended because the run did
    assert time.monotonic() - started < 120

    # a failing run: exit 1, and the reason is shown
    failing = _invoke("run", "submit", ws, "py", "--code", str(project), *common, "--", "python3", "-c",
                      "raise SystemExit(3)")
    assert failing.exit_code == 1 and "failed" in failing.stdout, failing.output
