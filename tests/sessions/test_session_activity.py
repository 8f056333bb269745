"""The runner's reading of a session's activity chain (sessions/activity.py), on chains the real agent writes:
a good chain verifies, an edited one is still read but flagged, garbage and oversized chains are refused, and
the events' ids repeat for the same entry (so the audit service drops a resend after a runner restart)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reprolab.v1 import common_pb2
from reprolab_common.agentchain import ChainError, to_events
from reprolab_runner.sessions import activity

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "services/builder/src/reprolab_builder/agent/agent.py"


def chain(tmp_path: Path, cells: int) -> bytes:
    agent: dict = {"__name__": "agent"}
    exec(compile(AGENT.read_text(), str(AGENT), "exec"), agent)
    for n in range(cells):
        agent["append"](str(tmp_path), "cell", {"code_sha256": f"{n:064x}", "status": "ok", "kernel": "python3"})
    return (tmp_path / "activity.jsonl").read_bytes()


def test_a_chain_the_agent_wrote_is_read_and_verified(tmp_path) -> None:
    entries, ok = activity.parse(chain(tmp_path, 3))
    assert ok and [e["kind"] for e in entries] == ["chain.started", "cell", "cell", "cell"]


def test_an_edited_chain_is_read_but_flagged(tmp_path) -> None:
    lines = chain(tmp_path, 2).decode().splitlines()
    edited = json.loads(lines[1])
    edited["details"]["status"] = "error"
    lines[1] = json.dumps(edited)
    entries, ok = activity.parse("\n".join(lines).encode())
    assert not ok and len(entries) == 3


@pytest.mark.parametrize("raw", [b"not json\n", b'{"chain": "x"}\n', b"\0" * (activity.MAX_BYTES + 1)])
def test_garbage_and_oversized_chains_are_refused(raw) -> None:
    with pytest.raises(ChainError):
        activity.parse(raw)


def test_the_same_entry_gets_the_same_event_id(tmp_path) -> None:
    entries, _ = activity.parse(chain(tmp_path, 1))
    actor = common_pb2.Actor(user_id="u1", username="alice")
    ids = [[e.id for e in to_events(entries, origin="session", scope="s1", workspace="w", actor=actor,
                                    subject="sessions/s1")] for _ in range(2)]
    assert ids[0] == ids[1] and len(set(ids[0])) == 2
