"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens the database,
the object store and NATS (nothing is created at import)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from reprolab_common.objectstore import make_object_store

from .api.main import api_router
from .api.routes import health
from .bootstrap import bootstrap_admin
from .core.config import GatewaySettings, get_settings
from .core.db import open_database
from .core.natslink import NatsLink
from .core.problems import install_problem_handlers

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
VERSION = "0.1.0"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, sessions = await asyncio.to_thread(open_database, settings.common)
        if settings.bootstrap_token_file is not None:
            await asyncio.to_thread(bootstrap_admin, sessions, settings.bootstrap_token_file)
        store = await asyncio.to_thread(make_object_store, settings.common)
        link = NatsLink(settings.common.nats_url)
        await link.start(settings.nats_connect_wait_seconds)
        app.state.sessions = sessions
        app.state.store = store
        app.state.nats = link
        try:
            yield
        finally:
            await link.close()
            engine.dispose()

    app = FastAPI(
        title="Reprolab",
        version=VERSION,
        description="Reproducible environments for data-science courses and research groups. "
        "Authenticate with `Authorization: Bearer <API token>`; errors are application/problem+json.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router, prefix=API_PREFIX)
    return app
