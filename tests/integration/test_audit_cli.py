"""`reprolab audit checkpoint|export|verify` against the running platform: a student keeps a checkpoint,
the log grows, and both the consistency proof and the exported bundle show it only grew."""

from __future__ import annotations

from pathlib import Path

from reprolab_cli.main import app
from reprolab_common import signednote
from typer.testing import CliRunner

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}


def test_kept_checkpoint_consistency_and_offline_verify(running, course, tmp_path: Path) -> None:
    ws, (_, teacher), (_, student) = course
    cli = CliRunner()
    token = student.http.headers["Authorization"].removeprefix("Bearer ")
    common = ["--url", running.platform.url, "--token", token]

    def run(*args: str) -> tuple[int, str]:
        result = cli.invoke(app, list(args), env={"COLUMNS": "200"})
        return result.exit_code, " ".join(result.output.split())  # rich wraps long lines

    teacher.wait_activity(ws, at_least=2)
    kept = tmp_path / "kept.note"
    code, out = run("audit", "checkpoint", ws, "-o", str(kept), *common)
    assert code == 0, out
    cp = signednote.parse_checkpoint(kept.read_text().split("\n\n")[0] + "\n")
    head = cp.size
    assert head >= 2 and f"at size {head}" in out and cp.origin.endswith("/" + ws), out

    teacher.post(f"/workspaces/{ws}/environments", json={"name": "grow", "spec": SPEC})
    teacher.wait_activity(ws, at_least=head + 1)
    newer = tmp_path / "newer.note"
    code, out = run("audit", "checkpoint", ws, "-o", str(newer), "--against", str(kept), *common)
    assert code == 0 and f"grew from {head} to" in out, out

    bundle = tmp_path / "mine.jsonl"
    code, out = run("audit", "export", ws, "-o", str(bundle), *common)
    assert code == 0, out
    code, out = run("audit", "verify", str(bundle), "--against", str(kept))
    assert code == 0 and f"extends your checkpoint of {head} entries" in out, out
    code, out = run("audit", "verify", str(bundle), "--against", str(newer))
    assert code == 0, out

    # a forged "older" checkpoint (same log, root changed, signature kept) is refused both ways
    lines = kept.read_text().split("\n")
    lines[2] = "A" * 43 + "="
    forged = tmp_path / "forged.note"
    forged.write_text("\n".join(lines))
    code, out = run("audit", "verify", str(bundle), "--against", str(forged))
    assert code == 1 and "your checkpoint does not verify" in out, out
    code, out = run("audit", "checkpoint", ws, "-o", str(tmp_path / "x.note"), "--against", str(forged), *common)
    assert code == 1 and "does not extend" in out, out
    # trusting only a key that did not sign fails
    code, out = run("audit", "verify", str(bundle), "--key", "0" * 16)
    assert code == 1 and "not a trusted key" in out, out
