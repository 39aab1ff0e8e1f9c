"""The log stream (Server-Sent Events) against the real API on uvicorn and a real Postgres.

Logs are written the way a job pod writes them, through the report endpoints with a run token, and read
with httpx streaming as a client would. The streams' fallback timer is set to an hour, so an entry that
arrives at all arrived because Postgres notified the API of it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session, sessionmaker

from jobplane.joblog import LogEntry
from jobplane_api.app import create_app
from jobplane_api.services import log_stream, run_reports
from jobplane_api.services.result_events import Wakeup, notify_result_changed
from jobplane_api.settings import ApiSettings
from jobplane_crds.runtoken import run_token
from jobplane_store.models import JobLogEntry, JobResult, JobStatus, utcnow
from tests.cluster.cluster import wait_for
from tests.conftest import run_coroutine
from tests.integration.api.conftest import serve_app
from tests.integration.api.test_results_endpoints import token

pytestmark = pytest.mark.postgres

KEY = "k" * 40
# A test that waits longer than this for an event has failed (the stream would otherwise wait an hour).
READ_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def no_timer_wakeups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_stream, "RECHECK_SECONDS", 3600.0)


@pytest.fixture
def api(engine: Engine) -> Iterator[str]:
    app = create_app(ApiSettings(kubernetes=False, run_token_key=KEY), engine=engine, mirror=False)
    with serve_app(app) as url:
        assert app.state.result_notifier.listening
        yield url


class Pod:
    """What a job pod does to the API: report its start, its log batches and its result."""

    def __init__(self, url: str, user: str = "ada") -> None:
        self.uid = str(uuid.uuid4())
        self.client = httpx.Client(
            base_url=f"{url}/api/runs/{self.uid}/",
            headers={"Authorization": f"Bearer {run_token(KEY.encode(), self.uid)}"},
        )
        self.user = user

    def started(self) -> Pod:
        body = {"class_path": "audit.Audit", "run_name": "audit-1", "namespace": "ops", "user": self.user}
        self.client.post("started/", json=body).raise_for_status()
        return self

    def log(self, *messages: str, level: str = "info", grouping: str = "run") -> None:
        entries = [{"level": level, "grouping": grouping, "message": message} for message in messages]
        self.client.post("logs/", json={"entries": entries}).raise_for_status()

    def finish(self, status: str = "SUCCESS") -> None:
        self.client.post("result/", json={"status": status, "result": {"ok": True}}).raise_for_status()


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Stream:
    """An open SSE response, read one event at a time."""

    response: httpx.Response
    lines: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = self.response.iter_lines()

    def next(self) -> Event:
        event, data = Event(), []
        for line in self.lines:
            if not line:
                if data or event.event != "message":
                    event.data = "\n".join(data)
                    return event
                continue
            if line.startswith(":"):
                continue  # a keep-alive comment
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event.event = value
            elif name == "id":
                event.id = value
            elif name == "retry":
                event.retry = int(value)
        raise EOFError("the stream closed")

    def logs(self, count: int) -> list[Event]:
        found = []
        while len(found) < count:
            event = self.next()
            if event.event == "log":
                found.append(event)
        return found

    def closed(self) -> bool:
        try:
            self.next()
        except EOFError:
            return True
        return False


@contextmanager
def stream(client: httpx.Client, uid: str, headers: dict[str, str], **params: Any) -> Iterator[Stream]:
    with client.stream(
        "GET",
        f"/api/extras/job-results/{uid}/logs/stream/",
        headers=headers,
        params=params,
        timeout=httpx.Timeout(5.0, read=READ_TIMEOUT),
    ) as response:
        yield Stream(response)


@pytest.fixture
def client(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api) as client:
        yield client


def test_entries_stream_as_they_are_written_then_end_when_the_run_ends(
    api: str, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log("one", "two")
    with stream(client, pod.uid, headers) as events:
        assert events.response.status_code == 200
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.response.headers["x-accel-buffering"] == "no"
        assert events.response.headers["cache-control"] == "no-cache"
        status = events.next()
        assert (status.event, status.json(), status.retry) == ("status", {"status": "STARTED"}, 2000)
        backlog = events.logs(2)
        assert [event.json()["message"] for event in backlog] == ["one", "two"]
        # The event id is the entry's id, as the job-logs endpoint shows it.
        assert [event.id for event in backlog] == [str(event.json()["id"]) for event in backlog]
        assert backlog[0].json()["url"].endswith(f"/api/extras/job-logs/{backlog[0].id}/")
        # Written while the stream waits: it wakes on Postgres' notification, not on its (hour-long) timer.
        pod.log("three")
        (live,) = events.logs(1)
        assert live.json()["message"] == "three"
        assert int(live.id or 0) > int(backlog[-1].id or 0)
        pod.log("four", level="warning")
        (last,) = events.logs(1)
        assert (last.json()["message"], last.json()["log_level"]) == ("four", "warning")
        # Only once "four" is here: had the stream not read between the two writes (a busy machine), one
        # read would hold both, its status first (as test_the_last_batch_and_the_result_read_at_once_...).
        pod.finish()
        ended = events.next()
        assert (ended.event, ended.json()) == ("status", {"status": "SUCCESS"})
        end = events.next()
        assert (end.event, end.json(), end.id) == ("end", {"status": "SUCCESS"}, None)
        assert events.closed()


class Doorbells:
    """A notifier whose doorbells the test rings itself: the follower reads exactly when told to."""

    def __init__(self) -> None:
        self.wakeups: list[Wakeup] = []

    @asynccontextmanager
    async def follow(self, result_id: uuid.UUID) -> AsyncIterator[Wakeup]:
        wakeup = Wakeup()
        self.wakeups.append(wakeup)
        yield wakeup

    def ring(self) -> None:
        for wakeup in self.wakeups:
            wakeup.ring()


def test_the_last_batch_and_the_result_read_at_once_lose_nothing(sessions: sessionmaker[Session]) -> None:
    """A pod's last log batch and its result both written before the follower reads again (a busy API):
    one read holds both, and the stream sends the status, the entry, then its end."""
    uid = uuid.uuid4()
    with sessions.begin() as session:
        session.add(JobResult(id=uid, name="a", job_class_path="a.A", status=JobStatus.STARTED))

    def log(message: str) -> None:
        with sessions.begin() as session:
            entry = LogEntry(level="info", message=message, created=utcnow())
            run_reports.add_logs(session=session, run_uid=uid, entries=[entry])

    def described(event: object) -> object:
        if isinstance(event, log_stream.LogLines):
            return [entry.message for entry in event.entries]
        return event

    async def follow() -> tuple[list[object], list[object]]:
        doorbells = Doorbells()
        target = log_stream.StreamTarget(result_id=uid, result_restriction=None, log_restriction=None)
        events = log_stream.follow_logs(target, sessions=sessions, notifier=doorbells, recheck=3600.0)  # type: ignore[arg-type]
        first = [described(await anext(events)) for _ in range(2)]
        # The follower sent "one" and is suspended before it waits: both writes land before its next read.
        log("two")
        with sessions.begin() as session:
            run_reports.record_result(
                session=session,
                run_uid=uid,
                status=JobStatus.SUCCESS,
                result=None,
                traceback=None,
                now=utcnow(),
            )
        doorbells.ring()
        return first, [described(event) async for event in events]

    log("one")
    first, rest = run_coroutine(follow())
    assert first == [log_stream.StatusChanged(status="STARTED"), ["one"]]
    assert rest == [
        log_stream.StatusChanged(status="SUCCESS"),
        ["two"],
        log_stream.StreamEnd(status="SUCCESS"),
    ]


def test_a_reconnect_with_last_event_id_resumes_without_gaps_or_duplicates(
    api: str, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log(*(f"line {n}" for n in range(3)))
    with stream(client, pod.uid, headers) as events:
        received = events.logs(3)
    # The client dropped after the second entry it handled; more is written while it is away.
    last_seen = received[1].id
    assert last_seen is not None
    pod.log(*(f"line {n}" for n in range(3, 6)))
    with stream(client, pod.uid, {**headers, "Last-Event-ID": last_seen}) as events:
        assert events.next().event == "status"
        resumed = events.logs(4)
        pod.finish()
        assert events.next().json() == {"status": "SUCCESS"}
        assert events.next().event == "end"
    messages = [event.json()["message"] for event in received[:2] + resumed]
    assert messages == [f"line {n}" for n in range(6)]
    ids = [int(event.id or 0) for event in received[:2] + resumed]
    assert ids == sorted(set(ids))
    # Last-Event-ID wins over ?after= (a page's starting point), which alone also works.
    with stream(client, pod.uid, {**headers, "Last-Event-ID": str(ids[4])}, after=0) as events:
        assert [event.json()["message"] for event in events.logs(1)] == ["line 5"]
        assert events.next().event == "end"
    with stream(client, pod.uid, headers, after=ids[3]) as events:
        assert [event.json()["message"] for event in events.logs(2)] == ["line 4", "line 5"]


def test_a_finished_run_sends_its_whole_log_and_end_at_once(
    api: str, client: httpx.Client, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several reads of a small batch size: the backlog goes out without waiting between batches.
    monkeypatch.setattr(log_stream, "BATCH_SIZE", 2)
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log(*(f"line {n}" for n in range(5)))
    pod.finish("FAILURE")
    with stream(client, pod.uid, headers) as events:
        assert events.next().json() == {"status": "FAILURE"}
        assert [event.json()["message"] for event in events.logs(5)] == [f"line {n}" for n in range(5)]
        assert (events.next().event, events.closed()) == ("end", True)


def test_filters_narrow_the_stream_and_resume_within_it(
    api: str, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log("fine", "also fine")
    pod.log("disk almost full", level="warning")
    pod.log("other group", level="warning", grouping="cleanup")
    with stream(client, pod.uid, headers, log_level="warning", grouping="run") as events:
        (warning,) = events.logs(1)
        assert warning.json()["message"] == "disk almost full"
        pod.log("disk full", level="warning")
        pod.log("not this one")
        (later,) = events.logs(1)
        assert later.json()["message"] == "disk full"
        pod.finish()  # after "disk full" arrived: as in the first test, the order of the events is then known
        assert events.next().json() == {"status": "SUCCESS"}
        assert events.next().event == "end"
    with stream(client, pod.uid, headers, q="FULL") as events:
        assert [e.json()["message"] for e in events.logs(2)] == ["disk almost full", "disk full"]
        assert events.next().event == "end"
    bad = client.get(
        f"/api/extras/job-results/{pod.uid}/logs/stream/", headers=headers, params={"log_level": "x"}
    )
    assert bad.status_code == 400
    assert "log_level" in bad.json()


def test_the_stream_reads_with_the_permissions_of_the_result(
    api: str, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    ada = token(
        sessions, "ada", object_types=["extras.jobresult"], actions=["view"], constraints={"user": "$user"}
    )
    nobody = token(sessions, "eve", object_types=["extras.job"], actions=["view"])
    mine, theirs = Pod(api, user="ada").started(), Pod(api, user="bob").started()
    mine.log("mine")
    theirs.log("theirs")
    url = "/api/extras/job-results/{}/logs/stream/"
    assert client.get(url.format(mine.uid)).status_code == 403  # no token, no anonymous reads
    assert client.get(url.format(mine.uid), headers=nobody).status_code == 403
    # A result the user may not see is not there, as on job-results/<id>/.
    assert client.get(url.format(theirs.uid), headers=ada).status_code == 404
    assert client.get(url.format(uuid.uuid4()), headers=ada).status_code == 404
    assert client.get(url.format("not-a-uuid"), headers=ada).status_code == 404
    bad_id = client.get(url.format(mine.uid), headers={**ada, "Last-Event-ID": "seven"})
    assert bad_id.status_code == 400
    assert "Last-Event-ID" in bad_id.json()["detail"]
    mine.finish()
    with stream(client, mine.uid, ada) as events:
        assert [event.json()["message"] for event in events.logs(1)] == ["mine"]
        assert events.next().event == "end"


def test_a_result_deleted_while_followed_ends_its_stream(
    api: str, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log("before")
    with stream(client, pod.uid, headers) as events:
        events.logs(1)
        pod.finish()
        assert events.next().json() == {"status": "SUCCESS"}
        assert events.next().event == "end"
    other = Pod(api).started()
    with stream(client, other.uid, headers) as events:
        assert events.next().json() == {"status": "STARTED"}
        # The row goes (as a delete of a result with no JobRun does); the follower is told it is gone.
        with sessions.begin() as session:
            session.execute(delete(JobResult).where(JobResult.id == uuid.UUID(other.uid)))
            notify_result_changed(session, uuid.UUID(other.uid))
        end = events.next()
        assert (end.event, end.json()) == ("end", {"status": None})
        assert events.closed()


def test_a_stream_past_its_lifetime_closes_without_end_for_the_client_to_resume(
    api: str, client: httpx.Client, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_stream, "LIFETIME_SECONDS", 0.0)
    headers = token(sessions, "root")
    pod = Pod(api).started()
    pod.log("one")
    with stream(client, pod.uid, headers) as events:
        assert events.next().event == "status"
        (entry,) = events.logs(1)
        assert events.closed()  # no end event: the run goes on
    pod.log("two")
    with stream(client, pod.uid, {**headers, "Last-Event-ID": entry.id or ""}) as events:
        assert [event.json()["message"] for event in events.logs(1)] == ["two"]


def test_batches_of_one_run_take_their_ids_in_commit_order(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A batch that starts while another is uncommitted waits for it, so ids never commit out of order."""
    uid = uuid.uuid4()
    with sessions.begin() as session:
        session.add(JobResult(id=uid, name="a", job_class_path="a.A", status=JobStatus.STARTED))

    def entries(label: str) -> list[LogEntry]:
        return [LogEntry(level="info", message=f"{label}{n}", created=utcnow()) for n in range(3)]

    first = sessions()
    run_reports.add_logs(session=first, run_uid=uid, entries=entries("a"))
    first_pid = first.scalar(text("SELECT pg_backend_pid()"))
    done = threading.Event()

    def second_batch() -> None:
        with sessions.begin() as session:
            run_reports.add_logs(session=session, run_uid=uid, entries=entries("b"))
        done.set()

    worker = threading.Thread(target=second_batch)
    worker.start()
    # The second batch waits on the first's lock on the result row (seen by Postgres, not by a sleep).
    with engine.connect() as watcher:

        def blocked() -> bool:
            watcher.rollback()  # a fresh snapshot of pg_stat_activity each time
            query = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND :pid = ANY(pg_blocking_pids(pid))"
            )
            return bool(watcher.scalar(query, {"pid": first_pid}))

        wait_for(
            "the second batch to wait for the first's lock", blocked, timeout=READ_TIMEOUT, interval=0.01
        )
    assert not done.is_set()
    first.commit()
    first.close()
    worker.join(READ_TIMEOUT)
    assert done.is_set()
    with sessions() as session:
        rows = (
            session.query(JobLogEntry).filter(JobLogEntry.job_result_id == uid).order_by(JobLogEntry.id).all()
        )
    assert [row.message for row in rows] == ["a0", "a1", "a2", "b0", "b1", "b2"]
