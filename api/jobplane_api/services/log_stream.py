"""Following a run's log while it is written: what a log stream sends, in which order, and when it ends.

Log entries carry their sequence id (``job_log_entry.id``). The entries of one run are written one batch at
a time under a lock on its result row (:func:`jobplane_api.services.run_reports.add_logs`), so a batch that
commits later always has higher ids: a follower that has sent everything up to id N and asks for ids above
N misses nothing and repeats nothing, which is what a reconnect with ``Last-Event-ID: N`` relies on.

The status is read before the entries: once it is terminal, the entries read after it hold every entry
written before the run ended, and the stream ends with :class:`StreamEnd`. Between reads a follower waits
for a notification (:mod:`jobplane_api.services.result_events`) or its bound, never in a tight loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio.to_thread
from sqlalchemy import ColumnElement, distinct, select

from jobplane_api.errors import BadRequest
from jobplane_api.services.results import LOG, RESULT, checked_levels, log_search, readable_result
from jobplane_store.models import JobLogEntry, JobResult, JobStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from jobplane_api.identity import Principal
    from jobplane_api.services.result_events import ResultNotifier

__all__ = [
    "LogFilter",
    "LogLines",
    "StatusChanged",
    "StreamEnd",
    "StreamTarget",
    "follow_logs",
    "log_groupings",
    "log_page",
    "open_log_stream",
    "parse_resume_point",
]

# Entries per read: a run's backlog goes out in batches this size, without waiting between them.
BATCH_SIZE = 500
# The longest a follower waits without a notification before it reads again anyway.
RECHECK_SECONDS = 10.0
# A stream ends (without an end event) after this long; the client reconnects with Last-Event-ID and is
# authenticated and authorized again, so a signed-out session or a withdrawn permission stops it.
LIFETIME_SECONDS = 300.0


@dataclass(frozen=True)
class LogFilter:
    """Which entries a stream sends: levels and groupings (any of them), and searches (all of them)."""

    levels: tuple[str, ...] = ()
    groupings: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()

    @classmethod
    def of(cls, params: Mapping[str, Sequence[str]]) -> LogFilter:
        """From query parameters as the ``job-logs/`` list takes them: ``log_level``, ``grouping``, ``q``."""
        levels = tuple(checked_levels([value for value in params.get("log_level", ()) if value]))
        groupings = tuple(value for value in params.get("grouping", ()) if value)
        searches = tuple(value.strip() for value in params.get("q", ()) if value.strip())
        return cls(levels=levels, groupings=groupings, searches=searches)

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [log_search(value) for value in self.searches]
        if self.levels:
            conditions.append(JobLogEntry.log_level.in_(self.levels))
        if self.groupings:
            conditions.append(JobLogEntry.grouping.in_(self.groupings))
        return conditions


@dataclass(frozen=True)
class StreamTarget:
    """A result the caller may read, and the restrictions that still apply on every later read."""

    result_id: uuid.UUID
    result_restriction: ColumnElement[bool] | None
    log_restriction: ColumnElement[bool] | None


def open_log_stream(*, session: Session, principal: Principal, result_id: str) -> StreamTarget:
    """The checks of reading the result's logs (``job-results/<id>/logs/``): NotFound or PermissionDenied.

    Run before the stream opens, so a refusal is an ordinary 403/404 response rather than a broken stream.
    """
    result = readable_result(session=session, principal=principal, result_id=result_id)
    result_restriction = principal.sql_filter("view", RESULT)
    # As the logs/ endpoint: a log permission, when the user has one, narrows the entries further.
    log_restriction = principal.sql_filter("view", LOG) if principal.has("view", LOG) else None
    return StreamTarget(
        result_id=result.id, result_restriction=result_restriction, log_restriction=log_restriction
    )


def log_page(
    *, session: Session, target: StreamTarget, filters: LogFilter, after: int, limit: int
) -> list[JobLogEntry]:
    """Up to ``limit`` of the result's entries after id ``after`` that pass the filters, oldest first (the
    entries a log page shows before its stream takes over)."""
    conditions = [
        JobLogEntry.job_result_id == target.result_id,
        JobLogEntry.id > after,
        *filters.conditions(),
    ]
    if target.log_restriction is not None:
        conditions.append(target.log_restriction)
    return list(session.scalars(select(JobLogEntry).where(*conditions).order_by(JobLogEntry.id).limit(limit)))


def log_groupings(*, session: Session, result_id: uuid.UUID) -> list[str]:
    """The groupings of the result's log entries, sorted (a log page's grouping filter offers them)."""
    return list(
        session.scalars(
            select(distinct(JobLogEntry.grouping))
            .where(JobLogEntry.job_result_id == result_id)
            .order_by(JobLogEntry.grouping)
        )
    )


def parse_resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: after the ``Last-Event-ID`` a reconnecting client sends, else ``after``."""
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise BadRequest("Last-Event-ID must be the id of a log entry (an integer).") from None
        if not 0 <= value <= 2**62:
            raise BadRequest("Last-Event-ID is out of range.")
        return value
    return after or 0


@dataclass(frozen=True)
class LogLines:
    """New entries, oldest first; each goes out as one event whose id is the entry's id."""

    entries: list[JobLogEntry]


@dataclass(frozen=True)
class StatusChanged:
    """The result's status, first as found and then whenever it moves."""

    status: str


@dataclass(frozen=True)
class StreamEnd:
    """The run has ended and every entry written before its end was sent; ``status`` None: it was deleted."""

    status: str | None


@dataclass
class _Snapshot:
    status: str | None
    entries: list[JobLogEntry] = field(default_factory=list)


def _read(
    sessions: sessionmaker[Session], target: StreamTarget, after: int, filters: LogFilter, limit: int
) -> _Snapshot:
    with sessions() as session:
        # The status first: entries read after a terminal status include all that came before the end.
        status_query = select(JobResult.status).where(JobResult.id == target.result_id)
        if target.result_restriction is not None:
            status_query = status_query.where(target.result_restriction)
        status = session.scalar(status_query)
        if status is None:
            return _Snapshot(status=None)
        conditions = [JobLogEntry.job_result_id == target.result_id, JobLogEntry.id > after]
        if target.log_restriction is not None:
            conditions.append(target.log_restriction)
        conditions.extend(filters.conditions())
        entries = list(
            session.scalars(
                select(JobLogEntry).where(*conditions).order_by(JobLogEntry.id).limit(limit)
            ).all()
        )
        session.expunge_all()
        return _Snapshot(status=status, entries=entries)


async def follow_logs(
    target: StreamTarget,
    *,
    sessions: sessionmaker[Session],
    notifier: ResultNotifier,
    after: int = 0,
    filters: LogFilter | None = None,
    batch_size: int | None = None,
    recheck: float | None = None,
    lifetime: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[LogLines | StatusChanged | StreamEnd]:
    """The result's status and its entries with ids above ``after``, as they are written, until it ends.

    Ends with :class:`StreamEnd` once the run is terminal (or its result is gone) and everything has been
    sent; ends silently when ``lifetime`` has passed, for the client to resume with its last id.
    """
    filters = filters or LogFilter()
    # The module's values as they are now (not at import): tests change them.
    batch_size = batch_size or BATCH_SIZE
    recheck = RECHECK_SECONDS if recheck is None else recheck
    deadline = clock() + (LIFETIME_SECONDS if lifetime is None else lifetime)
    sent_status: str | None = None
    async with notifier.follow(target.result_id) as wakeup:
        while True:
            wakeup.clear()
            snapshot = await anyio.to_thread.run_sync(_read, sessions, target, after, filters, batch_size)
            if snapshot.status is None:
                yield StreamEnd(status=None)
                return
            if snapshot.status != sent_status:
                sent_status = snapshot.status
                yield StatusChanged(status=snapshot.status)
            if snapshot.entries:
                after = snapshot.entries[-1].id
                yield LogLines(entries=snapshot.entries)
                if len(snapshot.entries) == batch_size:
                    continue  # more are waiting: no need to be told
            if JobStatus(snapshot.status).is_terminal:
                yield StreamEnd(status=snapshot.status)
                return
            remaining = deadline - clock()
            if remaining <= 0:
                return
            await wakeup.wait(min(recheck, remaining))
