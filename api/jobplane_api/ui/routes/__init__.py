"""The UI's routers, one per area; each carries the CSRF check as a router dependency."""

from __future__ import annotations

from fastapi import APIRouter

from jobplane_api.ui.routes import auth, git_repositories, jobs, results, scheduled_jobs

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    auth.router,
    jobs.router,
    results.router,
    git_repositories.router,
    scheduled_jobs.router,
]
