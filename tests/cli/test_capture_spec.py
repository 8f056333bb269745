"""``env capture``'s derived spec: the captured changes applied to the source version's spec, and the
platform's reading of agent chains (shape limits, links)."""

from __future__ import annotations

import hashlib
import json

import pytest
from reprolab_cli.capture import derive_spec
from reprolab_common import agentchain


def test_derived_spec_pins_python_changes_and_adds_system_names():
    spec = {"base": "b", "python": {"version": "3.11", "requirements": ["six>=1.16", "Requests==2.31.0", "pip"]},
            "apt": ["jq"], "r": {"packages": ["jsonlite"]}}
    changes = {"python": {"added": {"idna": "3.7"}, "removed": {"six": "1.16.0"},
                          "changed": {"requests": ["2.31.0", "2.32.3"]}},
               "apt": {"added": {"zip": "3.0-13"}, "removed": {"jq": "1.6"}},
               "r": {"added": {"yaml": "2.3.7"}}}
    out = derive_spec(spec, changes)
    assert out["python"] == {"version": "3.11", "requirements": ["pip", "idna==3.7", "requests==2.32.3"]}
    assert out["apt"] == ["zip"] and out["r"] == {"packages": ["jsonlite", "yaml"]}
    assert spec["python"]["requirements"] == ["six>=1.16", "Requests==2.31.0", "pip"]  # not modified
    assert derive_spec(spec, {}) == spec


def _chain(n: int) -> list[dict]:
    chain, prev, out = "cd" * 16, agentchain.genesis("cd" * 16), []
    for seq in range(1, n + 1):
        body = {"chain": chain, "seq": seq, "time": "t", "kind": "note", "details": {"n": seq}}
        h = hashlib.sha256(bytes.fromhex(prev) + agentchain.canonical(body)).hexdigest()
        out.append({**body, "prev": prev, "hash": h})
        prev = h
    return out


def test_chain_reader_checks_shape_links_and_content():
    entries = _chain(3)
    assert agentchain.verify(agentchain.check_shape(entries)) == (True, "3 entries verified")
    edited = json.loads(json.dumps(entries))
    edited[1]["details"]["n"] = 9
    assert agentchain.verify(edited) == (False, "entry 2: its hash does not match its content (edited?)")
    assert not agentchain.verify(entries[1:])[0]  # a chain is sent from its first entry
    for bad, why in ([], "non-empty"), ([{**entries[0], "kind": "Bad Kind"}], "not a valid kind"), \
            ([{**entries[0], "details": {"x": "y" * 70000}}], "at most"), ([{**entries[0], "extra": 1}], "exactly"):
        with pytest.raises(agentchain.ChainError, match=why):
            agentchain.check_shape(bad)
    events = agentchain.to_events(entries, origin="sync", scope="u1", workspace="ws", actor=agentchain.common_pb2.Actor(
        user_id="u1", username="ann"), subject="containers/x")
    again = agentchain.to_events(entries, origin="sync", scope="u1", workspace="ws", actor=agentchain.common_pb2.Actor(
        user_id="u1", username="ann"), subject="containers/x")
    assert [e.id for e in events] == [e.id for e in again] and len({e.id for e in events}) == 3
    assert events[0].type == "agent.note" and events[0].agent_entry.seq == 1
