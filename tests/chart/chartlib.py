"""Rendering charts/reprolab with helm-python-sdk (Helm's Go engine through its C ABI; no helm binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "reprolab"
HERE = Path(__file__).resolve().parent


def load_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((HERE / name).read_text())


def render(values: dict[str, Any] | None, *, name: str = "rl", namespace: str = "reprolab") -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` (install) would produce it."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=name, namespace=namespace, is_install=True)


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload in ``docs``."""
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")]


def role_grants(docs: list[dict[str, Any]], role_name: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) the named Role grants."""
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == role_name]
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


KMOCK_VERBS = {"FETCH": "get", "LIST": "list", "WATCH": "watch", "CREATE": "create", "DELETE": "delete",
               "UPDATE": "patch"}


def used_verbs(kmock: Any) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of every request the FAKE API server (kmock) served."""
    used = set()
    for req in kmock:
        if req.resource is None or req.action is None:
            continue
        resource = req.resource.plural + (f"/{req.subresource}" if req.subresource else "")
        used.add((req.resource.group or "", resource, KMOCK_VERBS[req.action.name]))
    return used
