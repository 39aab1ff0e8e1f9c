"""The pod's API reporter against a real local HTTP server: batching, retries, files, an API that is gone."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jobplane.joblog import LogEntry
from jobplane.variables import VariableError
from jobplane_runtime.pod import PodRun, StdoutReporter, make_reporter, read_contract
from jobplane_runtime.reporting import ApiReporter
from tests.cluster.cluster import free_port, wait_for

RUN_UID = "6f1c2a4e-8a53-4a0e-9a9c-2f7e0d1b5c3d"
TOKEN = "a" * 64
FILE_ID = "0b7c8f0e-1f7a-4e57-8d2a-6d3c0a9b1e21"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeApi:
    """Records every request; ``failures[path suffix]`` lists statuses to answer before the normal one."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        suffix = path.split(f"/api/runs/{RUN_UID}/", 1)[-1]
        with self.lock:
            queued = self.failures.get(suffix)
            if queued:
                status = queued.pop(0)
                return status, json.dumps({"detail": f"status {status}"}).encode(), {}
        if suffix == "files/":
            return 201, json.dumps({"id": FILE_ID, "name": "x", "size": 1}).encode(), {}
        if suffix.startswith("input-files/") and method == "GET":
            if suffix != f"input-files/{FILE_ID}/":
                return 404, b'{"detail": "No input file"}', {}
            headers = {"Content-Disposition": "attachment; filename*=UTF-8''hosts%20%C3%BC.txt"}
            return 200, b"r1\nr2\n", headers
        return 204, b"", {}

    def posted(self, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(f"/{suffix}")]

    def logged(self) -> list[str]:
        return [entry["message"] for r in self.posted("logs/") for entry in r.json()["entries"]]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if fake.delay:
                time.sleep(fake.delay)
            with fake.lock:
                fake.requests.append(
                    Request(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                )
            status, payload, headers = fake.answer(self.command, self.path)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            if payload and status != 200:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def reporter(
    url: str, out: io.StringIO | None = None, err: io.StringIO | None = None, **options: Any
) -> ApiReporter:
    settings: dict[str, Any] = {"flush_interval": 0.2, "retry_delays": (0.05, 0.1), "timeout": 2.0}
    settings.update(options)
    return ApiReporter(
        out or io.StringIO(),
        api_url=url,
        token=TOKEN,
        run_uid=RUN_UID,
        max_file_size=1000,
        run={"job": "audit.Audit", "run": "run-1", "run_uid": RUN_UID},
        started_body={"class_path": "audit.Audit", "run_name": "run-1", "namespace": "ops", "user": "ada"},
        err=err or io.StringIO(),
        **settings,
    )


def entry(message: str, level: str = "info") -> LogEntry:
    return LogEntry(
        level=level, message=message, grouping="run", created=datetime(2026, 6, 1, 12, tzinfo=UTC)
    )


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


# --- the normal path ---


def test_a_run_is_reported_to_the_api_and_on_stdout(api: FakeApi) -> None:
    out = io.StringIO()
    rep = reporter(api.url, out)
    rep.started()
    rep.log(entry("hello"))
    rep.log(entry("bad", "failure"))
    rep.finished("FAILURE", {"n": 1}, None)
    (started,) = api.posted("started/")
    assert started.headers["Authorization"] == f"Bearer {TOKEN}"
    assert started.path == f"/api/runs/{RUN_UID}/started/"
    assert started.json() == {
        "class_path": "audit.Audit",
        "run_name": "run-1",
        "namespace": "ops",
        "user": "ada",
    }
    assert api.logged() == ["hello", "bad"]
    (first_log,) = api.posted("logs/")
    assert first_log.json()["entries"][0] == {
        "level": "info",
        "grouping": "run",
        "message": "hello",
        "object": None,
        "url": None,
        "time": "2026-06-01T12:00:00+00:00",
    }
    (result,) = api.posted("result/")
    assert result.json() == {"status": "FAILURE", "result": {"n": 1}, "traceback": None}
    assert api.requests[-1] is result  # every log entry went before the result
    # stdout carries exactly what StdoutReporter would write.
    assert [e["type"] for e in events(out)] == ["started", "log", "log", "result"]
    assert rep.last_failure == "bad"


def test_a_full_batch_leaves_at_once_and_no_request_carries_more(api: FakeApi) -> None:
    rep = reporter(api.url, batch_size=200, flush_interval=60)  # the interval never comes
    rep.started()
    for i in range(450):
        rep.log(entry(f"line {i}"))
    wait_for("200 entries logged", lambda: len(api.logged()) >= 200, timeout=2, interval=0.02)
    rep.finished("SUCCESS", None, None)
    assert api.logged() == [f"line {i}" for i in range(450)]
    assert max(len(r.json()["entries"]) for r in api.posted("logs/")) == 200


def test_a_lone_entry_leaves_after_the_interval(api: FakeApi) -> None:
    rep = reporter(api.url, flush_interval=0.2)
    rep.started()
    rep.log(entry("alone"))
    wait_for("the entry logged", lambda: api.logged() == ["alone"], timeout=2, interval=0.02)
    rep.finished("SUCCESS", None, None)
    assert api.logged() == ["alone"]


def test_finished_flushes_every_entry_before_the_result(api: FakeApi) -> None:
    rep = reporter(api.url, flush_interval=60)  # the thread would never flush on its own
    rep.started()
    for i in range(5):
        rep.log(entry(f"line {i}"))
    assert api.logged() == []
    rep.finished("SUCCESS", 1, None)
    assert api.logged() == [f"line {i}" for i in range(5)]
    assert api.requests[-1].path.endswith("/result/")


def test_flush_sends_what_waits_within_its_timeout(api: FakeApi) -> None:
    rep = reporter(api.url, flush_interval=60)
    rep.started()
    rep.log(entry("before SIGTERM"))
    rep.flush(1.0)
    assert api.logged() == ["before SIGTERM"]
    rep.close()
    rep.flush(1.0)  # after close: nothing, and no error


def test_files_are_uploaded_and_known_by_the_api_id(api: FakeApi) -> None:
    out = io.StringIO()
    rep = reporter(api.url, out)
    assert rep.create_file("report.csv", b"a,b\n") == FILE_ID
    (upload,) = api.posted("files/")
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'filename="report.csv"' in upload.body
    assert b"a,b\n" in upload.body
    assert events(out) == [{"type": "file", "id": FILE_ID, "name": "report.csv", "size": 4}]
    with pytest.raises(ValueError, match="above the limit of 1000 bytes"):
        rep.create_file("big.bin", b"x" * 1001)
    api.failures["files/"] = [413]
    with pytest.raises(ValueError, match="refused by the API: status 413"):
        rep.create_file("edge.bin", b"x")
    rep.close()


def test_input_files_come_from_the_api(api: FakeApi) -> None:
    rep = reporter(api.url)
    handle = rep.open_input_file(FILE_ID)
    assert handle.read() == b"r1\nr2\n"
    assert handle.name == "hosts ü.txt"
    with pytest.raises(VariableError, match="No uploaded file with id nope for this run"):
        rep.open_input_file("nope")
    rep.discard_input_files([])
    assert not [r for r in api.requests if r.method == "DELETE"]
    rep.discard_input_files([FILE_ID])
    assert [r.path for r in api.requests if r.method == "DELETE"] == [f"/api/runs/{RUN_UID}/input-files/"]
    rep.close()


# --- when the API misbehaves ---


def test_server_errors_are_retried(api: FakeApi) -> None:
    err = io.StringIO()
    api.failures["started/"] = [503, 502]
    rep = reporter(api.url, err=err)
    rep.started()
    assert len(api.posted("started/")) == 3
    assert rep.reachable
    rep.log(entry("still reported"))
    rep.finished("SUCCESS", None, None)
    assert api.logged() == ["still reported"]
    assert err.getvalue() == ""


def test_an_api_that_stays_down_is_given_up_once_and_stdout_carries_on(api: FakeApi) -> None:
    out, err = io.StringIO(), io.StringIO()
    api.failures["started/"] = [500, 500, 500]
    rep = reporter(api.url, out, err)
    rep.started()
    assert not rep.reachable
    for i in range(3):
        rep.log(entry(f"line {i}"))
    with pytest.raises(RuntimeError, match=r"Could not upload file 'a\.txt'"):
        rep.create_file("a.txt", b"a")
    with pytest.raises(VariableError, match="Could not fetch the uploaded file"):
        rep.open_input_file(FILE_ID)
    rep.discard_input_files([FILE_ID])
    rep.finished("SUCCESS", None, None)  # never raises
    assert [r.path.rsplit("/", 2)[-2] for r in api.requests] == ["started"] * 3
    assert [e["type"] for e in events(out)] == ["started", "log", "log", "log", "result"]
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert "cannot report to the API" in lines[0]
    assert "stdout only" in lines[0]


def test_no_server_at_all_is_unreachable_without_failing_the_run() -> None:
    out, err = io.StringIO(), io.StringIO()
    rep = reporter(f"http://127.0.0.1:{free_port()}", out, err)
    rep.started()
    rep.log(entry("only on stdout"))
    rep.finished("SUCCESS", 7, None)
    assert [e["type"] for e in events(out)] == ["started", "log", "result"]
    assert "ConnectError" in err.getvalue()
    assert len(err.getvalue().splitlines()) == 1


def test_a_refused_token_stops_the_reporting(api: FakeApi) -> None:
    err = io.StringIO()
    api.failures["started/"] = [401]
    rep = reporter(api.url, err=err)
    rep.started()
    rep.log(entry("x"))
    rep.finished("SUCCESS", None, None)
    assert len(api.requests) == 1
    assert "refused the run token (HTTP 401)" in err.getvalue()


def test_a_refused_batch_is_lost_alone_and_said_once(api: FakeApi) -> None:
    err = io.StringIO()
    rep = reporter(api.url, err=err, flush_interval=60)
    rep.started()
    api.failures["logs/"] = [400]
    rep.log(entry("refused"))
    rep.flush(1.0)
    rep.log(entry("accepted"))
    rep.finished("SUCCESS", None, None)
    assert api.logged() == ["refused", "accepted"]  # both reached the fake; the first was answered 400
    assert api.posted("result/")
    assert err.getvalue().count("refused 1 log entries") == 1


# --- which reporter a pod uses ---


def pod_run() -> PodRun:
    return PodRun(
        class_path="audit.Audit",
        run_name="run-1",
        run_uid=RUN_UID,
        user="ada",
        data={"password": "hunter2"},
        data_from_file=True,
        soft_time_limit=None,
        dryrun=False,
        termination_message_path=None,
    )


def test_run_pod_reports_to_the_api_only_with_a_url_and_a_token_file(api: FakeApi, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert isinstance(
        make_reporter(pod_run(), read_contract({}), out=out, err=err, max_file_size=10), StdoutReporter
    )
    only_url = {"JOBPLANE_API_URL": api.url}
    assert isinstance(
        make_reporter(pod_run(), read_contract(only_url), out=out, err=err, max_file_size=10), StdoutReporter
    )
    env = {
        **only_url,
        "JOBPLANE_RUN_TOKEN_FILE": str(token_file),
        "JOBPLANE_RUN_NAMESPACE": "ops",
        "JOBPLANE_RUN_QUEUE": "network",
        "JOBPLANE_REPO_COMMIT": "c" * 40,
    }
    chosen = make_reporter(pod_run(), read_contract(env), out=out, err=err, max_file_size=10)
    assert isinstance(chosen, ApiReporter)
    chosen.started()
    chosen.close()
    (started,) = api.posted("started/")
    assert started.headers["Authorization"] == f"Bearer {TOKEN}"
    assert started.json() == {
        "class_path": "audit.Audit",
        "run_name": "run-1",
        "namespace": "ops",
        "user": "ada",
        "queue": "network",
        "commit": "c" * 40,
    }
    assert b"hunter2" not in started.body  # the inputs never travel in started/


def test_an_unreadable_token_file_falls_back_to_stdout(tmp_path: Path) -> None:
    err = io.StringIO()
    env = {"JOBPLANE_API_URL": "http://api", "JOBPLANE_RUN_TOKEN_FILE": str(tmp_path / "missing")}
    chosen = make_reporter(pod_run(), read_contract(env), out=io.StringIO(), err=err, max_file_size=10)
    assert isinstance(chosen, StdoutReporter)
    assert "cannot read the run token" in err.getvalue()
