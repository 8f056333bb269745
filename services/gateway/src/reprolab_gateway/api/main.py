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

api_router = APIRouter()
api_router.include_router(users.router)
api_router.include_router(me.router)
api_router.include_router(auth.router)
api_router.include_router(credentials.router)
api_router.include_router(workspaces.router)
api_router.include_router(quotas.router)
api_router.include_router(members.router)
api_router.include_router(people.router)
api_router.include_router(invites.router)
api_router.include_router(imports.router)
api_router.include_router(exports.router)
api_router.include_router(publish.router)
api_router.include_router(package_indexes.router)
api_router.include_router(environments.router)
api_router.include_router(builds.router)
api_router.include_router(runs.router)
api_router.include_router(reruns.router)
api_router.include_router(sessions.router)
api_router.include_router(models.router)
api_router.include_router(datasets.router)
api_router.include_router(cleanup.router)
api_router.include_router(assignments.router)
api_router.include_router(activity.router)
api_router.include_router(agent.router)
api_router.include_router(activity.verify_router)
api_router.include_router(targets.router)
api_router.include_router(lti.router)
api_router.include_router(registry_token.router)
