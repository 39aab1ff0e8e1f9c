"""Results retention on SQLite and a real Postgres: the right results go, in batches of short transactions,
with their log entries and files; the rest stay. And the ``jobplane results-retention`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import FileProxy, JobLogEntry, JobResult, JobResultTombstone, JobStatus
from jobplane_store.retention import RETENTION_USER, RetentionPolicy, apply_retention
from tests.conftest import REPO_ROOT

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    def add(
        self, job: str, *, days_ago: float, status: str = JobStatus.SUCCESS, run: bool = True
    ) -> uuid.UUID:
        """A result of ``job`` created ``days_ago`` before NOW, with two log entries, an output file and
        an uploaded input; of a JobRun (``run``) or a local run."""
        result_id = uuid.uuid4()
        with self.sessions.begin() as session:
            session.add(
                JobResult(
                    id=result_id,
                    name=job,
                    job_class_path=job,
                    user="ada",
                    status=status,
                    date_created=NOW - timedelta(days=days_ago),
                    run_name=f"run-{result_id.hex[:8]}" if run else None,
                    run_namespace="jobs" if run else None,
                )
            )
            session.flush()
            session.add_all(
                [
                    JobLogEntry(job_result_id=result_id, message="one"),
                    JobLogEntry(job_result_id=result_id, message="two"),
                    FileProxy(name="out.txt", content=b"out", size=3, job_result_id=result_id),
                    FileProxy(name="in.txt", content=b"in", size=2, input_for_result_id=result_id),
                ]
            )
        return result_id

    def results(self) -> set[uuid.UUID]:
        with self.sessions() as session:
            return set(session.scalars(select(JobResult.id)))

    def children_of(self, ids: set[uuid.UUID]) -> tuple[int, int]:
        with self.sessions() as session:
            logs = session.scalar(
                select(func.count()).select_from(JobLogEntry).where(JobLogEntry.job_result_id.in_(ids))
            )
            files = session.scalar(
                select(func.count())
                .select_from(FileProxy)
                .where(FileProxy.job_result_id.in_(ids) | FileProxy.input_for_result_id.in_(ids))
            )
            return int(logs or 0), int(files or 0)

    def tombstones(self) -> dict[uuid.UUID, str | None]:
        with self.sessions() as session:
            return {row.id: row.deleted_by for row in session.scalars(select(JobResultTombstone))}


@pytest.fixture
def store(store_url: str) -> Store:
    engine = create_store_engine(store_url)
    ensure_schema(engine)
    return Store(engine, make_sessionmaker(engine))


def _count_commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _connection: commits.append(1))
    return commits


def test_results_older_than_the_age_go_in_batches_with_their_logs_and_files(store: Store) -> None:
    old = {
        store.add("a.A", days_ago=40 + n, status=status)
        for n, status in enumerate(JobStatus)
        if status.is_terminal
    }
    old |= {store.add("b.B", days_ago=31), store.add("b.B", days_ago=35, run=False)}
    running = store.add("a.A", days_ago=45, status=JobStatus.STARTED)
    pending = store.add("b.B", days_ago=60, status=JobStatus.PENDING)
    recent = {store.add("a.A", days_ago=29), store.add("b.B", days_ago=1)}
    commits = _count_commits(store.engine)

    report = apply_retention(
        store.sessions, RetentionPolicy(max_age=timedelta(days=30)), now=NOW, batch_size=2
    )

    assert store.results() == {running, pending} | recent
    assert store.children_of(old) == (0, 0)
    assert store.children_of({running, pending} | recent) == (8, 8)
    # Five results at two per transaction: three transactions that deleted, none bigger than a batch.
    assert (report.results, report.logs, report.files, report.batches) == (5, 10, 10, 3)
    assert len(commits) == 3
    # The results of JobRuns leave tombstones (the mirror never records them again); the local run none.
    assert len(store.tombstones()) == 4
    assert set(store.tombstones().values()) == {RETENTION_USER}


def test_beyond_the_newest_n_of_each_job_go_and_unfinished_ones_stay(store: Store) -> None:
    a = [store.add("a.A", days_ago=day) for day in (1, 2, 3, 4, 5)]
    a_running = store.add("a.A", days_ago=6, status=JobStatus.STARTED)
    b = [store.add("b.B", days_ago=day) for day in (10, 20)]
    c = store.add("c.C", days_ago=400)

    report = apply_retention(store.sessions, RetentionPolicy(keep_per_job=2), now=NOW, batch_size=2)

    assert store.results() == {a[0], a[1], a_running, *b, c}
    assert store.children_of(set(a[2:])) == (0, 0)
    assert (report.results, report.batches) == (3, 2)


def test_the_newest_n_are_kept_even_when_they_were_created_at_the_same_moment(store: Store) -> None:
    same = [store.add("a.A", days_ago=3) for _ in range(4)]

    apply_retention(store.sessions, RetentionPolicy(keep_per_job=3), now=NOW, batch_size=10)

    assert store.results() == set(sorted(same)[1:])  # the newest by (created, id)


def test_age_and_count_together_each_delete_what_they_reach(store: Store) -> None:
    old = store.add("a.A", days_ago=100)
    many = [store.add("b.B", days_ago=day) for day in (1, 2, 3)]
    policy = RetentionPolicy(max_age=timedelta(days=90), keep_per_job=2)

    report = apply_retention(store.sessions, policy, now=NOW, batch_size=1000)

    assert store.results() == {many[0], many[1]}
    assert old not in store.results()
    assert (report.results, report.batches) == (2, 2)


def test_nothing_past_the_policy_deletes_nothing_and_writes_nothing(store: Store) -> None:
    kept = {store.add("a.A", days_ago=1), store.add("a.A", days_ago=2)}
    commits = _count_commits(store.engine)

    report = apply_retention(
        store.sessions, RetentionPolicy(max_age=timedelta(days=30), keep_per_job=5), now=NOW, batch_size=10
    )

    assert store.results() == kept
    assert (report.results, report.batches) == (0, 0)
    assert store.tombstones() == {}
    assert len(commits) <= 1  # the age pass's empty transaction at most


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBPLANE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "results-retention", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_applies_the_policy_and_says_what_it_deleted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = create_store_engine(url)
    ensure_schema(engine)
    store = Store(engine, make_sessionmaker(engine))
    # The command reads the real clock: ages relative to NOW are far enough either side of any today.
    ancient = store.add("a.A", days_ago=3650)
    fresh_id = uuid.uuid4()
    with store.sessions.begin() as session:
        session.add(JobResult(id=fresh_id, name="a.A", job_class_path="a.A", status=JobStatus.SUCCESS))

    done = _cli(url, "--max-age", "30d", "--batch-size", "50")

    assert done.returncode == 0, done.stderr
    assert "Results retention: deleted 1 results, 2 log entries and 2 files in 1 batches" in done.stdout
    assert store.results() == {fresh_id}
    assert ancient in store.tombstones()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs a maximum age, a count to keep per job, or both"),
        (("--max-age", "30"), "'30' is not an age"),
        (("--max-age", "0d"), "'0d' is not an age"),
        (("--keep-per-job", "0"), "at least 1"),
        (("--max-age", "1d", "--batch-size", "0"), "--batch-size must be at least 1"),
    ],
)
def test_the_command_refuses_a_policy_it_cannot_apply(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = _cli(f"sqlite:///{tmp_path / 'store.sqlite3'}", *args)
    assert done.returncode == 2
    assert message in done.stderr
