"""Job queues as Nautobot shows them, read from the JobQueue resources."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobplane_api.schemas import ChoiceValue, JobQueueRead
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import JobQueue

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = ["QUEUE", "queue_record", "visible_queues"]

QUEUE = "extras.jobqueue"


def queue_record(queue: JobQueue | Mapping[str, Any], base: str) -> JobQueueRead:
    queue = JobQueue.of(queue)
    meta, status = queue.metadata, queue.status
    stamp = parse_time(meta.creation_timestamp)
    return JobQueueRead(
        id=uuid.UUID(meta.uid),
        display=str(meta.name),
        url=f"{base}/api/extras/job-queues/{meta.uid}/",
        name=str(meta.name),
        queue_type=ChoiceValue(value="kubernetes", label="Kubernetes"),
        description=str((meta.annotations or {}).get("jobplane.io/description", "")),
        namespace=str(meta.namespace or ""),
        concurrency_limit=queue.spec.concurrency_limit,
        # The operator's counts (JobQueue status): runs holding a slot, runs waiting to start.
        running=status.active if status is not None else None,
        queued=status.waiting if status is not None else None,
        created=stamp,
        last_updated=stamp,
    )


def visible_queues(kube: KubeGateway, principal: Principal, base_url: str) -> list[JobQueueRead]:
    """The JobQueues the caller may view (none without the view permission)."""
    if not principal.has("view", QUEUE):
        return []
    records = [queue_record(queue, base_url) for queue in kube.queues()]
    return [record for record in records if principal.allows("view", QUEUE, record.model_dump(mode="json"))]
