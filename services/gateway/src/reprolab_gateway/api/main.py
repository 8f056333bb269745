"""All routes of ``/api/v1``."""

from fastapi import APIRouter

from .routes import (
    activity,
    agent,
    assignments,
    auth,
    builds,
    cleanup,
    credentials,
    datasets,
    environments,
    exports,
    imports,
    invites,
    lti,
    me,
    members,
    models,
    package_indexes,
    people,
    publish,
    quotas,
    registry_token,
    reruns,
    runs,
    sessions,
    targets,
    users,
    workspaces,
)

# Each request is matched against these routers in order, route by route, until one matches (about 1.5 us a
# route), so the most requested come first: who am I, workspaces, environments and their versions. The order
# decides nothing else: no path and method matches routes of two of these routers
# (tests/gateway/test_routing.py). ``create_app`` includes each in the app itself rather than through one
# /api/v1 router: FastAPI matches a request once per level of routers it goes through, and with that extra
# level every API request scanned the routes before its own twice (bench/gateway.py).
API_ROUTERS: list[APIRouter] = [
    me.router,
    workspaces.router,
    environments.router,
    users.router,
    auth.router,
    credentials.router,
    quotas.router,
    members.router,
    people.router,
    invites.router,
    imports.router,
    exports.router,
    publish.router,
    package_indexes.router,
    builds.router,
    runs.router,
    reruns.router,
    sessions.router,
    models.router,
    datasets.router,
    cleanup.router,
    assignments.router,
    activity.router,
    agent.router,
    activity.verify_router,
    targets.router,
    lti.router,
    registry_token.router,
]

api_router = APIRouter()
for _router in API_ROUTERS:
    api_router.include_router(_router)
