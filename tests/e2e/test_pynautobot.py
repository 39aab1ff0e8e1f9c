"""Nautobot's own clients against the running stack: pynautobot from PyPI, as a user's script calls it, and
the seed's three curl examples run as written (only the host, the token and the placeholders filled in).

Each check compares with what Nautobot answers (values, status value and label, nested objects with ids and
urls that pynautobot follows, refusals), not only that no exception was raised.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pynautobot
import pytest
from pynautobot.core.endpoint import DetailEndpoint
from pynautobot.models.extras import JobResults, Jobs

from jobplane_api.versioning import API_VERSION
from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api
from tests.gitserver import GitHttpServer, GitRepo
from tests.stack import ADMIN, Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
VARIABLES = "api_examples.ExampleVariables"
FILE_JOB = "api_examples.ExampleFile"
# pynautobot's run_and_wait keeps polling while the status is one of these (its own list).
ACTIVE = ("RECEIVED", "PENDING", "STARTED", "RETRY")


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Api:
    api = Api(stack, stack.admin_token)
    for class_path in (HELLO, VARIABLES, FILE_JOB):
        api.enable(class_path)
    return api


@pytest.fixture(scope="module")
def nb(stack: Stack, admin: Api) -> pynautobot.api:
    return pynautobot.api(stack.api_url, token=stack.admin_token)


def url_path(url: str) -> str:
    return urlsplit(url).path


def finished(nb: pynautobot.api, result_id: str, timeout: float = 180) -> JobResults:
    """The job result once it has ended, read with pynautobot as a client following it would."""

    def ended() -> JobResults | None:
        result = nb.extras.job_results.get(result_id)
        return result if result is not None and result.status.value not in ACTIVE else None

    found: JobResults = wait_for(f"job result {result_id} to end", ended, timeout=timeout, interval=0.5)
    return found


# --- jobs ------------------------------------------------------------------------------------------------


def test_jobs_all_and_get_by_name_and_id(nb: pynautobot.api, admin: Api) -> None:
    assert nb.version == API_VERSION  # read from the API-Version header, as Nautobot sends it
    jobs = nb.extras.jobs.all()
    assert all(isinstance(job, Jobs) for job in jobs)
    by_path = {job.class_path: job for job in jobs}
    assert {HELLO, VARIABLES, FILE_JOB} <= set(by_path)
    # pynautobot walked every page: as many records as the API counts.
    assert len(jobs) == admin.get("/api/extras/jobs/").json()["count"]

    job = nb.extras.jobs.get(name="Example variables")
    assert job is not None
    assert (job.class_path, job.name, job.grouping) == (VARIABLES, "Example variables", "API examples")
    assert (job.module_name, job.job_class_name) == ("api_examples", "ExampleVariables")
    assert job.enabled is True
    assert job.installed is True
    assert str(job) == "Example variables"  # pynautobot shows a record by its display
    assert url_path(job.url) == f"/api/extras/jobs/{job.id}/"
    assert nb.extras.jobs.get(job.id) == job
    assert nb.extras.jobs.get(name="No such job") is None
    # The default queue is a nested object pynautobot can follow to its own record.
    queue = job.default_job_queue
    assert url_path(queue.url) == f"/api/extras/job-queues/{queue.id}/"
    assert queue.name == "default"  # an attribute it lacks: pynautobot loads the queue's record

    # A change saved through the record is a PATCH of what changed, as Nautobot takes it.
    hello = nb.extras.jobs.get(name="Hello world")
    assert hello.update({"description": "Greets from pynautobot", "description_override": True}) is True
    again = nb.extras.jobs.get(hello.id)
    assert (again.description, again.description_override) == ("Greets from pynautobot", True)
    assert again.update({"description_override": False}) is True
    assert nb.extras.jobs.get(hello.id).description == "Greets someone: the job the README runs first."


# --- runs, results, logs -----------------------------------------------------------------------------------


def test_run_then_results_and_logs(nb: pynautobot.api, admin: Api) -> None:
    job = nb.extras.jobs.get(name="Example variables")
    data = {"string_variable": "from pynautobot", "integer_variable": 42}
    started = nb.extras.jobs.run(job_id=job.id, data=data)
    # Nautobot's 201: a job result and no scheduled job. pynautobot puts job_id in the body; it is ignored.
    assert started.scheduled_job is None
    pending = started.job_result  # a plain Record: pynautobot types only the top-level object
    assert pending.status.value in ACTIVE
    assert dict(pending.status) == {"value": pending.status.value, "label": pending.status.value}

    result = finished(nb, pending.id)
    assert (result.status.value, result.status.label) == ("SUCCESS", "SUCCESS")
    assert result.result == data
    assert result.task_kwargs == data
    assert result.name == "Example variables"
    assert result.date_done is not None
    assert result.date_started is not None
    assert url_path(result.url) == f"/api/extras/job-results/{result.id}/"
    # Nested objects are {id, object_type, url}: pynautobot follows them on the first missing attribute.
    assert result.job_model.id == job.id
    assert result.job_model.object_type == "extras.job"
    assert result.job_model.class_path == VARIABLES
    assert result.user.object_type == "users.user"
    assert result.user.username == ADMIN
    assert url_path(result.user.url) == f"/api/users/users/{result.user.id}/"

    assert nb.extras.job_results.get(str(uuid.uuid4())) is None  # a 404, which pynautobot makes None
    listed = nb.extras.job_results.all()
    assert result.id in {item.id for item in listed}
    assert all(isinstance(item, JobResults) for item in listed)
    assert [r.id for r in nb.extras.job_results.filter(job_model=job.id)][:1] == [result.id]

    # The result's logs, both ways Nautobot serves them: its logs/ list, and job-logs filtered on it.
    logs = DetailEndpoint(result, "logs").list()
    assert isinstance(logs, list)
    messages = [entry["message"] for entry in logs]
    assert "string_variable=from pynautobot integer_variable=42" in messages
    entries = nb.extras.job_logs.filter(job_result=result.id)
    assert sorted(entry.message for entry in entries) == sorted(messages)
    assert {entry.job_result.id for entry in entries} == {result.id}
    assert {entry.log_level for entry in entries} <= {"debug", "info", "success", "warning", "failure"}
    one = nb.extras.job_logs.get(entries[0].id)
    assert one.message == entries[0].message
    assert result.info_log_count == sum(1 for entry in entries if entry.log_level == "info")


def test_run_and_wait_and_run_from_the_record(nb: pynautobot.api) -> None:
    job = nb.extras.jobs.get(name="Hello world")
    done = nb.extras.jobs.run_and_wait(
        job_id=job.id, data={"who": "pynautobot"}, interval=0.5, max_rechecks=360
    )
    assert done.job_result.status.value == "SUCCESS", dict(done.job_result)
    # Below the top level pynautobot makes every dict a Record, the job's result too (as with Nautobot).
    assert dict(done.job_result.result) == {"greeting": "Hello, pynautobot!"}
    # By name, as pynautobot's job_name does (Nautobot's /jobs/<name>/run/), and from the Jobs record.
    by_name = nb.extras.jobs.run(job_name="Hello world", data={})
    ended = finished(nb, by_name.job_result.id)
    assert ended.result == {"greeting": "Hello, world!"}
    # count() reads the list's count (limit=1); a finished result deleted through its record is gone.
    assert nb.extras.job_results.count() == len(nb.extras.job_results.all())
    assert ended.delete() is True
    assert nb.extras.job_results.get(ended.id) is None
    assert nb.extras.job_logs.filter(job_result=ended.id) == []
    from_record = job.run(data={"who": "record"})
    assert finished(nb, from_record.job_result.id).result == {"greeting": "Hello, record!"}


def test_bad_runs_are_refused_as_nautobot_refuses_them(nb: pynautobot.api, admin: Api) -> None:
    job = nb.extras.jobs.get(name="Example variables")
    before = admin.get("/api/extras/job-results/", limit=1).json()["count"]

    def refusal(**body: Any) -> tuple[int, Any]:
        with pytest.raises(pynautobot.RequestError) as raised:
            nb.extras.jobs.run(job_id=job.id, **body)
        return raised.value.req.status_code, raised.value.req.json()

    # An unknown job variable: Job.validate_data's refusal, under "errors".
    assert refusal(data={"string_variable": "x", "integer_variable": 1, "bogus": 1}) == (
        400,
        {"errors": {"bogus": ["Job data contained an unknown property"]}},
    )
    status, body = refusal(data={"string_variable": "x", "integer_variable": "many"})
    assert status == 400
    assert "integer_variable" in body["errors"], body
    status, body = refusal(data={"string_variable": "x", "integer_variable": 1}, task_queue="nope")
    assert (status, body) == (400, {"task_queue": ['"nope" is not a valid choice.']})
    # A disabled job: 403 with Nautobot's words.
    noop = nb.extras.jobs.get(name="No-op") or next(j for j in nb.extras.jobs.all() if j.enabled is False)
    with pytest.raises(pynautobot.RequestError) as raised:
        nb.extras.jobs.run(job_id=noop.id, data={})
    assert raised.value.req.status_code == 403
    assert raised.value.req.json() == {"detail": "This job is not enabled to be run."}
    # None of them made a result.
    assert admin.get("/api/extras/job-results/", limit=1).json()["count"] == before


def test_a_user_without_run_gets_nautobot_s_refusal(nb: pynautobot.api, stack: Stack) -> None:
    viewer = f"pynb-viewer-{secrets.token_hex(3)}"
    stack.cli("users", "create", viewer)
    objects = "extras.job,extras.jobresult,extras.joblogentry"
    stack.cli("permissions", "create", f"view-{viewer}", "--object-types", objects, "--actions", "view",
              "--user", viewer)  # fmt: skip
    token = stack.cli("tokens", "create", viewer).stdout.strip()
    as_viewer = pynautobot.api(stack.api_url, token=token)
    job = as_viewer.extras.jobs.get(name="Example variables")
    assert job is not None
    assert job.enabled is True
    with pytest.raises(pynautobot.RequestError) as raised:
        as_viewer.extras.jobs.run(job_id=job.id, data={"string_variable": "x", "integer_variable": 1})
    # DRF's permission check refuses before the view runs: its words, 403.
    assert raised.value.req.status_code == 403
    assert raised.value.req.json() == {"detail": "You do not have permission to perform this action."}
    # Without a token at all, nothing is listed either.
    with pytest.raises(pynautobot.RequestError) as anonymous:
        pynautobot.api(stack.api_url).extras.jobs.all()
    assert anonymous.value.req.status_code == 403


# --- tokens ----------------------------------------------------------------------------------------------


def test_tokens_from_a_password_then_by_token(nb: pynautobot.api, stack: Stack) -> None:
    username, password = f"pynb-{secrets.token_hex(3)}", f"Pw-{secrets.token_hex(12)}"
    stack.cli("users", "create", username)
    subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "users", "set-password", username],
        input=password + "\n", env=stack.env(), check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # Nautobot's way to a first token: POST /api/users/tokens/ with HTTP basic authentication.
    login = pynautobot.api(stack.api_url)
    login.http_session.auth = (username, password)
    created = login.users.tokens.create(description="made by pynautobot")
    assert len(created.key) == 40
    assert int(created.key, 16) >= 0
    assert (created.description, created.write_enabled, created.expires) == ("made by pynautobot", True, None)
    assert created.user.id is not None

    mine = pynautobot.api(stack.api_url, token=created.key)
    # With that token, a second one the usual way; both listed, keys not shown again.
    second = mine.users.tokens.create(description="second", write_enabled=False)
    listed = {token.id: token for token in mine.users.tokens.all()}
    assert set(listed) == {created.id, second.id}
    assert listed[second.id].write_enabled is False
    assert mine.users.tokens.get(created.id).description == "made by pynautobot"
    # The admin's token list does not hold this user's keys either.
    assert all(getattr(t, "key", None) in (None, "") for t in nb.users.tokens.all())

    # A wrong password gets no token.
    wrong = pynautobot.api(stack.api_url)
    wrong.http_session.auth = (username, "not-the-password")
    with pytest.raises(pynautobot.RequestError) as refused:
        wrong.users.tokens.create()
    assert refused.value.req.status_code == 403  # DRF's basic authentication failing, as Nautobot answers
    assert refused.value.req.json() == {"detail": "Invalid username/password."}

    # Deleting a token through its record: it no longer authenticates.
    assert mine.users.tokens.get(second.id).delete() is True
    assert set(t.id for t in mine.users.tokens.all()) == {created.id}
    assert listed[created.id].delete() is True
    with pytest.raises(pynautobot.RequestError) as gone:
        mine.users.tokens.all()
    assert gone.value.req.status_code == 403
    assert gone.value.req.json() == {"detail": "Invalid token"}


# --- Git repositories ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def git_server(stack: Stack) -> Iterator[tuple[GitHttpServer, Path]]:
    """An anonymous Git server (as a public repository), its root, a work tree beside it."""
    root = Path(tempfile.mkdtemp(prefix="jobplane-pynb-git-"))
    try:
        # On the cluster's bridge address: the sync pods run on the pod network.
        with GitHttpServer(root, None, None, host=stack.cluster.apiserver_ip) as server:
            yield server, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


SEED_JOB = textwrap.dedent(
    """\
    from jobplane import Job, StringVar, register_jobs

    name = "Acceptance"  # the grouping, as Nautobot takes it from the module


    class Acceptance(Job):
        who = StringVar(default="seed")

        class Meta:
            name = "Acceptance seed job"
            has_sensitive_variables = False

        def run(self, *, who):
            self.logger.info("accepted %s", who)
            return {"accepted": who}


    register_jobs(Acceptance)
    """
)


def test_git_repository_with_nautobot_s_payload_then_sync(
    nb: pynautobot.api, git_server: tuple[GitHttpServer, Path]
) -> None:
    server, root = git_server
    bare = root / "seed-jobs.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True)
    work = GitRepo(root / "work")
    commit = work.commit({"jobs/__init__.py": "", "jobs/acceptance.py": SEED_JOB}, "seed", push_to=bare)

    payload = {
        "name": "Acceptance Seed Jobs",
        "slug": "acceptance_seed_jobs",
        "remote_url": server.url_for("seed-jobs.git"),
        "branch": "main",
        "provided_contents": ["extras.job"],
    }
    repo = nb.extras.git_repositories.create(**payload)
    assert {key: getattr(repo, key) for key in payload} == payload
    assert str(repo) == "Acceptance Seed Jobs"
    assert url_path(repo.url) == f"/api/extras/git-repositories/{repo.id}/"
    assert nb.extras.git_repositories.get(name="Acceptance Seed Jobs") == repo
    assert nb.extras.git_repositories.get(slug="acceptance_seed_jobs") == repo
    # The same name again: Nautobot's uniqueness refusal on the field.
    with pytest.raises(pynautobot.RequestError) as taken:
        nb.extras.git_repositories.create(
            **{**payload, "slug": "other_slug", "remote_url": server.url_for("other.git")}
        )
    assert taken.value.req.status_code == 400
    assert taken.value.req.json() == {"name": ["Git repository with this name already exists."]}

    # The sync answers a job result that a client follows to its end, as Nautobot's does.
    answer = DetailEndpoint(repo, "sync").create()
    assert answer["message"] == "Repository Acceptance Seed Jobs sync job added to queue."
    sync = answer["job_result"]
    assert sync["status"]["value"] in ACTIVE
    done = finished(nb, sync["id"])
    assert (done.status.value, done.status.label) == ("SUCCESS", "SUCCESS"), dict(done)
    assert done.name == "Git Repository: Sync"  # the name of Nautobot's sync job
    assert nb.extras.git_repositories.get(repo.id).current_head == commit

    # Its job is listed, disabled as every new job; once enabled it runs from the repository's commit.
    job = wait_for(
        "the repository's job to be listed",
        lambda: nb.extras.jobs.get(name="Acceptance seed job"),
        timeout=60,
        interval=0.5,
    )
    assert (job.enabled, job.installed, job.grouping) == (False, True, "Acceptance")
    assert job.update({"enabled": True}) is True
    ran = nb.extras.jobs.run_and_wait(job_id=job.id, data={"who": "git"}, interval=0.5, max_rechecks=360)
    assert ran.job_result.status.value == "SUCCESS", dict(ran.job_result)
    assert dict(ran.job_result.result) == {"accepted": "git"}


# --- the seed's curl examples ----------------------------------------------------------------------------

# As the seed gives them (the Nautobot documentation it quotes). The first one lost its URL line in the
# seed; the text above it names the endpoint, /api/extras/jobs/<uuid>/run/, and that line is added here.
SEED_EXAMPLES = (
    """curl -X POST \\
-H "Authorization: Token $TOKEN" \\
-H "Content-Type: application/json" \\
-H "Accept: application/json; version=1.3; indent=4" \\
""",
    """curl -X POST \\
-H "Authorization: Token $TOKEN" \\
-H "Content-Type: application/json" \\
-H "Accept: application/json; version=1.3; indent=4" \\
http://nautobot/api/extras/jobs/$JOB_NAME/run/ \\
--data '{"data": {"string_variable": "somevalue", "integer_variable": 123}}'
""",
    """curl -X POST \\
-H 'Authorization: Token $TOKEN' \\
-H 'Content-Type: multipart/form-data' \\
-H "Accept: application/json; version=1.3; indent=4" \\
'http://nautobot/api/extras/jobs/$JOB_NAME/run/' \\
-F '_schedule_interval="immediately"' \\
-F '_schedule_start_time="2022-10-18T17:31:23.698Z"' \\
-F 'interval="3"' \\
-F 'myfile=@"/path/to/my/file.txt"' \\
""",
)
FIRST_EXAMPLE_URL = "http://nautobot/api/extras/jobs/$JOB_ID/run/\n"
SEED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "000_4f882b1746f6c8de.txt"


def test_the_examples_are_the_seed_s() -> None:
    if not SEED.exists():
        pytest.skip(f"the seed is not beside the repository ({SEED})")
    text = SEED.read_text()
    for example in SEED_EXAMPLES:
        assert example.rstrip("\n") in text


def filled(example: str, *, host: str, token: str, job: str, upload: Path | None = None) -> str:
    """The example with the host, the token and the placeholders filled in; nothing else changes."""
    command = example.replace("http://nautobot", host).replace("$TOKEN", token)
    command = command.replace("$JOB_NAME", job).replace("$JOB_ID", job)
    if upload is not None:
        command = command.replace("/path/to/my/file.txt", str(upload))
    return command


def run_example(command: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """Run the command with bash as a user pastes it; the status comes from a curlrc (write-out), so the
    command stays as written."""
    (tmp_path / ".curlrc").write_text('silent\nshow-error\nwrite-out = "\\n%{http_code}"\n')
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CURL_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_seed_s_three_curl_examples(nb: pynautobot.api, stack: Stack, tmp_path: Path) -> None:
    host, token = stack.api_url, stack.admin_token
    hello = nb.extras.jobs.get(name="Hello world")
    upload = tmp_path / "file.txt"
    upload.write_text("alpha\nbeta\n")
    commands = {
        "by id": filled(SEED_EXAMPLES[0] + FIRST_EXAMPLE_URL, host=host, token=token, job=str(hello.id)),
        "by name": filled(SEED_EXAMPLES[1], host=host, token=token, job=quote("Example variables")),
        "multipart": filled(
            SEED_EXAMPLES[2], host=host, token=token, job=quote("Example file"), upload=upload
        ),
    }
    answers = {name: run_example(command, tmp_path) for name, command in commands.items()}
    for name, (status, body) in answers.items():
        assert status == 201, (name, body)
        assert body["scheduled_job"] is None
        assert body["job_result"]["status"] == {"value": "PENDING", "label": "PENDING"}
    results = {name: finished(nb, body["job_result"]["id"]) for name, (_, body) in answers.items()}
    assert {name: r.status.value for name, r in results.items()} == dict.fromkeys(results, "SUCCESS")
    assert results["by id"].result == {"greeting": "Hello, world!"}
    assert results["by name"].result == {"string_variable": "somevalue", "integer_variable": 123}
    assert results["multipart"].result == {"lines": 2}
