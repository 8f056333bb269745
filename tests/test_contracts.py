"""The generated contracts are committed; regenerating them from proto/ must change nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reprolab.v1 import common_pb2, events_pb2

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "libs" / "contracts" / "src"


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerated_contracts_match_committed(tmp_path: Path) -> None:
    generated = _gen_module().generate(tmp_path)
    assert generated, "protoc produced nothing"
    names = {p.relative_to(tmp_path) for p in generated}
    committed = {p.relative_to(COMMITTED) for p in COMMITTED.rglob("*_pb2.py*")}
    assert names == committed, f"generated and committed files differ: {sorted(map(str, names ^ committed))}"
    for rel in sorted(names):
        assert (tmp_path / rel).read_bytes() == (COMMITTED / rel).read_bytes(), (
            f"{rel} is stale: run `make proto` and commit the result")


def test_every_proto_has_generated_python() -> None:
    protos = {p.stem for p in (ROOT / "proto").rglob("*.proto")}
    modules = {p.name.removesuffix("_pb2.py") for p in COMMITTED.rglob("*_pb2.py")}
    assert protos == modules


def test_event_envelope_round_trips_with_schema_version() -> None:
    ev = events_pb2.Event(schema_version=common_pb2.SCHEMA_VERSION_1, id="e1", type="workspace.created",
                          workspace="cs505")
    ev.workspace_created.slug = "cs505"
    back = events_pb2.Event.FromString(ev.SerializeToString())
    assert back.schema_version == common_pb2.SCHEMA_VERSION_1
    assert back.WhichOneof("payload") == "workspace_created"
    assert back.workspace_created.slug == "cs505"
