"""A build as one caller sees it. Identical locks share one build, so a build may serve versions in several
workspaces; whoever reads it sees it as the version it can see (its names, image and requester), never the
other workspaces' or a private fork's."""

from __future__ import annotations

import json
from urllib.parse import quote

from reprolab.v1 import builder_pb2


def repository(image_ref: str) -> str:
    """`host/ws/env:v1` → `host/ws/env`."""
    return image_ref.rsplit(":", 1)[0] if image_ref.rfind(":") > image_ref.rfind("/") else image_ref


def seen_from(build: builder_pb2.Build, workspace: str, environment: str, version: int) -> builder_pb2.Build:
    """The build as one version it serves sees it: that version's names, image and requester, and nothing
    of the other workspaces and environments an identical lock let it serve."""
    origin = (build.workspace, build.environment, build.version)
    served = next((s for s in build.serves if (s.workspace, s.environment, s.version)
                   == (workspace, environment, version)), None)
    view = builder_pb2.Build()
    view.CopyFrom(build)
    view.workspace, view.environment, view.version = workspace, environment, version
    if served is not None:
        view.image_ref, view.requested_by = served.image_ref, served.requested_by
    elif (workspace, environment, version) != origin:
        view.image_ref = f"{repository(build.image_ref).rsplit('/', 2)[0]}/{workspace}/{environment}:v{version}"
        view.requested_by = ""
    view.error = build.error.replace(repository(build.image_ref), repository(view.image_ref))
    view.joined = build.joined or (workspace, environment, version) != origin
    del view.workspaces[:]
    del view.serves[:]
    view.workspaces.append(workspace)
    return view


def sbom_naming(cyclonedx_json: str, image_ref: str) -> str:
    """The SBOM naming the caller's image: it names the image it was taken from, which for a shared build
    is another workspace's (same content, same digest)."""
    doc = json.loads(cyclonedx_json)
    component = doc.get("metadata", {}).get("component")
    if isinstance(component, dict):
        repo, digest = repository(image_ref), str(component.get("version", ""))
        component["name"] = image_ref
        component["purl"] = (f"pkg:oci/{quote(repo.rsplit('/', 1)[-1], safe='')}@{quote(digest, safe='')}"
                             f"?repository_url={quote(repo, safe='')}")
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
