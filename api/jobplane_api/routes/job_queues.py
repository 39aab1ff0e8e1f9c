"""``/api/extras/job-queues/``: the JobQueue resources, read-only (they are managed with kubectl or Helm)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from jobplane_api.deps import KubeDep, PrincipalDep
from jobplane_api.errors import NotFound, PermissionDenied
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import ChoiceValue, JobQueueRead

router = APIRouter(prefix="/api/extras/job-queues", tags=["job queues"])
QUEUE = "extras.jobqueue"


def queue_record(queue: dict[str, Any], base: str) -> JobQueueRead:
    meta, spec, status = queue["metadata"], queue.get("spec") or {}, queue.get("status") or {}
    created = meta.get("creationTimestamp")
    stamp = datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
    return JobQueueRead(
        id=uuid.UUID(meta["uid"]),
        display=meta["name"],
        url=f"{base}/api/extras/job-queues/{meta['uid']}/",
        name=meta["name"],
        queue_type=ChoiceValue(value="kubernetes", label="Kubernetes"),
        description=str((meta.get("annotations") or {}).get("jobplane.io/description", "")),
        namespace=str(spec.get("namespace") or meta.get("namespace") or ""),
        concurrency_limit=spec.get("concurrencyLimit"),
        running=status.get("running"),
        queued=status.get("queued"),
        created=stamp,
        last_updated=stamp,
    )


def _visible(kube: KubeDep, principal: PrincipalDep, request: Request) -> list[JobQueueRead]:
    if not principal.has("view", QUEUE):
        raise PermissionDenied()
    base = base_url(request)
    records = [queue_record(queue, base) for queue in kube.queues()]
    return [record for record in records if principal.allows("view", QUEUE, record.model_dump(mode="json"))]


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
