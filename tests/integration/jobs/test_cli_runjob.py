"""`jobplane runjob --local` and `jobplane jobs` as a user runs them: real processes, store and limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jobplane_store.database import HEAD_REVISION, create_store_engine, make_sessionmaker
from jobplane_store.models import FileProxy, JobLogEntry, JobResult
from tests.builders import write_module
from tests.cluster.cluster import wait_for

JOBS = """
    import os
    import signal
    import time
    from pathlib import Path

    from jobplane import FileVar, IntegerVar, Job, SoftTimeLimitExceeded, StringVar, register_jobs

    name = "CLI tests"


    class Greet(Job):
        who = StringVar(max_length=10)
        times = IntegerVar(min_value=0, max_value=3, default=1)

        class Meta:
            has_sensitive_variables = False

        def run(self, *, who, times):
            for _ in range(times):
                self.logger.info("hello %s", who)
            return {"who": who, "times": times}


    class Secret(Job):
        password = StringVar()

        def run(self, *, password):
            self.logger.info("logged in")
            return "ok"


    class Broken(Job):
        def run(self):
            self.logger.warning("about to break")
            raise KeyError("missing")


    class SoftStop(Job):
        class Meta:
            soft_time_limit = 0.5
            time_limit = 20

        def run(self):
            try:
                time.sleep(15)
            except SoftTimeLimitExceeded:
                self.logger.warning("cleaning up after the soft limit")
                raise


    class Stubborn(Job):
        class Meta:
            soft_time_limit = 0.3
            time_limit = 1.5

        def run(self):
            self.logger.info("written before the kill")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    time.sleep(30)
                except SoftTimeLimitExceeded:
                    self.logger.warning("ignoring the soft limit")


    class SelfKill(Job):
        def run(self):
            self.logger.info("before the crash")
            os.kill(os.getpid(), signal.SIGKILL)


    class WaitForFile(Job):
        path = StringVar()

        def run(self, *, path):
            self.logger.info("waiting for %s", path)
            while not Path(path).exists():
                time.sleep(0.05)
            return "released"


    class ReadUpload(Job):
        upload = FileVar()

        def run(self, *, upload):
            content = upload.read().decode()
            self.create_file("copy-" + upload.name, content.upper())
            return {"name": upload.name, "lines": len(content.splitlines())}


    class WriteThenLog(Job):
        # Logs while its own write transaction is open, as authors naturally do.

        def run(self):
            from sqlalchemy import text

            self.db.execute(text("CREATE TABLE IF NOT EXISTS note (body TEXT)"))
            self.db.execute(text("INSERT INTO note VALUES ('x')"))
            self.logger.info("logged inside an open transaction")
            self.db.commit()
            return self.db.execute(text("SELECT count(*) FROM note")).scalar()


    register_jobs(Greet, Secret, Broken, SoftStop, Stubborn, SelfKill, WaitForFile, ReadUpload, WriteThenLog)
"""


class Cli:
    """Runs the real `jobplane` command against one JOBS_ROOT and one results store."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.cwd = tmp_path
        self.root = tmp_path / "jobs_root"
        write_module(self.root, "cli_jobs", JOBS)
        self.database_url = database_url
        self.env = {
            **os.environ,
            "JOBPLANE_JOBS_ROOT": str(self.root),
            "JOBPLANE_DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "jobplane.cli", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def runjob(
        self, job: str, data: dict[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run("runjob", "--local", f"cli_jobs.{job}", "--data", json.dumps(data or {}), *extra)

    def results(self) -> list[JobResult]:
        engine = create_store_engine(self.database_url)
        try:
            with make_sessionmaker(engine)() as session:
                from sqlalchemy import inspect

                if not inspect(engine).has_table("job_result"):
                    return []
                return list(session.scalars(select(JobResult).order_by(JobResult.date_created)))
        finally:
            engine.dispose()

    def logs(self, job_result: JobResult) -> list[JobLogEntry]:
        engine = create_store_engine(self.database_url)
        try:
            with make_sessionmaker(engine)() as session:
                query = (
                    select(JobLogEntry)
                    .where(JobLogEntry.job_result_id == job_result.id)
                    .order_by(JobLogEntry.id)
                )
                return list(session.scalars(query))
        finally:
            engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    return Cli(tmp_path, store_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, f"sqlite:///{tmp_path / 'jobplane.sqlite3'}")


def test_success_streams_logs_prints_summary_and_stores_result(cli: Cli) -> None:
    done = cli.runjob("Greet", {"who": "Ada", "times": 2})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum("hello Ada" in line for line in lines) == 2
    assert "Status: SUCCESS" in lines
    assert 'Result: {"who": "Ada", "times": 2}' in lines
    assert any(line.startswith("Duration: ") for line in lines)
    (result,) = cli.results()
    assert result.status == "SUCCESS"
    assert result.result == {"who": "Ada", "times": 2}
    assert result.task_kwargs == {"who": "Ada", "times": 2}
    assert result.user
    assert result.info_log_count == 4  # Running job, two greetings, Job completed
    assert [e.message for e in cli.logs(result)][1:3] == ["hello Ada", "hello Ada"]


def test_bad_input_exits_2_with_nautobot_errors_and_creates_nothing(cli: Cli) -> None:
    done = cli.runjob("Greet", {"who": "far too long a name", "times": 0, "colour": "red"})
    assert done.returncode == 2
    assert json.loads(done.stderr) == {
        "errors": {
            "colour": ["Job data contained an unknown property"],
            "who": ["Ensure this value has at most 10 characters (it has 19)."],
        }
    }
    assert cli.results() == []


def test_data_that_is_not_json_or_not_an_object_exits_2(sqlite_cli: Cli) -> None:
    not_json = sqlite_cli.run("runjob", "--local", "cli_jobs.Greet", "--data", "{who: x}")
    assert not_json.returncode == 2
    assert "--data is not valid JSON" in not_json.stderr
    not_object = sqlite_cli.run("runjob", "--local", "cli_jobs.Greet", "--data", "[1]")
    assert not_object.returncode == 2
    assert json.loads(not_object.stderr) == {"errors": ["Job data needs to be a dict"]}


def test_unknown_job_exits_2_listing_known_jobs_and_import_errors(sqlite_cli: Cli) -> None:
    write_module(sqlite_cli.root, "cli_broken", "raise ImportError('no such vendor library')")
    done = sqlite_cli.run("runjob", "--local", "cli_jobs.Nope")
    assert done.returncode == 2
    assert "no job with class path 'cli_jobs.Nope'" in done.stderr
    assert "cli_jobs.Greet" in done.stderr
    assert "Module cli_broken failed to import: ImportError: no such vendor library" in done.stderr


def test_without_local_and_without_an_api_says_what_to_set(sqlite_cli: Cli) -> None:
    done = sqlite_cli.run("runjob", "cli_jobs.Greet", "--data", '{"who": "x"}')
    assert done.returncode == 3
    assert "JOBPLANE_URL and JOBPLANE_TOKEN" in done.stderr
    assert "--local" in done.stderr


def test_a_sqlite_store_that_cannot_be_opened_is_named_and_the_job_does_not_run(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("my notes, not a database")
    for url in (f"sqlite:///{tmp_path / 'missing' / 'jobplane.sqlite3'}", f"sqlite:///{not_a_database}"):
        done = Cli(tmp_path, url).runjob("Greet", {"who": "Ada"})
        assert done.returncode == 3, done.stderr
        assert f"cannot use the results store {url} (JOBPLANE_DATABASE_URL): " in done.stderr
        assert "Traceback" not in done.stderr
        assert "hello Ada" not in done.stdout
    assert not_a_database.read_text() == "my notes, not a database"


def test_sensitive_inputs_are_not_stored(cli: Cli) -> None:
    done = cli.runjob("Secret", {"password": "hunter2"})
    assert done.returncode == 0, done.stderr
    (result,) = cli.results()
    assert result.task_kwargs is None
    assert all("hunter2" not in e.message for e in cli.logs(result))


def test_exception_exits_1_with_traceback(cli: Cli) -> None:
    done = cli.runjob("Broken")
    assert done.returncode == 1
    assert "Status: FAILURE" in done.stdout
    assert "KeyError: 'missing'" in done.stdout
    (result,) = cli.results()
    assert result.status == "FAILURE"
    assert result.result == {"exc_type": "KeyError", "exc_message": "'missing'"}
    assert result.traceback is not None
    assert "raise KeyError" in result.traceback
    assert result.warning_log_count == 1
    assert result.error_log_count == 1


def test_soft_time_limit_raises_in_the_job_which_cleans_up(sqlite_cli: Cli) -> None:
    done = sqlite_cli.runjob("SoftStop")
    assert done.returncode == 1
    (result,) = sqlite_cli.results()
    assert result.status == "FAILURE"
    assert result.result["exc_type"] == "SoftTimeLimitExceeded"
    messages = [(e.log_level, e.message) for e in sqlite_cli.logs(result)]
    assert ("warning", "cleaning up after the soft limit") in messages
    assert any(level == "failure" and "Soft time limit of 0.5 s exceeded" in m for level, m in messages)


def test_hard_time_limit_kills_the_job_and_keeps_its_logs(cli: Cli) -> None:
    done = cli.runjob("Stubborn")
    assert done.returncode == 1
    (result,) = cli.results()
    assert result.status == "FAILURE"
    assert result.date_done is not None
    messages = [(e.log_level, e.message) for e in cli.logs(result)]
    assert ("info", "written before the kill") in messages
    assert ("warning", "ignoring the soft limit") in messages
    assert ("failure", "Hard time limit of 1.5 s exceeded: the job process was killed") in messages
    assert result.failure_log_count == 1


def test_a_job_process_that_dies_still_ends_its_result(sqlite_cli: Cli) -> None:
    done = sqlite_cli.runjob("SelfKill")
    assert done.returncode == 1
    (result,) = sqlite_cli.results()
    assert result.status == "FAILURE"
    messages = [e.message for e in sqlite_cli.logs(result)]
    assert "before the crash" in messages
    assert any("killed by SIGKILL" in m for m in messages)


def test_logs_are_visible_while_the_job_runs(cli: Cli, tmp_path: Path) -> None:
    release = tmp_path / "release"
    process = subprocess.Popen(
        cli.command(
            "runjob", "--local", "cli_jobs.WaitForFile", "--data", json.dumps({"path": str(release)})
        ),
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def running_with_log() -> bool:
            results = cli.results()
            return bool(results) and results[0].status == "STARTED" and len(cli.logs(results[0])) >= 2

        wait_for("the run started, with its log", running_with_log, timeout=20, interval=0.05)
        (result,) = cli.results()
        assert f"waiting for {release}" in [e.message for e in cli.logs(result)]
        release.touch()
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert cli.results()[0].status == "SUCCESS"


def test_interrupt_cancels_the_run(sqlite_cli: Cli, tmp_path: Path) -> None:
    process = subprocess.Popen(
        sqlite_cli.command(
            "runjob",
            "--local",
            "cli_jobs.WaitForFile",
            "--data",
            json.dumps({"path": str(tmp_path / "never")}),
        ),
        cwd=sqlite_cli.cwd,
        env=sqlite_cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            "the run STARTED",
            lambda: bool(sqlite_cli.results()) and sqlite_cli.results()[0].status == "STARTED",
            timeout=20,
            interval=0.05,
        )
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1
    (result,) = sqlite_cli.results()
    assert result.status == "REVOKED"
    assert "Cancelled: interrupted by the user" in [e.message for e in sqlite_cli.logs(result)]


def test_file_var_upload_reaches_the_job_and_is_discarded_after(sqlite_cli: Cli, tmp_path: Path) -> None:
    upload = tmp_path / "devices.txt"
    upload.write_text("leaf-1\nleaf-2\n")
    done = sqlite_cli.run("runjob", "--local", "cli_jobs.ReadUpload", "--file", f"upload={upload}")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = sqlite_cli.results()
    assert result.result == {"name": "devices.txt", "lines": 2}
    engine = create_store_engine(sqlite_cli.database_url)
    with make_sessionmaker(engine)() as session:
        files = session.scalars(select(FileProxy)).all()
    assert [(f.name, f.content, f.job_result_id) for f in files] == [
        ("copy-devices.txt", b"LEAF-1\nLEAF-2\n", result.id)
    ]


def test_file_var_upload_errors(sqlite_cli: Cli, tmp_path: Path) -> None:
    missing = sqlite_cli.run(
        "runjob", "--local", "cli_jobs.ReadUpload", "--file", f"upload={tmp_path / 'absent'}"
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    malformed = sqlite_cli.run("runjob", "--local", "cli_jobs.ReadUpload", "--file", "upload")
    assert malformed.returncode == 2
    assert "--file takes VAR=PATH" in malformed.stderr


def test_jobs_lists_jobs_with_variables_and_import_errors(sqlite_cli: Cli) -> None:
    listed = sqlite_cli.run("jobs")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "CLI tests / Greet" in listed.stdout
    assert "cli_jobs.Greet" in listed.stdout
    assert "who: StringVar, times: IntegerVar" in listed.stdout
    write_module(sqlite_cli.root, "cli_syntax", "def oops(:\n")
    broken = sqlite_cli.run("jobs", "--json")
    assert broken.returncode == 1
    payload = json.loads(broken.stdout)
    assert "cli_jobs.Greet" in [job["class_path"] for job in payload["jobs"]]
    assert payload["errors"]["cli_syntax"].startswith("SyntaxError")
    greet = next(job for job in payload["jobs"] if job["class_path"] == "cli_jobs.Greet")
    assert greet["variables"]["properties"]["times"]["minimum"] == 0


def test_db_upgrade_migrates_an_empty_database(cli: Cli) -> None:
    done = cli.run("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == HEAD_REVISION


def test_a_job_may_log_while_its_data_transaction_is_open(cli: Cli) -> None:
    done = cli.runjob("WriteThenLog")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = cli.results()
    assert result.result == 1
    assert "logged inside an open transaction" in [e.message for e in cli.logs(result)]


def test_bad_settings_are_named_without_echoing_their_values(sqlite_cli: Cli) -> None:
    secret_url = "postgresql+psycopg://jobplane:s3cret-pw@db/jobplane"
    sqlite_cli.env.update(
        {
            "JOBPLANE_TIME_LIMIT": "soon",
            "JOBPLANE_DATABASE_URL": secret_url,
            "JOBPLANE_DATA_DATABASE_URL": secret_url,
        }
    )
    done = sqlite_cli.run("jobs")
    assert done.returncode == 2
    assert "JOBPLANE_TIME_LIMIT" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout


def make_identity(cli: Cli, *args: str) -> None:
    done = cli.run(*args, "--database-url", cli.database_url)
    assert done.returncode == 0, done.stderr


def test_username_of_nobody_in_the_store_exits_2_and_creates_nothing(cli: Cli) -> None:
    done = cli.runjob("Greet", {"who": "Ada"}, "--username", "ghost")
    assert done.returncode == 2
    assert done.stderr.strip() == "jobplane: no user 'ghost' in the results store: the run was not created"
    assert cli.results() == []


def test_username_without_run_on_the_job_exits_2_with_constraints_matched_as_the_api_does(cli: Cli) -> None:
    make_identity(cli, "users", "create", "ada")
    refused = cli.runjob("Greet", {"who": "Ada"}, "--username", "ada")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "jobplane: user 'ada' may not run cli_jobs.Greet: no enabled permission of theirs grants the run "
        "action on extras.job for this job"
    )
    # Viewing is not running; a run permission limited to another grouping does not match.
    make_identity(
        cli,
        "permissions",
        "create",
        "view-jobs",
        "--object-types",
        "extras.job",
        "--actions",
        "view",
        "--user",
        "ada",
    )
    make_identity(
        cli,
        "permissions",
        "create",
        "run-other",
        "--object-types",
        "extras.job",
        "--actions",
        "run",
        "--constraints",
        '{"grouping": "Other"}',
        "--user",
        "ada",
    )
    # A local run has no job record: a constraint on enabled (or id) matches nothing here.
    make_identity(
        cli,
        "permissions",
        "create",
        "run-enabled",
        "--object-types",
        "extras.job",
        "--actions",
        "run",
        "--constraints",
        '{"enabled": true}',
        "--user",
        "ada",
    )
    assert cli.runjob("Greet", {"who": "Ada"}, "--username", "ada").returncode == 2
    assert cli.results() == []
    # Given through a group, constrained to this job's grouping and name: it runs, as ada.
    make_identity(cli, "groups", "create", "operators")
    make_identity(cli, "users", "create", "bob", "--group", "operators")
    make_identity(
        cli,
        "permissions",
        "create",
        "run-cli-greet",
        "--object-types",
        "extras.job",
        "--actions",
        "run",
        "--constraints",
        '[{"grouping": "CLI tests", "name__isw": "gre"}]',
        "--group",
        "operators",
    )
    allowed = cli.runjob("Greet", {"who": "Bob"}, "--username", "bob")
    assert allowed.returncode == 0, allowed.stderr
    assert cli.runjob("Broken", {}, "--username", "bob").returncode == 2
    (result,) = cli.results()
    assert result.user == "bob"


def test_a_superuser_may_run_any_job(sqlite_cli: Cli) -> None:
    make_identity(sqlite_cli, "users", "create", "root", "--superuser")
    done = sqlite_cli.runjob("Greet", {"who": "root"}, "--username", "root")
    assert done.returncode == 0, done.stderr
    assert [r.user for r in sqlite_cli.results()] == ["root"]


def test_jobs_of_one_name_are_a_registration_error(sqlite_cli: Cli) -> None:
    write_module(
        sqlite_cli.root,
        "cli_clash",
        """
        from jobplane import Job, register_jobs

        name = "Other grouping"

        class Welcome(Job):
            class Meta:
                name = "Greet"

            def run(self):
                pass

        register_jobs(Welcome)
        """,
    )
    listed = sqlite_cli.run("jobs")
    assert listed.returncode == 1
    assert (
        "REGISTRATION ERROR cli_clash.Welcome: NameConflict: job name 'Greet' of cli_clash.Welcome "
        "(grouping 'Other grouping') is also the name of cli_jobs.Greet (grouping 'CLI tests')"
    ) in listed.stdout
    payload = json.loads(sqlite_cli.run("jobs", "--json").stdout)
    assert sorted(payload["conflicts"]) == ["cli_clash.Welcome", "cli_jobs.Greet"]
    # Running by class path is not ambiguous: it still runs.
    assert sqlite_cli.runjob("Greet", {"who": "Ada"}).returncode == 0
