"""The API's routers are matched in the order of ``API_ROUTERS``, most requested first; that is safe only
while no request could be answered by routes of two of them (then the order would pick the answer)."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from reprolab_gateway.api.main import API_ROUTERS
from reprolab_gateway.main import API_PREFIX, create_app

# path parameter values that look like the static segments of other routes
_VALUES = ("x1", "1", "v1", "latest", "me", "versions", "environments", "tokens", "builds", "runs", "activity")


def _sample(path: str, value: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: value + ("/x" if m.group(2) else ""), path)


def test_no_request_matches_routes_of_two_api_routers() -> None:
    routes = [(i, r) for i, router in enumerate(API_ROUTERS) for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 50
    clashes = sorted(
        f"{method} {path}: {a.path} (router {i}) and {b.path} (router {j})"
        for i, a in routes for value in _VALUES for path in [_sample(a.path, value)]
        for j, b in routes if i != j and b.path_regex.match(path) for method in sorted(a.methods & b.methods)
    )
    assert not clashes, "\n".join(clashes)


def test_every_api_route_is_in_the_app_under_the_prefix() -> None:
    documented = {(path, method.upper()) for path, ops in create_app().openapi()["paths"].items() for method in ops}
    # OpenAPI spells {name:path} as {name}
    wanted_path = re.compile(r":path\}")
    wanted = {(API_PREFIX + wanted_path.sub("}", r.path), method) for router in API_ROUTERS for r in router.routes
              if isinstance(r, APIRoute) and r.include_in_schema for method in r.methods}
    assert wanted and wanted <= documented, sorted(wanted - documented)[:5]
