"""The pod reporting endpoints against a real Postgres: run tokens, started, logs, files, inputs, result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.settings import ApiSettings
from jobplane_crds.runtoken import run_token
from jobplane_store.models import FileProxy, JobLogEntry, JobResult, JobStatus, utcnow
from tests.integration.api.conftest import serve_app

pytestmark = pytest.mark.postgres

KEY = "k" * 40
UPLOAD_MAX = 64


def make_client(engine: Engine, **settings: Any) -> TestClient:
    options: dict[str, Any] = {"kubernetes": False, "run_token_key": KEY, "upload_max_size": UPLOAD_MAX}
    options.update(settings)
    return TestClient(create_app(ApiSettings(**options), engine=engine, mirror=False))


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with make_client(engine) as client:
        yield client


def bearer(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {run_token(KEY.encode(), uid)}"}


def start(client: TestClient, uid: str, **body: Any) -> None:
    payload = {"class_path": "audit.Audit", "run_name": "audit-1", "namespace": "ops", "user": "ada", **body}
    response = client.post(f"/api/runs/{uid}/started/", json=payload, headers=bearer(uid))
    assert response.status_code == 204, response.text


def entry(message: str, level: str = "info", **fields: Any) -> dict[str, Any]:
    return {"level": level, "message": message, "grouping": "run", "time": "2026-06-01T12:00:00Z", **fields}


def result_of(sessions: sessionmaker[Session], uid: str) -> JobResult:
    with sessions() as session:
        row = session.get(JobResult, uuid.UUID(uid))
        assert row is not None
        return row


# --- authentication ---


def test_reports_need_the_token_of_their_own_run(client: TestClient) -> None:
    uid, other = str(uuid.uuid4()), str(uuid.uuid4())
    url = f"/api/runs/{uid}/started/"
    body = {"class_path": "audit.Audit"}
    missing = client.post(url, json=body)
    assert missing.status_code == 401
    assert "run token" in missing.json()["detail"]
    assert client.post(url, json=body, headers={"Authorization": "Token abc"}).status_code == 401
    wrong = client.post(url, json=body, headers=bearer(other))
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "This run token is not valid for this run."}
    assert client.post(url, json=body, headers=bearer(uid)).status_code == 204
    # Every endpoint is guarded, reads included.
    assert (
        client.get(f"/api/runs/{uid}/input-files/{uuid.uuid4()}/", headers=bearer(other)).status_code == 401
    )
    assert client.delete(f"/api/runs/{uid}/input-files/").status_code == 401


def test_without_a_key_the_endpoints_are_unavailable(engine: Engine) -> None:
    uid = str(uuid.uuid4())
    with make_client(engine, run_token_key=None) as client:
        response = client.post(f"/api/runs/{uid}/started/", json={"class_path": "a.B"}, headers=bearer(uid))
    assert response.status_code == 503
    assert "JOBPLANE_API_RUN_TOKEN_KEY" in response.json()["detail"]


def test_the_endpoints_stay_out_of_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/api/runs/")]


# --- started ---


def test_started_creates_the_result_when_nobody_did(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    row = result_of(sessions, uid)
    assert row.status == JobStatus.STARTED
    assert row.date_started is not None
    assert (row.job_class_path, row.user, row.run_name, row.run_namespace) == (
        "audit.Audit",
        "ada",
        "audit-1",
        "ops",
    )


def test_started_moves_an_existing_result_on_and_keeps_what_its_creator_wrote(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(
            JobResult(
                id=uuid.UUID(uid), name="Audit", job_class_path="audit.Audit", user="grace", status="PENDING"
            )
        )
    start(client, uid, user="mallory")
    start(client, uid)  # a retried report changes nothing more
    row = result_of(sessions, uid)
    assert (row.status, row.name, row.user, row.run_name) == ("STARTED", "Audit", "grace", "audit-1")
    first_start = row.date_started
    start(client, uid)
    assert result_of(sessions, uid).date_started == first_start


def test_started_gives_a_result_the_mirror_made_the_class_path_queue_and_commit_the_pod_runs(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # The mirror made the row from a kubectl-applied run before its first status: spec.job names a
    # definition, and the queue and commit are not known yet. The pod's report may come first.
    uid = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(
            JobResult(id=uuid.UUID(uid), name="Audit", job_class_path="audit-definition", status="PENDING")
        )
    commit = "c" * 40
    start(client, uid, queue="network", commit=commit)
    row = result_of(sessions, uid)
    assert (row.status, row.name, row.job_class_path) == ("STARTED", "Audit", "audit.Audit")
    assert (row.queue, row.commit) == ("network", commit)
    # What a row already has is kept.
    other = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(JobResult(id=uuid.UUID(other), name="A", job_class_path="audit.Audit", queue="default"))
    start(client, other, queue="network")
    assert result_of(sessions, other).queue == "default"
    # A commit that is not a Git object name is refused, and names the field.
    refused = client.post(
        f"/api/runs/{uid}/started/",
        json={"class_path": "audit.Audit", "commit": "main"},
        headers=bearer(uid),
    )
    assert refused.status_code == 400
    assert "commit" in refused.text


def test_started_never_reopens_an_ended_result(client: TestClient, sessions: sessionmaker[Session]) -> None:
    uid = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(JobResult(id=uuid.UUID(uid), name="A", job_class_path="a.A", status="REVOKED"))
    start(client, uid)
    assert result_of(sessions, uid).status == "REVOKED"


# --- logs ---


def test_log_batches_are_stored_in_order_and_readable(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    first = [entry(f"line {i}") for i in range(150)]
    second = [entry("done", "success", object="router1", url="/dcim/devices/1/")]
    for batch in (first, second):
        response = client.post(f"/api/runs/{uid}/logs/", json={"entries": batch}, headers=bearer(uid))
        assert response.status_code == 204, response.text
    with sessions() as session:
        rows = list(
            session.scalars(
                select(JobLogEntry)
                .where(JobLogEntry.job_result_id == uuid.UUID(uid))
                .order_by(JobLogEntry.id)
            )
        )
    assert [row.message for row in rows] == [f"line {i}" for i in range(150)] + ["done"]
    assert (rows[-1].log_level, rows[-1].log_object, rows[-1].absolute_url) == (
        "success",
        "router1",
        "/dcim/devices/1/",
    )
    assert rows[0].grouping == "run"
    assert rows[0].created.isoformat() == "2026-06-01T12:00:00+00:00"
    # The API's own reader shows them too.
    with sessions() as session:
        from jobplane_store.results import list_log_entries

        assert len(list_log_entries(session=session, job_result_id=uuid.UUID(uid))) == 151


def test_bad_log_batches_are_refused_whole(client: TestClient, sessions: sessionmaker[Session]) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    url = f"/api/runs/{uid}/logs/"
    bad_level = client.post(url, json={"entries": [entry("a"), entry("b", "loud")]}, headers=bearer(uid))
    assert bad_level.status_code == 400
    assert "level must be one of" in str(bad_level.json())
    long_grouping = client.post(url, json={"entries": [entry("a", grouping="g" * 101)]}, headers=bearer(uid))
    assert long_grouping.status_code == 400
    too_many = client.post(url, json={"entries": [entry("x")] * 1001}, headers=bearer(uid))
    assert too_many.status_code == 413
    assert "1000" in too_many.json()["detail"]
    with sessions() as session:
        assert session.scalars(select(JobLogEntry)).all() == []


def test_logs_of_an_unknown_run_are_not_found(client: TestClient) -> None:
    uid = str(uuid.uuid4())
    response = client.post(f"/api/runs/{uid}/logs/", json={"entries": [entry("a")]}, headers=bearer(uid))
    assert response.status_code == 404
    assert "started/" in response.json()["detail"]


# --- files ---


def test_files_are_kept_as_file_proxies_of_the_run_under_the_size_cap(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    url = f"/api/runs/{uid}/files/"
    created = client.post(url, files={"file": ("report.csv", b"a,b\n1,2\n")}, headers=bearer(uid))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["size"]) == ("report.csv", 8)
    with sessions() as session:
        proxy = session.get(FileProxy, uuid.UUID(body["id"]))
        assert proxy is not None
        assert (proxy.job_result_id, proxy.content) == (uuid.UUID(uid), b"a,b\n1,2\n")
    big = client.post(url, files={"file": ("big.bin", b"x" * (UPLOAD_MAX + 1))}, headers=bearer(uid))
    assert big.status_code == 413
    assert str(UPLOAD_MAX) in big.json()["detail"]
    exact = client.post(url, files={"file": ("edge.bin", b"x" * UPLOAD_MAX)}, headers=bearer(uid))
    assert exact.status_code == 201


# --- input files ---


def test_input_files_are_served_only_to_the_run_they_are_bound_to(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid, other = str(uuid.uuid4()), str(uuid.uuid4())
    start(client, uid)
    start(client, other)
    with sessions.begin() as session:
        mine = FileProxy(name="hosts ü.txt", content=b"r1\nr2\n", size=6, input_for_result_id=uuid.UUID(uid))
        theirs = FileProxy(name="x.txt", content=b"x", size=1, input_for_result_id=uuid.UUID(other))
        unbound = FileProxy(name="y.txt", content=b"y", size=1)
        session.add_all([mine, theirs, unbound])
        session.flush()
        ids = (str(mine.id), str(theirs.id), str(unbound.id))
    got = client.get(f"/api/runs/{uid}/input-files/{ids[0]}/", headers=bearer(uid))
    assert got.status_code == 200
    assert got.content == b"r1\nr2\n"
    assert "filename*=UTF-8''hosts%20%C3%BC.txt" in got.headers["content-disposition"]
    for file_id in (*ids[1:], str(uuid.uuid4()), "not-a-uuid"):
        assert client.get(f"/api/runs/{uid}/input-files/{file_id}/", headers=bearer(uid)).status_code == 404
    assert client.delete(f"/api/runs/{uid}/input-files/", headers=bearer(uid)).status_code == 204
    with sessions() as session:
        left = {proxy.name for proxy in session.scalars(select(FileProxy))}
    assert left == {"x.txt", "y.txt"}


# --- result ---


def test_the_result_ends_the_run_with_its_log_counts(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    logs = [entry("a"), entry("b"), entry("c", "warning"), entry("d", "failure")]
    client.post(f"/api/runs/{uid}/logs/", json={"entries": logs}, headers=bearer(uid))
    body = {"status": "FAILURE", "result": {"exc_type": "ValueError"}, "traceback": "Traceback ..."}
    assert client.post(f"/api/runs/{uid}/result/", json=body, headers=bearer(uid)).status_code == 204
    row = result_of(sessions, uid)
    assert (row.status, row.result, row.traceback) == ("FAILURE", {"exc_type": "ValueError"}, "Traceback ...")
    assert row.date_done is not None
    assert (row.info_log_count, row.warning_log_count, row.failure_log_count, row.debug_log_count) == (
        2,
        1,
        1,
        0,
    )


def test_the_result_clears_the_reason_of_the_phase_the_run_has_left(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    with sessions.begin() as session:
        row = session.get(JobResult, uuid.UUID(uid))
        assert row is not None
        row.reason, row.message = "PodRunning", "pod x is running"
    body = {"status": "SUCCESS", "result": 1, "traceback": None}
    assert client.post(f"/api/runs/{uid}/result/", json=body, headers=bearer(uid)).status_code == 204
    ended = result_of(sessions, uid)
    # SUCCESS without the running phase's reason; the JobRun's own end ("Completed") comes from the mirror.
    assert (ended.status, ended.reason, ended.message) == ("SUCCESS", None, None)


def test_the_result_is_idempotent_and_never_rewrites_a_terminal_status(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    url = f"/api/runs/{uid}/result/"
    assert client.post(url, json={"status": "SUCCESS", "result": 42}, headers=bearer(uid)).status_code == 204
    done = result_of(sessions, uid).date_done
    again = client.post(url, json={"status": "FAILURE", "result": 0, "traceback": "x"}, headers=bearer(uid))
    assert again.status_code == 204
    row = result_of(sessions, uid)
    assert (row.status, row.result, row.date_done) == ("SUCCESS", 42, done)
    # A late flush after the result is still stored, and counted.
    late = client.post(f"/api/runs/{uid}/logs/", json={"entries": [entry("late")]}, headers=bearer(uid))
    assert late.status_code == 204
    assert result_of(sessions, uid).info_log_count == 1


def test_a_result_the_mirror_ended_first_keeps_its_status_and_gains_the_details(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    uid = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(
            JobResult(id=uuid.UUID(uid), name="A", job_class_path="a.A", status="FAILURE", date_done=utcnow())
        )
    body = {"status": "SUCCESS", "result": {"ok": True}, "traceback": None}
    assert client.post(f"/api/runs/{uid}/result/", json=body, headers=bearer(uid)).status_code == 204
    row = result_of(sessions, uid)
    assert (row.status, row.result) == ("FAILURE", {"ok": True})


def test_only_final_statuses_are_accepted(client: TestClient) -> None:
    uid = str(uuid.uuid4())
    start(client, uid)
    for status in ("STARTED", "PENDING", "DONE"):
        response = client.post(f"/api/runs/{uid}/result/", json={"status": status}, headers=bearer(uid))
        assert response.status_code == 400, status


# --- the real pod reporter against the real API ---

POD_JOBS = """
    import time

    from jobplane import FileVar, Job, register_jobs


    class Inventory(Job):
        hosts = FileVar()

        class Meta:
            has_sensitive_variables = False

        def run(self, *, hosts):
            names = hosts.read().decode().split()
            for name in names:
                self.logger.info("checked %s", name, extra={"object": name})
            self.logger.warning("one warning")
            self.create_file("report.txt", "\\n".join(names))
            return {"hosts": len(names), "file": hosts.name}


    class Sleepy(Job):
        class Meta:
            has_sensitive_variables = False

        def run(self):
            for i in range(30):
                self.logger.info("tick %d", i)
            self.logger.info("sleeping")
            time.sleep(60)


    class Hello(Job):
        class Meta:
            has_sensitive_variables = False

        def run(self):
            self.logger.info("hello")
            return "hi"


    register_jobs(Inventory, Sleepy, Hello)
"""


@pytest.fixture
def served(engine: Engine) -> Iterator[str]:
    """The API served by uvicorn on a free port, as a pod reaches it."""
    app = create_app(
        ApiSettings(kubernetes=False, run_token_key=KEY, upload_max_size=1024), engine=engine, mirror=False
    )
    with serve_app(app) as url:
        yield url


def start_pod(tmp_path: Path, api_url: str, uid: str, class_path: str, data: Any) -> subprocess.Popen[str]:
    from tests.builders import write_module

    write_module(tmp_path / "jobs_root", "pod_jobs", POD_JOBS)
    token_file = tmp_path / "run-token"
    token_file.write_text(run_token(KEY.encode(), uid))
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBPLANE_")}
    env.update(
        {
            "JOBPLANE_JOBS_ROOT": str(tmp_path / "jobs_root"),
            "JOBPLANE_TERMINATION_MESSAGE_PATH": str(tmp_path / "termination-log"),
            "JOBPLANE_RUN_NAME": "pod-run",
            "JOBPLANE_RUN_NAMESPACE": "ops",
            "JOBPLANE_RUN_UID": uid,
            "JOBPLANE_RUN_USER": "ada",
            "JOBPLANE_RUN_QUEUE": "network",
            "JOBPLANE_RUN_DATA": json.dumps(data),
            "JOBPLANE_API_URL": api_url,
            "JOBPLANE_RUN_TOKEN_FILE": str(token_file),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "jobplane.cli", "run-pod", class_path],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def messages(sessions: sessionmaker[Session], uid: str) -> list[str]:
    with sessions() as session:
        from jobplane_store.results import list_log_entries

        return [row.message for row in list_log_entries(session=session, job_result_id=uuid.UUID(uid))]


def test_a_pod_reports_its_whole_run_to_the_api(
    served: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    uid = str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(JobResult(id=uuid.UUID(uid), name="Inventory", job_class_path="pod_jobs.Inventory"))
        hosts = FileProxy(name="hosts.txt", content=b"r1 r2 r3", size=8, input_for_result_id=uuid.UUID(uid))
        session.add(hosts)
        session.flush()
        hosts_id = str(hosts.id)
    process = start_pod(tmp_path, served, uid, "pod_jobs.Inventory", {"hosts": hosts_id})
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == ""
    row = result_of(sessions, uid)
    assert (row.status, row.result) == ("SUCCESS", {"hosts": 3, "file": "hosts.txt"})
    assert (row.run_name, row.run_namespace, row.date_started is not None) == ("pod-run", "ops", True)
    assert (row.queue, row.commit) == ("network", None)  # an image job has no commit
    assert (row.info_log_count, row.warning_log_count) == (6, 1)
    logged = messages(sessions, uid)
    assert logged[0] == "Running job"
    assert logged[-1] == "Job completed"
    assert "checked r2" in logged
    with sessions() as session:
        files = {proxy.name: proxy for proxy in session.scalars(select(FileProxy))}
    # The input was consumed and discarded; the output belongs to the run, under the id stdout shows.
    assert set(files) == {"report.txt"}
    assert files["report.txt"].job_result_id == uuid.UUID(uid)
    (file_event,) = [json.loads(line) for line in stdout.splitlines() if '"type": "file"' in line]
    assert file_event["id"] == str(files["report.txt"].id)


def test_a_sigterm_flushes_the_logs_the_pod_still_held(
    served: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    uid = str(uuid.uuid4())
    process = start_pod(tmp_path, served, uid, "pod_jobs.Sleepy", {})
    assert process.stdout is not None
    for line in process.stdout:
        if '"sleeping"' in line:
            break
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 143, stderr
    logged = messages(sessions, uid)
    assert logged[-1] == "sleeping"
    assert [m for m in logged if m.startswith("tick")] == [f"tick {i}" for i in range(30)]
    assert result_of(sessions, uid).status == "STARTED"  # the operator and the mirror decide the end


def test_a_pod_whose_api_is_gone_still_runs_and_says_so_once(tmp_path: Path) -> None:
    from tests.cluster.cluster import free_port

    uid = str(uuid.uuid4())
    process = start_pod(tmp_path, f"http://127.0.0.1:{free_port()}", uid, "pod_jobs.Hello", {})
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("jobplane:")]
    assert len(lines) == 1, stderr
    assert "cannot report to the API" in lines[0]
    assert '"message": "hello"' in stdout
    assert '"type": "result"' in stdout
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["status"], message["result"]) == ("SUCCESS", '"hi"')
