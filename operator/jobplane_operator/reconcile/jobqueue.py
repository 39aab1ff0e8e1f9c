"""A JobQueue's status (active, waiting, limit), counted from the runs the operator holds in its index."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jobplane_crds.runview import RunView
from jobplane_crds.v1alpha1 import JobQueue, JobRunPhase
from jobplane_operator.reconcile.waiting import KUEUE_ADMISSION

__all__ = ["QueueKey", "queue_loads", "queue_status_changes"]

QueueKey = tuple[str, str]  # (namespace, name)
LOAD_FIELDS = ("active", "waiting", "limit")


def _key(queue: JobQueue) -> QueueKey:
    return (str(queue.metadata.namespace), str(queue.metadata.name))


def queue_loads(
    runs: Iterable[Mapping[str, Any]], queues: Iterable[JobQueue]
) -> dict[QueueKey, dict[str, Any]]:
    """Each queue's load: ``active`` runs (a Job, not ended), ``waiting`` runs (phase Queued, or a Job
    suspended until Kueue admits it) and its ``limit`` (spec.concurrencyLimit, None for none).

    A run counts on the queue its status names (spec.queue until it has one). A run with no status yet
    counts nowhere: it is new, or started on an unlimited queue without a status write (it counts once
    its first status comes, with its pod ready).
    """
    loads: dict[QueueKey, dict[str, Any]] = {}
    for queue in queues:
        loads[_key(queue)] = {"active": 0, "waiting": 0, "limit": queue.spec.concurrency_limit}
    for run in map(RunView, runs):  # every run the operator holds, each pass: read, not parsed
        phase = run.phase
        if phase is None or phase.is_terminal:
            continue
        load = loads.get((run.namespace, str(run.queue)))
        if load is None:
            continue
        if phase == JobRunPhase.QUEUED or run.reason == KUEUE_ADMISSION:
            load["waiting"] += 1
        elif run.job_name:
            load["active"] += 1
    return loads


def queue_status_changes(
    loads: Mapping[QueueKey, Mapping[str, Any]],
    queues: Iterable[JobQueue],
    written: Mapping[QueueKey, Mapping[str, Any]],
) -> dict[QueueKey, dict[str, Any]]:
    """The status writes that bring the queues in line with their loads: only where a count changed.

    ``written`` holds what this process last wrote of each queue: the index may not show that write yet,
    and writing the same again would be a write per pass for nothing.
    """
    changes: dict[QueueKey, dict[str, Any]] = {}
    for queue in queues:
        key = _key(queue)
        wanted = dict(loads.get(key) or {})
        if not wanted:
            continue
        status = queue.status
        shown = {field: getattr(status, field, None) for field in LOAD_FIELDS}
        if wanted != shown and wanted != written.get(key):
            changes[key] = wanted
    return changes
