"""SBOM of a platform image (scripts/images.sh), made the way the builder makes environment images' SBOMs.

    python scripts/image_sbom.py inventory IMAGE            > inventory.json
    python scripts/image_sbom.py cyclonedx INVENTORY REF DIGEST > sbom.cdx.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from reprolab_builder.sbom import cyclonedx, inventory, to_json


def main(argv: list[str]) -> int:
    if argv[:1] == ["inventory"] and len(argv) == 2:
        sys.stdout.write(json.dumps(inventory(argv[1]), sort_keys=True) + "\n")
        return 0
    if argv[:1] == ["cyclonedx"] and len(argv) == 4:
        inv = json.loads(Path(argv[1]).read_text())
        sys.stdout.buffer.write(to_json(cyclonedx(inv, image_ref=argv[2], digest=argv[3])))
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
