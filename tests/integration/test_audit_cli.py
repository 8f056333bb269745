"""`reprolab audit checkpoint|export|verify` against the running platform: a student keeps a checkpoint,
the log grows, and both the consistency proof and the exported bundle show it only grew. Also the route
``reprolab activity sync`` posts to, fed a chain written by the in-image agent's own code."""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from pathlib import Path

import pytest
from reprolab_cli.client import ApiError
from reprolab_cli.main import app
from reprolab_common import signednote
from typer.testing import CliRunner

AGENT_SOURCE = Path(__file__).parents[2] / "services/builder/src/reprolab_builder/agent/agent.py"

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


def test_agent_chain_sync_is_checked_and_stored_once(running, course, tmp_path: Path) -> None:
    ws, (_, teacher), (sname, student) = course
    spec = importlib.util.spec_from_file_location("reprolab_agent_for_sync", AGENT_SOURCE)
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)  # type: ignore[union-attr]
    # a float in the details: the platform must hash it exactly as the agent's json.dumps does
    agent.append(str(tmp_path), "install", {"tool": "pip", "exit": 0, "ratio": 0.1 + 0.2})
    entries = agent.read_entries(str(tmp_path / "activity.jsonl"))
    assert [e["kind"] for e in entries] == ["chain.started", "install"]
    path = f"/workspaces/{ws}/activity/agent"

    assert student.post(path, json={"entries": entries}) == {"chain": entries[0]["chain"], "entries": 2,
                                                              "published": 2}
    tampered = copy.deepcopy(entries)
    tampered[1]["details"]["exit"] = 1
    for body, why in [({"entries": tampered}, "entry 2: its hash does not match its content"),
                      ({"entries": entries[1:]}, "entry 1: wrong chain id or sequence number"),
                      ({"entries": []}, "entries must be a non-empty list"),
                      ([entries], "must be a JSON object")]:
        with pytest.raises(ApiError) as err:
            student.post(path, json=body)
        assert err.value.status == 422 and why in err.value.problem["detail"], err.value.problem

    assert student.post(path, json={"entries": entries})["published"] == 2  # sent again: stored once
    deadline = time.monotonic() + 30
    while True:
        items = teacher.get(f"/workspaces/{ws}/activity", params={"limit": 1000, "type": "agent.install"})["items"]
        if items or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    time.sleep(1.5)  # give a second copy time to arrive, were it stored
    items = teacher.get(f"/workspaces/{ws}/activity", params={"limit": 1000, "type": "agent.install"})["items"]
    assert len(items) == 1 and items[0]["actor_name"] == sname
    assert items[0]["subject"] == f"containers/{entries[0]['chain']}"
    recorded = items[0]["event"]["details"]
    assert recorded["hash"] == entries[1]["hash"] and json.loads(recorded["details_json"])["ratio"] == 0.1 + 0.2
