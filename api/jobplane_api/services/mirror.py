"""Mirror every JobRun of the watched namespaces into its JobResult, so kubectl-created runs show in the API.

:func:`plan_result` decides, from a JobRun and the row as it stands, which columns to write; it is pure and
idempotent (replaying an event writes nothing). :class:`RunMirror` feeds it from watch threads and applies
each decision in a short transaction, safely alongside other API replicas doing the same.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select, update

from jobplane_api.kube import LISTED, display_name
from jobplane_api.services.result_events import notify_result_changed
from jobplane_crds.runview import RunView
from jobplane_crds.times import parse_time
from jobplane_store.models import JobResult, JobResultTombstone, JobStatus
from jobplane_store.results import log_count_columns, upsert_job_result

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

    from jobplane_api.kube import Informer, KubeGateway
    from jobplane_api.settings import ApiSettings
    from jobplane_crds.v1alpha1 import JobDefinition

__all__ = [
    "PHASE_STATUS",
    "ExistingResult",
    "ResultChange",
    "RunClaim",
    "RunMirror",
    "RunsWritten",
    "creating_run",
    "plan_result",
    "scheduled_job_of",
    "waiting_of",
]

log = logging.getLogger(__name__)

PHASE_STATUS: dict[str, JobStatus] = {
    "Pending": JobStatus.PENDING,
    "Queued": JobStatus.PENDING,
    "Scheduled": JobStatus.PENDING,
    "AwaitingApproval": JobStatus.PENDING,
    "Running": JobStatus.STARTED,
    "Succeeded": JobStatus.SUCCESS,
    "Failed": JobStatus.FAILURE,
    "Cancelled": JobStatus.REVOKED,
}
DELETED_REASON = "JobRunDeleted"
DELETED_MESSAGE = "The JobRun was deleted before it finished"
# Column sizes of job_result, so a long value from a JobRun never makes the write fail.
_LIMITS = {
    "name": 255,
    "job_class_path": 255,
    "user": 150,
    "queue": 100,
    "run_name": 253,
    "run_namespace": 63,
    "reason": 100,
    "commit": 64,
    "image_digest": 200,
    "waiting_reason": 100,
}


def _rank(status: str) -> int:
    if status == JobStatus.PENDING:
        return 0
    if status == JobStatus.STARTED:
        return 1
    return 2


def _is_terminal(status: str) -> bool:
    return _rank(status) == 2


@dataclass(frozen=True)
class ExistingResult:
    """The columns of a JobResult row that the mirror reads."""

    status: str
    name: str
    job_class_path: str
    user: str | None = None
    queue: str | None = None
    date_started: datetime | None = None
    date_done: datetime | None = None
    result: Any = None
    traceback: str | None = None
    task_kwargs: dict[str, Any] | None = None
    job_model_id: uuid.UUID | None = None
    run_name: str | None = None
    run_namespace: str | None = None
    reason: str | None = None
    message: str | None = None
    commit: str | None = None
    image_digest: str | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    dry_run: bool = False
    scheduled_job_id: uuid.UUID | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None

    @classmethod
    def of(cls, row: JobResult) -> ExistingResult:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class ResultChange:
    """What to write: a new row (``create``) or these columns of the existing one."""

    create: bool
    values: dict[str, Any]

    @property
    def ends(self) -> bool:
        """The change moves the result to a terminal status."""
        status = self.values.get("status")
        return status is not None and _is_terminal(status)


def _clip(column: str, value: Any) -> Any:
    limit = _LIMITS.get(column)
    if limit is not None and isinstance(value, str):
        return value[:limit]
    return value


def _parsed_result(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        # The summary holds only the start of a long result: keep it as text rather than lose it.
        return text


def _outcome(status: str, run: RunView, reason: str | None, message: str | None) -> dict[str, Any]:
    """The result and traceback of a run that ended without the pod reporting them."""
    summary = run.result
    if status == JobStatus.FAILURE:
        return {
            "result": {"exc_type": reason or "Failed", "exc_message": message or ""},
            "traceback": summary.get("error"),
        }
    if status == JobStatus.SUCCESS:
        return {"result": _parsed_result(summary.get("result")), "traceback": None}
    return {"result": None, "traceback": None}


def scheduled_job_of(run: Mapping[str, Any] | RunView) -> uuid.UUID | None:
    """The uid of the JobSchedule whose fire made this run: its controller owner of that kind, or None."""
    view = run if isinstance(run, RunView) else RunView(run)
    for owner in view.owner_references:
        if owner.get("kind") == "JobSchedule" and owner.get("controller") and owner.get("uid"):
            try:
                return uuid.UUID(str(owner["uid"]))
            except ValueError:
                return None
    return None


def _approval(run: RunView) -> dict[str, Any]:
    """Who approved the run and when (its spec.approval, stamped at admission); nothing unless approved."""
    approval = run.approval
    if approval.get("decision") != "Approved":
        return {"approved_by": None, "approved_at": None}
    return {"approved_by": approval.get("by"), "approved_at": parse_time(approval.get("at"))}


def waiting_of(run: RunView | None) -> dict[str, Any]:
    """Why the run waits (its Waiting condition while True), or nothing once it no longer does (or for
    no run)."""
    for condition in run.conditions if run is not None else ():
        if condition.get("type") == "Waiting" and condition.get("status") == "True":
            return {"waiting_reason": condition.get("reason"), "waiting_message": condition.get("message")}
    return {"waiting_reason": None, "waiting_message": None}


def plan_result(
    run: Mapping[str, Any],
    existing: ExistingResult | None,
    *,
    job_name: str | None,
    job_model_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> ResultChange | None:
    """The write that brings a JobResult in line with its JobRun, or None when it already is.

    A status only moves forward (PENDING < STARTED < terminal) and a terminal one is never overwritten;
    what the pod reported (result, traceback, times) wins over what the JobRun says. ``deleted`` tells
    that the JobRun is gone: one that had not ended is REVOKED.
    """
    view = RunView(run)
    # The stored phase as written (a phase this API's enum does not know yet is PENDING here, not an error).
    target: str = PHASE_STATUS.get(str(view.status.get("phase") or ""), JobStatus.PENDING)
    reason, message = view.reason, view.message
    if deleted and not _is_terminal(target):
        target, reason, message = JobStatus.REVOKED, DELETED_REASON, DELETED_MESSAGE
    class_path = view.class_path
    identity: dict[str, Any] = {
        "user": view.requested_by,
        "queue": view.queue,
        "run_name": view.name or None,
        "run_namespace": view.namespace or None,
        "commit": view.commit,
        "image_digest": view.image_digest,
        "job_model_id": job_model_id,
        "task_kwargs": None if view.inputs_secret_ref else dict(view.data),
        "scheduled_job_id": scheduled_job_of(view),
        **_approval(view),
    }
    started = parse_time(view.start_time)
    done = parse_time(view.completion_time) if _is_terminal(target) else None
    # A run that ended (or was deleted) waits for nothing, whatever its last status said.
    waiting = waiting_of(None if _is_terminal(target) else view)

    if existing is None:
        values: dict[str, Any] = {
            "id": uuid.UUID(str(view.uid)),
            "date_created": parse_time(view.creation_timestamp),
            "status": target,
            "name": job_name or class_path or view.job or view.name,
            "job_class_path": class_path or view.job,
            "dry_run": view.dry_run,
            **identity,
            "date_started": started,
            "date_done": done,
            "reason": reason,
            "message": message,
            **waiting,
        }
        if _is_terminal(target):
            values.update(_outcome(target, view, reason, message))
        values = {key: _clip(key, value) for key, value in values.items() if value is not None}
        return ResultChange(create=True, values=values)

    changes: dict[str, Any] = {}
    # The JobRun speaks for the result only while it is ahead of (or level with) what the row says.
    leads = not _is_terminal(existing.status) and _rank(target) >= _rank(existing.status)
    if leads and target != existing.status:
        changes["status"] = target
    for column, value in identity.items():
        if value is not None and getattr(existing, column) is None:
            changes[column] = value
    if view.dry_run != existing.dry_run:
        changes["dry_run"] = view.dry_run
    if class_path and class_path != existing.job_class_path:
        # The row was made before the operator resolved spec.job; the class path is the real one.
        changes["job_class_path"] = class_path
    fallbacks = {existing.job_class_path, view.spec.get("job"), class_path, view.meta.get("name")}
    if job_name and job_name != existing.name and existing.name in fallbacks:
        changes["name"] = job_name
    if started is not None and existing.date_started is None:
        changes["date_started"] = started
    if done is not None and existing.date_done is None:
        changes["date_done"] = done
    # When the run ends as the row already says (the pod's report came first), its reason is the last word.
    agrees = _is_terminal(target) and target == existing.status
    for column, value in (("reason", reason), ("message", message)):
        current = getattr(existing, column)
        if value is not None and value != current and (leads or agrees or current is None):
            changes[column] = value
    # What the run waits for follows the JobRun both ways: set while it waits, cleared once it does not
    # (or once the row is ahead of it: the pod reported, so the run waits no more).
    for column, value in (waiting if leads else waiting_of(None)).items():
        if value != getattr(existing, column):
            changes[column] = value
    if "status" in changes and _is_terminal(target):
        outcome = _outcome(target, view, reason, message)
        if existing.result is None and outcome["result"] is not None:
            changes["result"] = outcome["result"]
        if existing.traceback is None and outcome["traceback"] is not None:
            changes["traceback"] = outcome["traceback"]
    changes = {key: _clip(key, value) for key, value in changes.items()}
    # A clipped value equal to what the row holds is no change either.
    changes = {key: value for key, value in changes.items() if getattr(existing, key, object()) != value}
    return ResultChange(create=False, values=changes) if changes else None


_WRITTEN = "jobplane.runs_written"  # session.info: the registry (set by the mirror's sessionmaker)
_CLAIMS = "jobplane.run_claims"  # session.info: the claims the session's transaction will settle


class RunClaim:
    """A run the endpoint of this process created and is recording, at the version its create answered."""

    def __init__(self, uid: str, resource_version: str) -> None:
        self.uid = uid
        self.resource_version = resource_version
        self.complete = False  # the row as written leaves nothing for the mirror to add for that version
        self.committed = False
        self.settled = threading.Event()

    def recorded(self, row: JobResult, definition: JobDefinition, run: Mapping[str, Any]) -> None:
        """The endpoint wrote ``row`` for ``run``: complete if the mirror's own plan for it is empty (the
        plan it would make from the same definition), so the skip can never drop what it would write."""
        change = plan_result(
            run,
            ExistingResult.of(row),
            job_name=display_name(definition),
            job_model_id=uuid.UUID(str(definition.metadata.uid)),
        )
        self.complete = change is None

    def settle(self, *, committed: bool) -> None:
        self.committed = committed
        self.settled.set()


class RunsWritten:
    """The runs whose rows the run endpoint of this process wrote, so that the mirror's watch event for the
    very version of the run the endpoint recorded (the JobRun as created) costs no transaction.

    The endpoint announces a create before it sends it (:meth:`creating`) and claims the run it made as soon
    as the apiserver answers; the claim settles when the request's transaction ends. The watch event of a
    new run can only come after its create was sent, so the mirror, seeing it, waits for the creates then
    in flight to be answered, then for the claim of that run, if any, to settle (at most ``wait`` seconds
    in all), and skips it only if the transaction committed a row complete for that version. Any other
    version of the run (a status the operator wrote since), a rollback, a row the mirror would add to, a
    timeout: the run is mirrored as before. Other replicas' mirrors are not told and mirror as before.
    """

    def __init__(self, *, capacity: int = 4096, wait: float = 5.0) -> None:
        self._capacity = capacity
        self._wait = wait
        self._changed = threading.Condition()
        self._claims: OrderedDict[str, RunClaim] = OrderedDict()
        self._in_flight: set[int] = set()
        self._tickets = itertools.count()

    def install(self, sessions: sessionmaker[Session]) -> None:
        """Make the sessions of ``sessions`` carry this registry, and settle their claims as they end."""
        sessions.configure(info={_WRITTEN: self})
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_transaction_end", self._ended)

    def uninstall(self, sessions: sessionmaker[Session]) -> None:
        sessions.configure(info={})
        event.remove(sessions, "after_commit", self._committed)
        event.remove(sessions, "after_transaction_end", self._ended)

    @contextmanager
    def creating(self, session: Session) -> Iterator[Callable[[Mapping[str, Any]], RunClaim]]:
        """Around one create of a run: yields the function claiming the run it made."""
        ticket = next(self._tickets)
        with self._changed:
            self._in_flight.add(ticket)
        try:
            yield lambda run: self._claim(session, run)
        finally:
            with self._changed:
                self._in_flight.discard(ticket)
                self._changed.notify_all()

    def _claim(self, session: Session, run: Mapping[str, Any]) -> RunClaim:
        view = RunView(run)
        claim = RunClaim(str(view.uid), view.resource_version or "")
        session.info.setdefault(_CLAIMS, []).append(claim)
        with self._changed:
            self._claims[claim.uid] = claim
            while len(self._claims) > self._capacity:  # events that came before their claim, never taken
                self._claims.popitem(last=False)[1].settle(committed=False)
            self._changed.notify_all()
        return claim

    def covers(self, kind: str, run: Mapping[str, Any]) -> bool:
        """Whether the endpoint's own committed row already says all the mirror would for this event."""
        view = RunView(run)
        uid = str(view.uid)
        deadline = time.monotonic() + self._wait
        with self._changed:
            if kind in ("ADDED", LISTED):
                # Only a create sent before this event was received can have made this run.
                sent = set(self._in_flight)
                while uid not in self._claims and sent & self._in_flight:
                    if not self._changed.wait(deadline - time.monotonic()):
                        break
            claim = self._claims.pop(uid, None)
        if claim is None or kind not in ("ADDED", LISTED) or not claim.resource_version:
            return False
        if claim.resource_version != (view.resource_version or ""):
            return False
        settled = claim.settled.wait(max(0.0, deadline - time.monotonic()))
        return settled and claim.committed and claim.complete

    def _committed(self, session: Session) -> None:
        for claim in session.info.pop(_CLAIMS, ()):
            claim.settle(committed=True)

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the outermost one: rolled back or closed without a commit
            for claim in session.info.pop(_CLAIMS, ()):
                claim.settle(committed=False)


@contextmanager
def creating_run(session: Session) -> Iterator[Callable[[Mapping[str, Any]], RunClaim | None]]:
    """Around the run endpoint's create of a run: yields the function claiming the run made (see
    RunsWritten), or returning None if the session belongs to an API whose mirror does not run."""
    written = session.info.get(_WRITTEN)
    if not isinstance(written, RunsWritten):
        yield lambda _run: None
        return
    with written.creating(session) as claim:
        yield claim


class RunMirror:
    """Watches the JobRuns of ``settings.mirrored_namespaces`` and keeps their JobResults in line."""

    def __init__(
        self,
        settings: ApiSettings,
        sessionmaker: sessionmaker[Session],
        gateway: KubeGateway,
        *,
        relist_interval: float = 600.0,
        orphan_grace: timedelta = timedelta(minutes=2),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._namespaces = list(dict.fromkeys(settings.mirrored_namespaces))
        self._sessionmaker = sessionmaker
        self._gateway = gateway
        self._relist_interval = relist_interval
        self._orphan_grace = orphan_grace
        self._now = now
        self._informers: list[Informer] = []
        self.written = RunsWritten()

    # --- lifecycle ---
    def start(self) -> None:
        """A daemon watch thread per namespace; each lists first, catching up on runs missed while down."""
        if self._informers:
            return
        self.written.install(self._sessionmaker)
        for namespace in self._namespaces:
            informer = self._gateway.run_informer(
                namespace,
                self._on_event,
                on_list=lambda items, ns=namespace: self._on_list(ns, items),
                relist_interval=self._relist_interval,
            )
            informer.start()
            self._informers.append(informer)
        log.info("mirroring runs namespaces=%s", ",".join(self._namespaces))

    def stop(self) -> None:
        for informer in self._informers:
            informer.stop()
        if self._informers:
            self.written.uninstall(self._sessionmaker)
        self._informers = []

    def wait_synced(self, timeout: float | None = None) -> bool:
        return all(informer.wait_synced(timeout) for informer in self._informers)

    # --- one pass, for tests and start-up ---
    def sync_once(self) -> int:
        """List the runs of every mirrored namespace and apply them; returns how many results changed."""
        changed = 0
        for namespace in self._namespaces:
            runs = self._gateway.list_runs(namespace)
            changed += sum(self.apply(run) for run in runs)
            changed += self.revoke_missing(namespace, {str(RunView(run).uid) for run in runs})
        return changed

    # --- events ---
    def _on_event(self, kind: str, run: dict[str, Any]) -> None:
        if self.written.covers(kind, run):
            return
        # Names come from the definitions cache: wait (once, briefly) for its first list.
        self._gateway.wait_synced(10)
        self.apply(run, deleted=kind == "DELETED")

    def _on_list(self, namespace: str, runs: list[dict[str, Any]]) -> None:
        self.revoke_missing(namespace, {str(RunView(run).uid) for run in runs})

    def _job_of(self, run: RunView) -> JobDefinition | None:
        for key in (run.class_path, run.job):
            if key:
                definition = self._gateway.resolve_definition(str(key), run.namespace)
                if definition is not None:
                    return definition
        return None

    def apply(self, run: dict[str, Any], *, deleted: bool = False) -> bool:
        """Bring the run's JobResult in line with it, in one transaction; True if anything was written."""
        view = RunView(run)
        uid = uuid.UUID(str(view.uid))
        definition = self._job_of(view)
        job_name = display_name(definition) if definition is not None else None
        job_model_id = uuid.UUID(str(definition.metadata.uid)) if definition is not None else None
        with self._sessionmaker() as session, session.begin():
            # Twice at most: when another replica inserts the row between our read and our insert, the
            # second pass updates the row it made.
            for _ in range(2):
                row = session.execute(
                    select(JobResult).where(JobResult.id == uid).with_for_update()
                ).scalar_one_or_none()
                if row is None and session.get(JobResultTombstone, uid) is not None:
                    # A user deleted this result: an event queued before the JobRun went, or a relist
                    # while its deletion is under way, must not bring it back.
                    return False
                existing = ExistingResult.of(row) if row is not None else None
                change = plan_result(
                    run, existing, job_name=job_name, job_model_id=job_model_id, deleted=deleted
                )
                if change is None:
                    return False
                values = dict(change.values)
                if change.ends:
                    values.update(log_count_columns(session=session, job_result_id=uid))
                if change.create:
                    # Unless another writer (an API replica, the run's creator) just did.
                    if upsert_job_result(session, values) is None:
                        continue
                else:
                    session.execute(update(JobResult).where(JobResult.id == uid).values(**values))
                notify_result_changed(session, uid)
                log.info(
                    "mirrored run run=%s/%s uid=%s created=%s columns=%s status=%s",
                    view.namespace,
                    view.name,
                    uid,
                    change.create,
                    ",".join(sorted(change.values)),
                    change.values.get("status", existing.status if existing else None),
                )
                return True
        return False

    def revoke_missing(self, namespace: str, present: set[str]) -> int:
        """End the unfinished results of runs of ``namespace`` that are gone (deleted while we were away).

        Only rows older than the grace period: a run created after the list was taken is not in it.
        """
        cutoff = self._now() - self._orphan_grace
        with self._sessionmaker() as session, session.begin():
            candidates = session.scalars(
                select(JobResult.id).where(
                    JobResult.run_namespace == namespace,
                    JobResult.status.in_([JobStatus.PENDING, JobStatus.STARTED]),
                    JobResult.date_created < cutoff,
                )
            ).all()
            missing = [uid for uid in candidates if str(uid) not in present]
            if not missing:
                return 0
            session.execute(
                update(JobResult)
                .where(
                    JobResult.id.in_(missing),
                    JobResult.status.in_([JobStatus.PENDING, JobStatus.STARTED]),
                )
                .values(
                    status=JobStatus.REVOKED,
                    reason=DELETED_REASON,
                    message=DELETED_MESSAGE,
                    date_done=self._now(),
                )
            )
            notify_result_changed(session, *missing)
        log.info("revoked results of deleted runs namespace=%s count=%d", namespace, len(missing))
        return len(missing)
