"""Jobs pages: the list grouped by grouping, a job's page, its run form, and its admin settings."""

from __future__ import annotations

from itertools import groupby

from fastapi import APIRouter, Depends, Request, Response

from jobplane_api.deps import KubeDep
from jobplane_api.routes import base_url
from jobplane_api.services import jobs as service
from jobplane_api.ui.auth import UserDep, csrf_protect
from jobplane_api.ui.templating import is_htmx, render

__all__ = ["router"]

router = APIRouter(prefix="/jobs", dependencies=[Depends(csrf_protect)])


@router.get("/")
def job_list(request: Request, user: UserDep, kube: KubeDep, q: str = "", hidden: bool = False) -> Response:
    """Every job the user may view, grouped; hidden ones only when asked for; ``q`` searches."""
    filters: dict[str, list[str]] = {}
    if q.strip():
        filters["q"] = q.split()
    if not hidden:
        filters["hidden"] = ["false"]
    records = service.list_jobs(kube=kube, principal=user, base_url=base_url(request), filters=filters)
    groups = [(grouping, list(jobs)) for grouping, jobs in groupby(records, key=lambda job: job.grouping)]
    context = {"nav": "jobs", "groups": groups, "q": q, "hidden": hidden, "count": len(records)}
    template = "jobs/_list_table.html" if is_htmx(request) else "jobs/list.html"
    return render(request, template, context)
