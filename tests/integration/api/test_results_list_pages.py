"""The results list's pages on a real Postgres: a page past the middle, read from the oldest end of the
index, holds the very rows (in the very order) that walking from the newest end gives, with Nautobot's
count/next/previous."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.identity import Grant, Principal
from jobplane_api.pagination import PageParams
from jobplane_api.services.results import list_results
from jobplane_store.models import JobResult, JobStatus

pytestmark = pytest.mark.postgres

BASE = "http://api.test"
URL = f"{BASE}/api/extras/job-results/"
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
JOB = uuid.UUID("22222222-2222-4222-8222-222222222222")
ROOT = Principal(username="root", is_superuser=True)
ADA = Principal(
    username="ada",
    grants=tuple(
        grant
        for grant in [
            Grant.from_permission(
                name="own",
                object_types=["extras.jobresult"],
                actions=["view"],
                constraints={"user": "$user"},
            )
        ]
        if grant is not None
    ),
)


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> list[JobResult]:
    """53 results created in bursts of up to four at the same instant (ties broken by id only)."""
    created = [
        JobResult(
            id=uuid.uuid4(),
            name=f"Result {index}",
            job_class_path="audit.Audit",
            job_model_id=JOB if index % 5 else None,
            user=("ada", "bob", "cy")[index % 3],
            status=JobStatus.FAILURE if index % 4 == 1 else JobStatus.SUCCESS,
            date_created=START + timedelta(minutes=index // 4),
        )
        for index in range(53)
    ]
    with sessions.begin() as session:
        session.add_all(created)
    return created


def newest_first(rows: list[JobResult], keep: Any = lambda row: True) -> list[uuid.UUID]:
    return [
        row.id for row in sorted(rows, key=lambda row: (row.date_created, row.id), reverse=True) if keep(row)
    ]


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL sent through ``engine`` in the block, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


CASES = [
    ("everything", ROOT, {}, lambda row: True),
    ("failed", ROOT, {"status": ["failure"]}, lambda row: row.status == JobStatus.FAILURE),
    ("one job", ROOT, {"job_model_id": [str(JOB)]}, lambda row: row.job_model_id == JOB),
    (
        "a window of bob's",
        ROOT,
        {
            "user": ["bob"],
            "date_created__gte": ["2026-12-01T08:02:00"],
            "date_created__lt": ["2026-12-01T08:11:00"],
        },
        lambda row: (
            row.user == "bob"
            and START + timedelta(minutes=2) <= row.date_created < START + timedelta(minutes=11)
        ),
    ),
    ("own results only", ADA, {}, lambda row: row.user == "ada"),
    (
        "own failed results",
        ADA,
        {"status": ["FAILURE"]},
        lambda row: row.user == "ada" and row.status == "FAILURE",
    ),
]


@pytest.mark.parametrize(
    ("principal", "filters", "keep"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("limit", [1, 4, 10, 60])
def test_every_page_from_either_end_is_the_newest_first_slice(
    sessions: sessionmaker[Session],
    rows: list[JobResult],
    principal: Principal,
    filters: dict[str, list[str]],
    keep: Any,
    limit: int,
) -> None:
    expected = newest_first(rows, keep)
    count = len(expected)
    assert count > 1
    for offset in range(count + limit + 1):
        page = PageParams(limit=limit, offset=offset, url=f"{URL}?limit={limit}&offset={offset}")
        with sessions() as session:
            listed = list_results(
                session=session, principal=principal, page=page, base_url=BASE, filters=filters
            )
        assert [record.id for record in listed.results] == expected[offset : offset + limit], offset
        assert listed.count == count
        following = offset + limit
        assert listed.next == (f"{URL}?limit={limit}&offset={following}" if following < count else None)
        previous = max(0, offset - limit)
        assert listed.previous == (f"{URL}?limit={limit}&offset={previous}" if offset > 0 else None)


def test_a_page_past_the_middle_walks_the_index_from_the_oldest_end(
    engine: Engine, sessions: sessionmaker[Session], rows: list[JobResult]
) -> None:
    def walk(offset: int) -> tuple[str, int] | None:
        """The direction of the page query and the offset it walks; None when there was none."""
        page = PageParams(limit=10, offset=offset, url=URL)
        with sessions() as session, statements(engine) as sent:
            list_results(session=session, principal=ROOT, page=page, base_url=BASE, filters={})
        listed = [(sql, parameters) for sql, parameters in sent if "OFFSET" in sql]
        if not listed:
            return None
        ((sql, parameters),) = listed
        direction = re.search(r"ORDER BY job_result\.date_created (ASC|DESC)", sql)
        offset_name = re.search(r"OFFSET %\((\w+)\)s", sql)
        assert direction is not None, sql
        assert offset_name is not None, sql
        return direction.group(1), parameters[offset_name.group(1)]

    assert walk(0) == ("DESC", 0)
    assert walk(20) == ("DESC", 20)
    # 53 results: the page at 30 ends 13 from the oldest, nearer that end than 30 from the newest.
    assert walk(30) == ("ASC", 13)
    assert walk(45) == ("ASC", 0)  # the last page, short: 45..52
    # Past the end the count says there is nothing: no page query at all.
    assert walk(53) is None
