"""What is really in an image (run it, offline, and ask dpkg and Python) and a CycloneDX 1.5 SBOM."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .backends.base import BuildError
from .lock import _short, _tool_error, run

_SCRIPT = r"""
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='deb\t${Package}\t${Version}\t${Architecture}\n'
fi
if command -v python3 >/dev/null 2>&1; then
  python3 -c '
import importlib.metadata as m
seen = set()
for d in m.distributions():
    name = d.metadata["Name"]
    if not name or name.lower() in seen:
        continue
    seen.add(name.lower())
    print("pypi\t%s\t%s\t" % (name, d.version))
'
fi
"""


def inventory(image_ref: str, *, tls_verify: bool = False) -> dict[str, list[dict[str, str]]]:
    """Run ``image_ref`` with no network and list its Debian and Python distributions."""
    proc = run(["podman", "run", "--rm", "--network=none", f"--tls-verify={'true' if tls_verify else 'false'}",
                "--entrypoint", "", image_ref, "sh", "-c", _SCRIPT], timeout=600)
    if proc.returncode != 0:
        raise BuildError(f"could not inspect image {image_ref}: {_tool_error(proc.stderr) or _short(proc.stdout)}")
    return parse_inventory(proc.stdout.splitlines())


# A one-layer lock's build ends with this step (render.py): the same listing, between two marker lines of
# the build's output, taken out of the log by InventoryLines. The image then need not be in local storage
# (it went straight to the registry) to have its SBOM; the step writes nothing.
BEGIN, END = "reprolab-inventory-begin", "reprolab-inventory-end"
INVENTORY_STEP = f"export PYTHONDONTWRITEBYTECODE=1; echo {BEGIN}; {_SCRIPT.strip()}\necho {END}"


class InventoryLines:
    """A build log sink that keeps the lines between the markers (and passes every other line on)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.lines: list[str] = []
        self.found = False
        self._inside = False

    def __call__(self, line: str) -> None:
        text = line.strip()
        if text == BEGIN and not self.found:
            self._inside = True
        elif text == END and self._inside:
            self._inside, self.found = False, True
            inv = self.inventory()
            self.log(f"the image lists {len(inv['deb'])} Debian packages and {len(inv['pypi'])} Python "
                     "distributions (its SBOM)")
        elif self._inside:
            self.lines.append(line)
        else:
            self.log(line)

    def inventory(self) -> dict[str, list[dict[str, str]]]:
        return parse_inventory(self.lines)


def parse_inventory(lines: list[str]) -> dict[str, list[dict[str, str]]]:
    """``deb<TAB>name<TAB>version<TAB>arch`` and ``pypi<TAB>name<TAB>version`` lines → sorted lists."""
    deb: dict[str, dict[str, str]] = {}
    pypi: dict[str, dict[str, str]] = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        kind, name, version = parts[0], parts[1], parts[2]
        if kind == "deb":
            deb[name] = {"name": name, "version": version, "arch": parts[3] if len(parts) > 3 else ""}
        elif kind == "pypi":
            pypi[name.lower()] = {"name": name, "version": version}
    return {"deb": [deb[k] for k in sorted(deb)], "pypi": [pypi[k] for k in sorted(pypi)]}


def _purl_deb(p: dict[str, str]) -> str:
    qual = f"?arch={p['arch']}" if p.get("arch") else ""
    return f"pkg:deb/debian/{quote(p['name'], safe='')}@{quote(p['version'], safe='')}{qual}"


def _purl_pypi(p: dict[str, str]) -> str:
    from packaging.utils import canonicalize_name

    return f"pkg:pypi/{canonicalize_name(p['name'])}@{quote(p['version'], safe='')}"


def cyclonedx(inv: dict[str, list[dict[str, str]]], *, image_ref: str, digest: str) -> dict[str, Any]:
    """A deterministic CycloneDX 1.5 JSON document (serial number derived from the digest)."""
    components = []
    for p in inv.get("deb", []):
        purl = _purl_deb(p)
        components.append({"type": "library", "bom-ref": purl, "name": p["name"], "version": p["version"],
                           "purl": purl})
    for p in inv.get("pypi", []):
        purl = _purl_pypi(p)
        components.append({"type": "library", "bom-ref": purl, "name": p["name"], "version": p["version"],
                           "purl": purl})
    components.sort(key=lambda c: c["purl"])
    name = image_ref.split("@", 1)[0]
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'reprolab:' + digest)}",
        "version": 1,
        "metadata": {
            "component": {"type": "container", "bom-ref": digest, "name": name, "version": digest,
                          "purl": f"pkg:oci/{quote(repo.rsplit('/', 1)[-1], safe='')}@{quote(digest, safe='')}"
                                  f"?repository_url={quote(repo, safe='')}"},
            "tools": {"components": [{"type": "application", "name": "reprolab-builder"}]},
        },
        "components": components,
    }


def to_json(bom: dict[str, Any]) -> bytes:
    return json.dumps(bom, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"
