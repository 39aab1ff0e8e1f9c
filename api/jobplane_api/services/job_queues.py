"""Job queues as Nautobot shows them, read from the JobQueue resources."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from jobplane_api.schemas import ChoiceValue, JobQueueRead
from jobplane_crds.times import parse_time

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = ["QUEUE", "queue_record", "visible_queues"]

QUEUE = "extras.jobqueue"


def queue_record(queue: dict[str, Any], base: str) -> JobQueueRead:
    meta, spec, status = queue["metadata"], queue.get("spec") or {}, queue.get("status") or {}
    created = meta.get("creationTimestamp")
    stamp = parse_time(created)
    return JobQueueRead(
        id=uuid.UUID(meta["uid"]),
        display=meta["name"],
        url=f"{base}/api/extras/job-queues/{meta['uid']}/",
        name=meta["name"],
        queue_type=ChoiceValue(value="kubernetes", label="Kubernetes"),
        description=str((meta.get("annotations") or {}).get("jobplane.io/description", "")),
        namespace=str(spec.get("namespace") or meta.get("namespace") or ""),
        concurrency_limit=spec.get("concurrencyLimit"),
        # The operator's counts (JobQueue status): runs holding a slot, runs waiting to start.
        running=status.get("active"),
        queued=status.get("waiting"),
        created=stamp,
        last_updated=stamp,
    )


def visible_queues(kube: KubeGateway, principal: Principal, base_url: str) -> list[JobQueueRead]:
    """The JobQueues the caller may view (none without the view permission)."""
    if not principal.has("view", QUEUE):
        return []
    records = [queue_record(queue, base_url) for queue in kube.queues()]
    return [record for record in records if principal.allows("view", QUEUE, record.model_dump(mode="json"))]
