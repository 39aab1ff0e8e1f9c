"""A sync's job result follows the JobRepository's status: planned from it, then written by the mirror."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.kube import LISTED
from jobplane_api.services.sync_results import SyncResultMirror, new_sync_result, plan_sync_result
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import JobLogEntry, JobResult, JobStatus
from tests.builders import job_repository
from tests.unit.api.test_git_repositories import FakeCustomObjects, fake_gateway

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
REQUESTED = "2026-03-04T05:06:07.000000Z"
EARLIER = "2026-03-04T05:00:00.000000Z"
LATER = "2026-03-04T05:07:00.000000Z"


def repository(**status: Any) -> dict[str, Any]:
    return job_repository(
        "seed-jobs",
        metadata={"uid": "5d0c2a57-8f0e-4b8e-9a36-2c3f2b1e0a11"},
        url="https://h/x",
        slug="seed_jobs",
        status=status,
    )


def synced(value: str, reason: str, message: str) -> list[dict[str, str]]:
    return [
        {
            "type": "Synced",
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2026-03-04T05:06:08Z",
        }
    ]


def plan(repo: dict[str, Any] | None, status: str = JobStatus.PENDING, started: bool = False) -> Any:
    return plan_sync_result(repo, requested_at=REQUESTED, status=status, started=started, now=NOW)


def test_a_sync_is_pending_until_the_operator_acts_on_its_request() -> None:
    assert plan(repository()) is None
    # An earlier request's sync ending says nothing of this one.
    assert plan(repository(syncRequest=EARLIER, conditions=synced("True", "Synced", "ok"))) is None


def test_a_sync_starts_with_its_job_and_ends_with_the_synced_condition() -> None:
    running = repository(syncRequest=REQUESTED, syncJob="seed-jobs-sync-abc", syncingCommit="c" * 40)
    started = plan(running)
    assert started is not None
    assert not started.ends
    assert started.values == {
        "status": JobStatus.STARTED,
        "date_started": NOW,
        "commit": "c" * 40,
        "message": f"Syncing commit {'c' * 40} in Job seed-jobs-sync-abc",
    }
    assert plan(running, JobStatus.STARTED, started=True) is None
    done = repository(
        syncRequest=REQUESTED,
        commit="c" * 40,
        conditions=synced("True", "Synced", "2 jobs at cccccc"),
        importErrors={"seed_jobs.jobs.broken": "line 3: invalid syntax"},
    )
    ended = plan(done, JobStatus.STARTED, started=True)
    assert ended is not None
    assert ended.ends
    assert ended.values == {
        "status": JobStatus.SUCCESS,
        "date_done": NOW,
        "reason": "Synced",
        "message": "2 jobs at cccccc",
        "commit": "c" * 40,
    }
    # A module that does not import is an error line, as Nautobot logs it; the sync still succeeds.
    assert ended.logs == (
        ("info", "2 jobs at cccccc"),
        ("error", "Error in loading Jobs from Git repository: seed_jobs.jobs.broken: line 3: invalid syntax"),
    )
    assert plan(done, JobStatus.SUCCESS, started=True) is None


def test_a_failed_or_superseding_sync_ends_it_and_a_deleted_repository_revokes_it() -> None:
    failed = plan(repository(syncRequest=REQUESTED, conditions=synced("False", "RefNotFound", "no main")))
    assert failed is not None
    assert (failed.values["status"], failed.values["reason"], failed.values["date_started"]) == (
        JobStatus.FAILURE,
        "RefNotFound",
        NOW,
    )
    assert failed.logs == (("failure", "Sync of seed-jobs failed (RefNotFound): no main"),)
    # A later request (a webhook, another click) acted on syncs this one's changes too.
    later = plan(repository(syncRequest=LATER, conditions=synced("True", "Synced", "ok")))
    assert later is not None
    assert later.values["status"] == JobStatus.SUCCESS
    # Acted on, but no verdict yet: nothing to say.
    assert plan(repository(syncRequest=REQUESTED, conditions=synced("Unknown", "Syncing", "-"))) is None
    gone = plan(None, JobStatus.STARTED, started=True)
    assert gone is not None
    assert gone.values["status"] == JobStatus.REVOKED
    assert gone.values["reason"] == "JobRepositoryDeleted"


# --- the mirror, on SQLite ----------------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    ensure_schema(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_the_mirror_follows_repository_events_to_the_end(sessions: sessionmaker[Session]) -> None:
    fake = FakeCustomObjects()
    created = fake.add("seed-jobs", {"url": "https://h/x", "slug": "seed_jobs"})
    mirror = SyncResultMirror(sessions, fake_gateway(fake), now=lambda: NOW)
    with sessions.begin() as session:
        row = new_sync_result(repository=created, requested_at=REQUESTED, user="ada", now=NOW)
        session.add(row)
        result_id = row.id
    event = copy.deepcopy(created)
    event["status"] = {"syncRequest": REQUESTED, "syncJob": "j", "syncingCommit": "c" * 40}
    mirror._on_event(LISTED, event)  # a list is handled whole by _on_list
    assert mirror.apply(event) == 1
    assert mirror.apply(event) == 0  # replaying an event writes nothing
    event["status"] = {
        "syncRequest": REQUESTED,
        "commit": "c" * 40,
        "conditions": synced("True", "Synced", "2 jobs"),
        "importErrors": {"seed_jobs.jobs.broken": "boom"},
    }
    mirror._on_event("MODIFIED", event)
    with sessions() as session:
        result = session.get(JobResult, result_id)
        assert result is not None
        assert (result.status, result.commit, result.info_log_count, result.error_log_count) == (
            JobStatus.SUCCESS,
            "c" * 40,
            1,
            1,
        )
        assert result.date_started == result.date_done
        levels = session.scalars(select(JobLogEntry.log_level).where(JobLogEntry.job_result_id == result_id))
        assert sorted(levels) == ["error", "info"]


def test_a_list_revokes_the_results_of_repositories_gone_after_the_grace(
    sessions: sessionmaker[Session],
) -> None:
    fake = FakeCustomObjects()
    created = fake.add("seed-jobs", {"url": "https://h/x", "slug": "seed_jobs"})
    clock = [NOW]
    mirror = SyncResultMirror(sessions, fake_gateway(fake), now=lambda: clock[0])
    with sessions.begin() as session:
        row = new_sync_result(repository=created, requested_at=REQUESTED, user=None, now=NOW)
        session.add(row)
        result_id = row.id
    assert mirror.sync_all([]) == 0  # too young: its repository may be newer than the list
    clock[0] = NOW + timedelta(minutes=3)
    assert mirror.sync_all([created]) == 0  # present, and not acted on yet
    mirror._on_list([])
    with sessions() as session:
        result = session.get(JobResult, result_id)
        assert result is not None
        assert (result.status, result.reason, result.failure_log_count) == (
            JobStatus.REVOKED,
            "JobRepositoryDeleted",
            1,
        )
