"""A job result per requested Git repository sync, kept in line with the JobRepository's status.

Nautobot answers a sync with the JobResult of its "Git Repository: Sync" job. Here the API writes the sync
request (an annotation with a timestamp) and a PENDING result at once; :func:`plan_sync_result` decides
from the repository's status what the result has become, and :class:`SyncResultMirror` feeds it from a
watch of the JobRepositories, as the run mirror does with JobRuns.

The operator records the request it acted on in ``status.syncRequest``: once that is the request (or a
later one, which syncs as much) the sync is under way while ``status.syncJob`` names a Job, and over when
it does not, with the Synced condition telling how it went.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from jobplane_api.kube import JOB_REPOSITORIES, LISTED
from jobplane_crds.v1alpha1 import JobRepository, JobRepositoryStatus
from jobplane_store.models import JobLogEntry, JobResult, JobStatus
from jobplane_store.results import log_count_columns

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from jobplane_api.kube import Informer, KubeGateway

__all__ = [
    "SYNC_JOB_NAME",
    "SYNC_TASK_NAME",
    "SyncChange",
    "SyncResultMirror",
    "new_sync_result",
    "plan_sync_result",
]

log = logging.getLogger(__name__)

# Nautobot's system job for a sync: its results carry this name and task name.
SYNC_JOB_NAME = "Git Repository: Sync"
SYNC_TASK_NAME = "nautobot.core.jobs.GitRepositorySync"
DELETED_REASON = "JobRepositoryDeleted"
DELETED_MESSAGE = "The JobRepository was deleted before its sync ended"
WAITING_MESSAGE = "Waiting for the operator to act on the sync request"
_UNFINISHED = (JobStatus.PENDING, JobStatus.STARTED)


@dataclass(frozen=True)
class SyncChange:
    """What to write to a sync's result: columns, and log lines (level, message) when it ends."""

    values: dict[str, Any]
    logs: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ends(self) -> bool:
        return self.values.get("status") in (JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED)


def new_sync_result(
    *, repository: JobRepository | Mapping[str, Any], requested_at: str, user: str | None, now: datetime
) -> JobResult:
    """The PENDING result of a sync just requested (``requested_at``: the annotation's value)."""
    repository = JobRepository.of(repository)
    return JobResult(
        id=uuid.uuid4(),
        name=SYNC_JOB_NAME,
        job_class_path=SYNC_TASK_NAME,
        user=user,
        status=JobStatus.PENDING,
        date_created=now,
        # Nautobot's sync job takes the repository; the request's timestamp ties the result to it.
        task_kwargs={"repository": str(repository.metadata.uid), "sync_requested_at": requested_at},
        message=WAITING_MESSAGE,
    )


def plan_sync_result(
    repository: JobRepository | Mapping[str, Any] | None,
    *,
    requested_at: str,
    status: str,
    started: bool,
    now: datetime,
) -> SyncChange | None:
    """The change a sync's result needs, given the repository as it is (None: deleted); None for none.

    ``status`` is the result's status and ``started`` whether it has a date_started. Pure and idempotent:
    a result that ended never changes again.
    """
    if status not in _UNFINISHED:
        return None
    if repository is None:
        values: dict[str, Any] = {
            "status": JobStatus.REVOKED,
            "reason": DELETED_REASON,
            "message": DELETED_MESSAGE,
            "date_done": now,
        }
        return SyncChange(values, (("failure", DELETED_MESSAGE),))
    repository = JobRepository.of(repository)
    repo_status = repository.status or JobRepositoryStatus()
    acted = str(repo_status.sync_request or "")
    # The annotation's values sort as they were made; the operator acting on a later one syncs this too.
    if acted < requested_at:
        return None
    if repo_status.sync_job:
        if status == JobStatus.STARTED:
            return None
        commit = str(repo_status.syncing_commit or "")
        return SyncChange(
            {
                "status": JobStatus.STARTED,
                "date_started": now,
                "commit": commit[:64] or None,
                "message": f"Syncing commit {commit} in Job {repo_status.sync_job}",
            }
        )
    synced = next((c for c in repo_status.conditions if c.type == "Synced"), None)
    if synced is None or synced.status not in ("True", "False"):
        return None  # the operator has not said yet
    reason = synced.reason[:100] or None
    message = synced.message or None
    values = {"date_done": now, "reason": reason, "message": message}
    if not started:
        values["date_started"] = now
    name = str(repository.metadata.name or "")
    if synced.status == "False":
        values["status"] = JobStatus.FAILURE
        return SyncChange(values, (("failure", f"Sync of {name} failed ({reason}): {message or ''}"),))
    values["status"] = JobStatus.SUCCESS
    values["commit"] = str(repo_status.commit or "")[:64] or None
    logs = [("info", message or f"Synced {name}")]
    # Nautobot logs a module that does not import as an error, and the sync still succeeds.
    for module, error in sorted(repo_status.import_errors.items()):
        logs.append(("error", f"Error in loading Jobs from Git repository: {module}: {error}"))
    return SyncChange(values, tuple(logs))


class SyncResultMirror:
    """Watches the API namespace's JobRepositories and brings the results of their syncs to an end."""

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        gateway: KubeGateway,
        *,
        relist_interval: float = 60.0,
        orphan_grace: timedelta = timedelta(minutes=2),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._gateway = gateway
        self._relist_interval = relist_interval
        self._orphan_grace = orphan_grace
        self._now = now
        self._informer: Informer | None = None

    # --- lifecycle ---
    def start(self) -> None:
        """A daemon watch thread; its relists also catch a status written before the result was stored."""
        if self._informer is not None:
            return
        self._informer = self._gateway.informer(
            JOB_REPOSITORIES,
            self._gateway.namespace,
            self._on_event,
            on_list=self._on_list,
            relist_interval=self._relist_interval,
        )
        self._informer.start()
        log.info("following repository syncs namespace=%s", self._gateway.namespace)

    def stop(self) -> None:
        if self._informer is not None:
            self._informer.stop()
            self._informer = None

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._informer is None or self._informer.wait_synced(timeout)

    # --- events ---
    def _on_event(self, kind: str, repository: dict[str, Any]) -> None:
        if kind != LISTED:  # a list is handled as a whole, by _on_list
            self.apply(repository, deleted=kind == "DELETED")

    def _on_list(self, repositories: list[dict[str, Any]]) -> None:
        self.sync_all(repositories)

    # --- writes ---
    def apply(self, repository: JobRepository | Mapping[str, Any], *, deleted: bool = False) -> int:
        """Bring the unfinished sync results of this repository in line with it; returns how many changed."""
        repository = JobRepository.of(repository)  # the watch hands it over as Kubernetes sent it
        uid = str(repository.metadata.uid)
        return self._apply({uid: None if deleted else repository}, lambda _row: False)

    def sync_all(self, repositories: Iterable[JobRepository | Mapping[str, Any]]) -> int:
        """All unfinished sync results against a full list: one whose repository is gone is revoked once it
        is older than the grace period (a repository made after the list was taken is not in it)."""
        parsed = [JobRepository.of(repository) for repository in repositories]
        present: dict[str, JobRepository | None] = {
            str(repository.metadata.uid): repository for repository in parsed
        }
        cutoff = self._now() - self._orphan_grace
        return self._apply(present, lambda row: row.date_created < cutoff, every=True)

    def _apply(
        self,
        repositories: Mapping[str, JobRepository | None],
        gone: Callable[[JobResult], bool],
        *,
        every: bool = False,
    ) -> int:
        changed = 0
        with self._sessionmaker() as session, session.begin():
            rows = session.scalars(
                select(JobResult)
                .where(JobResult.job_class_path == SYNC_TASK_NAME, JobResult.status.in_(_UNFINISHED))
                .order_by(JobResult.date_created)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                kwargs = row.task_kwargs or {}
                uid = str(kwargs.get("repository") or "")
                if uid in repositories:
                    repository = repositories[uid]
                elif every and gone(row):
                    repository = None
                else:
                    continue
                change = plan_sync_result(
                    repository,
                    requested_at=str(kwargs.get("sync_requested_at") or ""),
                    status=row.status,
                    started=row.date_started is not None,
                    now=self._now(),
                )
                if change is None:
                    continue
                self._write(session, row.id, change)
                changed += 1
                log.info(
                    "sync result result=%s repository=%s status=%s", row.id, uid, change.values.get("status")
                )
        return changed

    @staticmethod
    def _write(session: Session, result_id: uuid.UUID, change: SyncChange) -> None:
        values = dict(change.values)
        if change.ends:
            now = values["date_done"]
            for level, message in change.logs:
                session.add(
                    JobLogEntry(
                        job_result_id=result_id,
                        log_level=level,
                        grouping="sync",
                        message=message,
                        created=now,
                    )
                )
            session.flush()
            values.update(log_count_columns(session=session, job_result_id=result_id))
        session.execute(update(JobResult).where(JobResult.id == result_id).values(**values))
