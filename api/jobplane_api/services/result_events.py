"""Word that a job result changed (new log entries, a new status), over Postgres LISTEN/NOTIFY.

Writers call :func:`notify_result_changed` in their transaction; Postgres delivers the notification when
it commits, to every API replica, whichever one took the write. Each API process keeps one listening
connection (:class:`ResultNotifier`) and wakes the log streams that follow that result. A notification
only says "look again": readers always re-read the store, and wait with a bound, so one that is lost
(the listener reconnecting, a writer that forgot) delays a stream by at most that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy import func, select

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

__all__ = ["CHANNEL", "ResultNotifier", "Wakeup", "notify_result_changed"]

log = logging.getLogger(__name__)

CHANNEL = "jobplane_job_result"


def notify_result_changed(session: Session, *result_ids: uuid.UUID) -> None:
    """Tell the streams following these results to look again, once this transaction commits.

    Postgres only (SQLite has no NOTIFY; the local runner has no streams). Within one transaction Postgres
    sends one notification per distinct payload, so calling this per batch costs one message per result.
    """
    if not result_ids or session.get_bind().dialect.name != "postgresql":
        return
    for result_id in dict.fromkeys(result_ids):
        session.execute(select(func.pg_notify(CHANNEL, str(result_id))))


class Wakeup:
    """One follower's doorbell: rung by a notification for its result, or by the listener reconnecting."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    def clear(self) -> None:
        """Call before reading the store: what is written during the read rings again."""
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """Wait until rung or ``timeout`` seconds have passed; True when rung."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class ResultNotifier:
    """The API process's one ``LISTEN`` connection, fanning notifications out to the streams that wait.

    Started and stopped by the app's lifespan, in its event loop. Without Postgres (or before it is
    reachable) followers still work: their bounded waits simply time out.
    """

    def __init__(self, engine: Engine, *, retry_max: float = 30.0) -> None:
        self._conninfo: str | None = None
        if engine.dialect.name == "postgresql":
            # libpq's own URL: SQLAlchemy's driver suffix (postgresql+psycopg) means nothing to it.
            self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._retry_max = retry_max
        self._followers: dict[uuid.UUID, set[Wakeup]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None

    @property
    def listening(self) -> bool:
        return self._listening is not None and self._listening.is_set()

    async def start(self, ready_timeout: float = 5.0) -> None:
        """Start listening; waits (up to ``ready_timeout``) for the first LISTEN, so that streams opened
        right after start-up are woken from their first write."""
        if self._conninfo is None or self._task is not None:
            return
        # Made here, in the loop that serves the app (a test may serve the same app in several loops).
        listening = self._listening = asyncio.Event()
        self._task = asyncio.create_task(self._listen(listening), name="jobplane-result-notifier")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait(), ready_timeout)
        if not listening.is_set():
            log.warning("result notifications not listening yet; log streams re-read on their timer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listening = None

    @contextlib.asynccontextmanager
    async def follow(self, result_id: uuid.UUID) -> AsyncIterator[Wakeup]:
        """A doorbell for ``result_id`` for as long as the block runs."""
        wakeup = Wakeup()
        self._followers.setdefault(result_id, set()).add(wakeup)
        try:
            yield wakeup
        finally:
            followers = self._followers.get(result_id)
            if followers is not None:
                followers.discard(wakeup)
                if not followers:
                    del self._followers[result_id]

    def _ring(self, payload: str) -> None:
        try:
            result_id = uuid.UUID(payload)
        except ValueError:
            return
        for wakeup in self._followers.get(result_id, ()):
            wakeup.ring()

    def _ring_all(self) -> None:
        for followers in self._followers.values():
            for wakeup in followers:
                wakeup.ring()

    async def _listen(self, listening: asyncio.Event) -> None:
        import psycopg  # local: an optional dependency (the postgres extra); a SQLite store never listens

        assert self._conninfo is not None
        delay = 1.0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    listening.set()
                    delay = 1.0
                    # Whatever was written while no one listened: every follower looks again.
                    self._ring_all()
                    async for notification in conn.notifies():
                        self._ring(notification.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("result notifications interrupted error=%s retry_in=%.0fs", exc, delay)
            listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
