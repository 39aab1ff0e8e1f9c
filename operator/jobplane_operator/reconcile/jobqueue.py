"""A JobQueue's status (active, waiting, limit), counted from the runs the operator holds in its index."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jobplane_crds.v1alpha1 import JobRunPhase
from jobplane_operator.reconcile.waiting import KUEUE_ADMISSION

__all__ = ["QueueKey", "queue_loads", "queue_status_changes"]

QueueKey = tuple[str, str]  # (namespace, name)
LOAD_FIELDS = ("active", "waiting", "limit")


def _key(meta: Mapping[str, Any]) -> QueueKey:
    return (str(meta.get("namespace")), str(meta.get("name")))


def queue_loads(
    runs: Iterable[Mapping[str, Any]], queues: Iterable[Mapping[str, Any]]
) -> dict[QueueKey, dict[str, Any]]:
    """Each queue's load: ``active`` runs (a Job, not ended), ``waiting`` runs (phase Queued, or a Job
    suspended until Kueue admits it) and its ``limit`` (spec.concurrencyLimit, None for none).

    A run counts on the queue its status names (spec.queue until it has one). A run with no status yet
    counts nowhere: it is new, or started on an unlimited queue without a status write (it counts once
    its first status comes, with its pod ready).
    """
    loads: dict[QueueKey, dict[str, Any]] = {}
    for queue in queues:
        meta = queue.get("metadata") or {}
        limit = (queue.get("spec") or {}).get("concurrencyLimit")
        loads[(str(meta.get("namespace")), str(meta.get("name")))] = {
            "active": 0,
            "waiting": 0,
            "limit": limit,
        }
    for run in runs:
        status, spec = run.get("status") or {}, run.get("spec") or {}
        phase = status.get("phase")
        if not phase or JobRunPhase(phase).is_terminal:
            continue
        load = loads.get(
            (str((run.get("metadata") or {}).get("namespace")), str(status.get("queue") or spec.get("queue")))
        )
        if load is None:
            continue
        if phase == JobRunPhase.QUEUED.value or status.get("reason") == KUEUE_ADMISSION:
            load["waiting"] += 1
        elif status.get("jobName"):
            load["active"] += 1
    return loads


def queue_status_changes(
    loads: Mapping[QueueKey, Mapping[str, Any]],
    queues: Iterable[Mapping[str, Any]],
    written: Mapping[QueueKey, Mapping[str, Any]],
) -> dict[QueueKey, dict[str, Any]]:
    """The status writes that bring the queues in line with their loads: only where a count changed.

    ``written`` holds what this process last wrote of each queue: the index may not show that write yet,
    and writing the same again would be a write per pass for nothing.
    """
    changes: dict[QueueKey, dict[str, Any]] = {}
    for queue in queues:
        key = _key(queue.get("metadata") or {})
        wanted = dict(loads.get(key) or {})
        if not wanted:
            continue
        status = queue.get("status") or {}
        shown = {field: status.get(field) for field in LOAD_FIELDS}
        if wanted != shown and wanted != written.get(key):
            changes[key] = wanted
    return changes
