"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens the database,
the object store and NATS (nothing is created at import)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from reprolab_common.nats import credentials
from reprolab_common.objectstore import make_object_store

from .api.main import API_ROUTERS
from .api.routes import health
from .auth.accounts import redact_link_secrets_in_logs
from .bootstrap import bootstrap_admin
from .core.config import GatewaySettings, get_settings
from .core.db import open_database
from .core.headers import docs_csp, install_security_headers
from .core.natslink import NatsLink
from .core.outbox import GatewayOutbox
from .core.problems import install_problem_handlers
from .core.readcache import ReadCache
from .core.throttle import AddressThrottle
from .core.uploads import sweep_orphans
from .lti.listener import GradeListener
from .lti.web import router as lti_router
from .serving import ServeState
from .serving import router as serve_router
from .sessions_proxy import install_session_proxy
from .web.router import STATIC_DIR
from .web.router import router as web_router

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
VERSION = "0.1.0"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    redact_link_secrets_in_logs()  # invite and reset links carry their secret in the path

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, sessions = await asyncio.to_thread(open_database, settings.common)
        if settings.bootstrap_token_file is not None:
            await asyncio.to_thread(bootstrap_admin, sessions, settings.bootstrap_token_file)
        store = await asyncio.to_thread(make_object_store, settings.common)
        await asyncio.to_thread(sweep_orphans, settings.upload_dir())
        link = NatsLink(settings.common.nats_url, credentials=credentials(settings.common))
        if settings.read_cache_seconds > 0:
            link.read_cache = ReadCache(link, settings.read_cache_seconds)
        await link.start(settings.nats_connect_wait_seconds)
        outbox = GatewayOutbox(sessions, link)
        outbox.start()
        app.state.sessions = sessions
        app.state.store = store
        app.state.nats = link
        app.state.outbox = outbox
        app.state.signin_throttle = AddressThrottle()
        app.state.serve = ServeState(app)  # /serve/{ws}/{model}/v2/...: needs the store and NATS above
        app.state.serve.start()
        grades = GradeListener(app, link)  # LTI: a scored run's grade goes to the LMS
        grades.start()
        try:
            yield
        finally:
            await grades.close()
            await app.state.session_proxy.aclose()
            await app.state.serve.aclose()
            await outbox.close()
            await link.close()
            engine.dispose()

    app = FastAPI(
        title="Reprolab",
        version=VERSION,
        description="Reproducible environments for data-science courses and research groups. "
        "Authenticate with `Authorization: Bearer <API token>` (the web portal at / signs in with a password, "
        "single sign-on or a token and keeps a revocable session in a cookie); errors are application/problem+json. "
        "Deployed models answer at /serve/{ws}/{name}/v2/... (the Open Inference Protocol), described apart at "
        "/serve/openapi.json.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below from the gateway's own copy of Swagger UI (works offline)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_security_headers(app)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json", title="Reprolab API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js", swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
            # 100+ operations: a box that narrows them to the tags matching what is typed
            swagger_ui_parameters={"filter": True})
        # static/docs.js gives the filter box the label Swagger UI leaves out
        body = bytes(page.body).replace(b"</body>", b'<script src="/static/docs.js"></script>\n</body>', 1)
        return HTMLResponse(body, headers={"Content-Security-Policy": docs_csp(body)})

    # The web portal and its assets (no CDN: everything a page loads comes from here).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(web_router)
    app.include_router(lti_router)
    app.include_router(serve_router)  # /serve/{ws}/{model}/v2/... and /metrics: models (issue 15)
    install_session_proxy(app)  # /sessions/{id}/...: JupyterLab sessions (HTTP and websockets)
    return app
