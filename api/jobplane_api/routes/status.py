"""``/api/`` and ``/api/status/``: where things are, and whether the API and its stores are up."""

from __future__ import annotations

import platform
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Request

from jobplane_api.deps import SessionDep
from jobplane_api.routes import base_url
from jobplane_api.services import health

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/", response_model=dict[str, Any])
def api_root(request: Request) -> dict[str, Any]:
    base = base_url(request)
    return {
        "extras": {
            name: f"{base}/api/extras/{name}/"
            for name in (
                "jobs",
                "job-results",
                "job-logs",
                "file-proxies",
                "job-queues",
                "git-repositories",
            )
        },
        "status": f"{base}/api/status/",
        "docs": f"{base}/api/docs/",
    }


@router.get("/status/", response_model=dict[str, Any])
def api_status(request: Request, session: SessionDep) -> dict[str, Any]:
    """Versions and readiness; needs no token (as Nautobot's), says nothing secret."""
    health.check_database(session=session)
    kube = request.app.state.kube
    return {
        "jobplane-version": version("jobplane"),
        "python-version": platform.python_version(),
        "database": "ok",
        "kubernetes": "disabled" if kube is None else ("synced" if kube.synced else "syncing"),
    }
