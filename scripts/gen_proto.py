"""Regenerate the Python contracts from proto/ (python scripts/gen_proto.py [OUT_DIR]).

The output is committed under libs/contracts/src; tests/test_contracts.py regenerates into a
temporary directory and fails on any difference, so the two never drift.
"""

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
DEFAULT_OUT = ROOT / "libs" / "contracts" / "src"


def generate(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}", *sources])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    return sorted(p for p in out.rglob("*_pb2.py*"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    for path in generate(target):
        print(path.relative_to(target))
