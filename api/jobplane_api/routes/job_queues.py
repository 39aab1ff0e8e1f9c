"""``/api/extras/job-queues/``: the JobQueue resources, read-only (they are managed with kubectl or Helm)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from jobplane_api.deps import KubeDep, PrincipalDep
from jobplane_api.errors import NotFound, PermissionDenied
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import JobQueueRead
from jobplane_api.services.job_queues import QUEUE, visible_queues

router = APIRouter(prefix="/api/extras/job-queues", tags=["job queues"])


def _visible(kube: KubeDep, principal: PrincipalDep, request: Request) -> list[JobQueueRead]:
    if not principal.has("view", QUEUE):
        raise PermissionDenied()
    return visible_queues(kube, principal, base_url(request))


@router.get("/", response_model=Page[JobQueueRead], description="Filters: name.")
def list_queues(
    request: Request, kube: KubeDep, principal: PrincipalDep, page: PageDep
) -> Page[JobQueueRead]:
    names = query_filters(request).get("name")
    records = sorted(_visible(kube, principal, request), key=lambda record: record.name)
    if names:
        records = [record for record in records if record.name in names]
    return page.page(records[page.offset : page.offset + page.limit], len(records))


@router.get("/{key}/", response_model=JobQueueRead)
def get_queue(key: str, request: Request, kube: KubeDep, principal: PrincipalDep) -> JobQueueRead:
    for record in _visible(kube, principal, request):
        if key in (str(record.id), record.name):
            return record
    raise NotFound()
