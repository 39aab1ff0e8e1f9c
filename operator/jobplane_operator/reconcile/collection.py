"""When a finished JobRun is collected: deleted from the cluster a TTL after it ended, as a batch Job is.

Pure functions, and the Collector that keeps what the poll loop needs from one pass to the next; no
Kubernetes calls: the loop asks which runs are due and deletes them. The run's JobResult, logs and files
stay in the API's database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from jobplane_crds.runview import RunView
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import JobQueue

__all__ = [
    "Collector",
    "collect_at",
    "collection_due",
    "finished_at",
    "run_queue_name",
    "ttl_after_finished",
]


def finished_at(obj: Mapping[str, Any]) -> datetime | None:
    """When a run ended, or None while it has not.

    Its status.completionTime, which the operator writes with the terminal phase. A run whose status
    lacks it (written by something else) counts from its Finished condition's transition, and failing
    that from its creation: a finished run is never kept forever for want of a timestamp.
    """
    run = RunView(obj)
    if not run.finished:
        return None
    completed = parse_time(run.completion_time)
    if completed is not None:
        return completed
    for condition in run.conditions:
        if condition.get("type") == "Finished" and condition.get("status") == "True":
            transition = parse_time(condition.get("lastTransitionTime"))
            if transition is not None:
                return transition
    return parse_time(run.creation_timestamp)


def run_queue_name(obj: Mapping[str, Any]) -> str | None:
    """The queue a run was placed on (its status), else the one it asked for; None when neither says."""
    return RunView(obj).queue


def ttl_after_finished(queue: JobQueue | None, default: int | None) -> int | None:
    """Seconds a finished run of ``queue`` stays: the queue's spec.ttlSecondsAfterFinished when it sets
    one, else the operator's ``default``; None keeps the run until someone deletes it."""
    value = queue.spec.ttl_seconds_after_finished if queue is not None else None
    return value if value is not None else default


def collect_at(obj: dict[str, Any], ttl_seconds: int | None) -> datetime | None:
    """When a run is to be deleted, or None: it has not finished, or it is kept (no TTL)."""
    finished = finished_at(obj)
    if finished is None or ttl_seconds is None:
        return None
    return finished + timedelta(seconds=ttl_seconds)


def collection_due(obj: dict[str, Any], ttl_seconds: int | None, *, now: datetime) -> bool:
    """Whether a run is to be deleted at ``now``: it finished at least ``ttl_seconds`` ago."""
    due = collect_at(obj, ttl_seconds)
    return due is not None and now >= due


class Collector:
    """Which finished runs a pass of the poll loop deletes: those due, at most ``per_pass`` of them (a
    backlog, such as a TTL turned on over months of history, is worked off over passes without starving
    the other polls), and a run asked for already only once ``retry_after`` seconds have passed (the
    operator's index keeps a deleted run for a moment). No calls: the loop deletes what it picks.

    Every pass looks at every finished run the operator holds (a day of them at the default TTL): what a
    run says of its end never changes once it has ended, so its finish time and queue are read once and
    kept by uid, and each queue's TTL is asked once per pass.
    """

    def __init__(self, *, per_pass: int, retry_after: float) -> None:
        self.per_pass = per_pass
        self.retry_after = retry_after
        self._asked: dict[str, float] = {}  # by run uid: the moment its deletion was picked
        # By run uid: when it finished (None: it has not) and its queue's key (namespace, name).
        self._seen: dict[str, tuple[datetime | None, tuple[str, str | None]]] = {}

    def pick(
        self,
        runs: Iterable[dict[str, Any]],
        ttl_of: Callable[[str, str | None], int | None],
        *,
        now: datetime,
        moment: float,
    ) -> list[tuple[dict[str, Any], int | None]]:
        """The runs to delete now, with their TTL. ``ttl_of(namespace, queue)``: the TTL of a queue's
        finished runs (see ttl_after_finished; queue None: the run names none); ``now``: the wall clock
        the TTLs count in; ``moment``: the loop's monotonic clock the retries count in."""
        picked: list[tuple[dict[str, Any], int | None]] = []
        ttls: dict[tuple[str, str | None], int | None] = {}
        for obj in runs:
            if len(picked) >= self.per_pass:
                break
            run = RunView(obj)
            uid = str(run.uid)
            seen = self._seen.get(uid)
            if seen is None or seen[0] is None:  # new, or seen before it ended
                seen = self._seen[uid] = (finished_at(obj), (run.namespace, run.queue))
            finished, queue = seen
            if finished is None:
                continue
            if queue not in ttls:
                ttls[queue] = ttl_of(*queue)
            ttl = ttls[queue]
            if ttl is None or now < finished + timedelta(seconds=ttl):
                continue
            asked = self._asked.get(uid)
            if asked is not None and moment - asked < self.retry_after:
                continue
            self._asked[uid] = moment
            picked.append((obj, ttl))
        return picked

    def forget(self, present: set[str]) -> None:
        """Drop what is kept of the runs no longer in the index (by uid)."""
        for uid in set(self._asked) - present:
            del self._asked[uid]
        for uid in set(self._seen) - present:
            del self._seen[uid]
