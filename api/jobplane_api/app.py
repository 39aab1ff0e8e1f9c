"""The FastAPI application: built by a function from its settings, so tests build their own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from jobplane_api.errors import install_error_handlers
from jobplane_api.kube import KubeGateway
from jobplane_api.routes import (
    approvals,
    git_repositories,
    job_queues,
    jobs,
    results,
    run_reports,
    scheduled_jobs,
    status,
    tokens,
    users,
)
from jobplane_api.services.mirror import RunMirror
from jobplane_api.services.result_events import ResultNotifier
from jobplane_api.services.sync_results import SyncResultMirror
from jobplane_api.settings import ApiSettings
from jobplane_api.ui import install_ui
from jobplane_api.versioning import ApiVersionHeader
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings,
    *,
    engine: Engine | None = None,
    kube: KubeGateway | None = None,
    mirror: bool = True,
) -> FastAPI:
    """The API with its store, its Kubernetes gateway and the mirrors of JobRuns and repository syncs into
    job results (started with the app)."""
    url = settings.database_url.get_secret_value()
    if engine is None:
        if not url:
            raise ValueError("JOBPLANE_API_DATABASE_URL is not set: the API needs its Postgres database")
        engine = create_store_engine(url, pool_pre_ping=True)
    sessions = make_sessionmaker(engine)
    if kube is None and settings.kubernetes:
        kube = KubeGateway(settings)
    background: list[Any] = []
    # Wakes the log streams of a result when any replica writes to it (Postgres LISTEN/NOTIFY).
    notifier = ResultNotifier(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema(engine)
        await notifier.start()
        if kube is not None:
            kube.start()
            background.append(kube)
            if mirror:
                run_mirror = RunMirror(settings, sessions, kube)
                run_mirror.start()
                background.append(run_mirror)
                sync_mirror = SyncResultMirror(sessions, kube)
                sync_mirror.start()
                background.append(sync_mirror)
        try:
            yield
        finally:
            for part in reversed(background):
                part.stop()
            background.clear()
            await notifier.stop()

    app = FastAPI(
        title="Jobplane API",
        version="1",
        description="Nautobot-compatible jobs endpoints, run on Kubernetes.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs/",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.kube = kube
    app.state.result_notifier = notifier
    install_error_handlers(app)
    app.add_middleware(ApiVersionHeader)
    modules = (
        status,
        jobs,
        results,
        scheduled_jobs,
        approvals,
        job_queues,
        git_repositories,
        run_reports,
        tokens,
        users,
    )
    for module in modules:
        app.include_router(module.router)
    # The web UI under / (after the API's routers and error handlers: it keeps JSON errors for /api/).
    install_ui(app)
    return app
