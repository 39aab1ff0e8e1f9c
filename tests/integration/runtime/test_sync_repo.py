"""Jobs from Git repositories with the real git: file:// repositories on disk and a local smart-HTTP server.

Covers resolving refs, fetching exactly one commit, size and time limits, importing a repository's job
modules, `jobplane sync-repo`'s report, and `jobplane run-pod` of a repository's job.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobplane.job import clear_registry
from jobplane_crds.gitcontract import SyncContract
from jobplane_crds.v1alpha1 import JobRepository
from jobplane_operator.reconcile.jobrepository import parse_sync_report, plan_sync_job
from jobplane_runtime import gitsource
from jobplane_runtime.gitsource import (
    SYNC_REPORT_PREFIX,
    GitCredentials,
    GitSourceError,
    discover_repository,
    fetch_commit,
    resolve_ref,
)
from jobplane_runtime.syncrepo import sync_repo
from tests.conftest import missing_component
from tests.gitserver import GitHttpServer, GitRepo

SLUG = "acme_git_jobs"
PASSWORD = "s3cret-T0ken-for-git"
MIB = 1024 * 1024

HELLO = """
    from jobplane import Job, StringVar, register_jobs

    name = "Greetings"


    class Hello(Job):
        who = StringVar(default="world")

        class Meta:
            has_sensitive_variables = False

        def run(self, *, who):
            self.logger.info("greeting %s", who)
            return {"greeting": f"{GREETING}, {who}!"}


    GREETING = "Hello"
    register_jobs(Hello)
"""
BROKEN = """
    from jobplane import Job


    def broken(:
        pass
"""


@pytest.fixture(autouse=True)
def _needs_git() -> None:
    if shutil.which("git") is None:
        missing_component("the git command is not installed")


@pytest.fixture(autouse=True)
def _isolated_imports() -> Iterator[None]:
    """Each test imports repositories afresh: forget their modules, folders on sys.path and jobs."""
    path, roots = list(sys.path), dict(gitsource._ROOTS)
    yield
    for slug in set(gitsource._ROOTS) | {SLUG}:
        for name in [name for name in sys.modules if name == slug or name.startswith(slug + ".")]:
            del sys.modules[name]
        clear_registry(slug)
    sys.path[:] = path
    gitsource._ROOTS.clear()
    gitsource._ROOTS.update(roots)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "origin")


def job_repo(repo: GitRepo) -> str:
    return repo.commit({"jobs/__init__.py": "", "jobs/hello.py": HELLO, "README.md": "jobs\n"})


# --- resolving refs ------------------------------------------------------------------------------


def test_resolve_branch_tag_annotated_tag_sha_and_unknown(repo: GitRepo) -> None:
    first = job_repo(repo)
    repo.git("tag", "light")
    repo.git("tag", "--annotate", "-m", "release", "v1.0")
    second = repo.commit({"README.md": "two\n"})
    repo.git("branch", "dev", first)

    def resolve(ref: str) -> str:
        return resolve_ref(repo.url, ref, None, timeout=30, allow_file=True)

    assert resolve("main") == second
    assert resolve("HEAD") == second
    assert resolve("dev") == first
    assert resolve("light") == first
    assert resolve("v1.0") == first  # peeled: the commit, not the tag object
    assert resolve("refs/tags/v1.0") == first
    assert resolve(first.upper()) == first
    with pytest.raises(GitSourceError) as caught:
        resolve("release-2")
    assert caught.value.reason == "RefNotFound"
    assert caught.value.message == (
        f"ref 'release-2' not found in {repo.url}; branches/tags seen: dev, main, light, v1.0"
    )


def test_a_missing_repository_fails_with_gits_reason(tmp_path: Path) -> None:
    url = (tmp_path / "nothing-here").as_uri()
    with pytest.raises(GitSourceError) as caught:
        resolve_ref(url, "main", None, timeout=30, allow_file=True)
    assert caught.value.reason == "FetchFailed"
    assert caught.value.message.startswith(f"listing the branches and tags of {url} failed: ")
    assert "does not appear to be a git repository" in caught.value.message


def test_a_server_that_never_answers_times_out() -> None:
    # Accepts connections (the kernel's backlog) and never says a word: git waits until it is killed.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/jobs.git"
        with pytest.raises(GitSourceError) as caught:
            resolve_ref(url, "main", None, timeout=1.5, allow_file=False)
    assert caught.value.reason == "FetchTimeout"
    assert caught.value.message == f"listing the branches and tags of {url} took longer than 1.5 s"


# --- fetching one commit -------------------------------------------------------------------------


def test_fetch_checks_out_exactly_a_non_tip_commit_shallow(repo: GitRepo, tmp_path: Path) -> None:
    first = repo.commit({"jobs/hello.py": "VERSION = 1\n"})
    repo.commit({"jobs/hello.py": "VERSION = 2\n", "jobs/new.py": ""})
    dest = tmp_path / "work" / SLUG
    fetch_commit(repo.url, first, dest, None, timeout=30, max_bytes=10 * MIB)
    assert (dest / "jobs" / "hello.py").read_text() == "VERSION = 1\n"
    assert not (dest / "jobs" / "new.py").exists()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dest, capture_output=True, text=True, check=True)
    assert head.stdout.strip() == first
    assert (dest / ".git" / "shallow").read_text().strip() == first  # one commit, no history


def test_fetch_needs_an_empty_destination_and_a_full_commit_id(repo: GitRepo, tmp_path: Path) -> None:
    commit = job_repo(repo)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "file").write_text("x")
    with pytest.raises(GitSourceError, match="not an empty folder"):
        fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=MIB)
    assert (dest / "file").exists()  # not ours: left alone
    with pytest.raises(GitSourceError) as caught:
        fetch_commit(repo.url, commit[:12], tmp_path / "new", None, timeout=30, max_bytes=MIB)
    assert caught.value.reason == "InvalidCommit"


def test_an_unknown_commit_is_not_found_and_leaves_nothing(repo: GitRepo, tmp_path: Path) -> None:
    job_repo(repo)
    dest = tmp_path / "work" / SLUG
    with pytest.raises(GitSourceError) as caught:
        fetch_commit(repo.url, "0123456789" * 4, dest, None, timeout=30, max_bytes=MIB)
    assert caught.value.reason == "FetchFailed"
    assert caught.value.message == (
        f"commit {'0123456789' * 4} not found in {repo.url}: no branch or tag contains it"
    )
    assert not dest.exists()


def test_a_repository_above_the_size_limit_is_refused(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit({"jobs/__init__.py": "", "data.bin": os.urandom(2 * MIB)})
    dest = tmp_path / "work" / SLUG
    with pytest.raises(GitSourceError) as caught:
        fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=MIB)
    assert caught.value.reason == "RepositoryTooLarge"
    assert "above the limit of 1.0 MiB" in caught.value.message
    assert not dest.exists()
    fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=8 * MIB)
    assert (dest / "data.bin").stat().st_size == 2 * MIB


def test_files_that_expand_past_the_limit_are_refused_before_checkout(repo: GitRepo, tmp_path: Path) -> None:
    # 3 MiB of zeros compress to a few KiB: the history is small, the checkout would not be.
    commit = repo.commit({"jobs/__init__.py": "", "zeros.bin": bytes(3 * MIB)})
    dest = tmp_path / "work" / SLUG
    with pytest.raises(GitSourceError) as caught:
        fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=2 * MIB)
    assert caught.value.reason == "RepositoryTooLarge"
    assert not dest.exists()


# --- over HTTP, with basic auth ---------------------------------------------------------------------


def test_http_basic_auth_resolves_and_fetches(repo: GitRepo, tmp_path: Path) -> None:
    commit = job_repo(repo)
    root = tmp_path / "served"
    root.mkdir()
    repo.git("clone", "--quiet", "--bare", str(repo.path), str(root / "jobs.git"))
    good = GitCredentials(username="ann", password=PASSWORD)
    with GitHttpServer(root, "ann", PASSWORD) as server:
        url = server.url_for("jobs.git")
        assert resolve_ref(url, "main", good, timeout=30, allow_file=False) == commit
        fetch_commit(url, commit, tmp_path / "work" / SLUG, good, timeout=30, max_bytes=MIB, allow_file=False)
        assert (tmp_path / "work" / SLUG / "jobs" / "hello.py").exists()
        for credentials, hint in [
            (
                GitCredentials(username="ann", password="wrong-" + PASSWORD),
                "refused the username and password",
            ),
            (None, "set credentialsSecretRef"),
        ]:
            with pytest.raises(GitSourceError) as caught:
                resolve_ref(url, "main", credentials, timeout=30, allow_file=False)
            assert caught.value.reason == "FetchFailed"
            assert hint in caught.value.message
            assert PASSWORD not in caught.value.message
        assert {status for _, _, status in server.requests} == {200, 401}
        received = server.basic_credentials("jobs.git")
        assert f"ann:{PASSWORD}" in received
        assert f"ann:wrong-{PASSWORD}" in received
        assert server.basic_credentials("other.git") == []


def test_a_server_that_refuses_commits_by_id_gets_a_full_fetch(repo: GitRepo, tmp_path: Path) -> None:
    first = job_repo(repo)
    repo.commit({"README.md": "later\n"})
    root = tmp_path / "served"
    root.mkdir()
    repo.git("clone", "--quiet", "--bare", str(repo.path), str(root / "jobs.git"))
    # Protocol v0 servers only send what a branch or tag points at.
    with GitHttpServer(root, None, None, protocol_v2=False) as server:
        url = server.url_for("jobs.git")
        dest = tmp_path / "work" / SLUG
        fetch_commit(url, first, dest, None, timeout=30, max_bytes=MIB, allow_file=False)
        assert (dest / "README.md").read_text() == "jobs\n"
        with pytest.raises(GitSourceError, match=r"not found in .*: no branch or tag contains it"):
            fetch_commit(
                url, "ab" * 20, tmp_path / "other", None, timeout=30, max_bytes=MIB, allow_file=False
            )


# --- importing a repository's jobs ---------------------------------------------------------------------


def checkout_of(repo: GitRepo, commit: str, workdir: Path) -> Path:
    dest = workdir / SLUG
    fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=10 * MIB)
    return dest


def test_a_broken_module_fails_alone_and_is_named_by_its_repository_file(
    repo: GitRepo, tmp_path: Path
) -> None:
    commit = repo.commit({"jobs/__init__.py": "", "jobs/hello.py": HELLO, "jobs/broken.py": BROKEN})
    checkout = checkout_of(repo, commit, tmp_path / "work")
    discovery = discover_repository(checkout, SLUG)
    assert sorted(discovery.jobs) == [f"{SLUG}.jobs.hello.Hello"]
    assert discovery.errors == {f"{SLUG}.jobs.broken": "SyntaxError: invalid syntax (jobs/broken.py, line 5)"}
    assert str(tmp_path) not in json.dumps(discovery.errors)


def test_runtime_errors_name_the_repository_line(repo: GitRepo, tmp_path: Path) -> None:
    failing = """
        import json

        CONFIG = json.loads("{")
    """
    reads = """
        from pathlib import Path

        SETTINGS = (Path(__file__).parent / "settings.yaml").read_text()
    """
    files = {
        "jobs/__init__.py": "",
        "jobs/config.py": failing,
        "jobs/reads.py": reads,
        "jobs/_private.py": "raise X",
    }
    commit = repo.commit(files)
    discovery = discover_repository(checkout_of(repo, commit, tmp_path / "work"), SLUG)
    assert set(discovery.errors) == {f"{SLUG}.jobs.config", f"{SLUG}.jobs.reads"}
    error = discovery.errors[f"{SLUG}.jobs.config"]
    assert error.startswith("JSONDecodeError: Expecting property name enclosed in double quotes")
    assert error.endswith("(jobs/config.py, line 4)")
    assert discovery.errors[f"{SLUG}.jobs.reads"] == (
        "FileNotFoundError: [Errno 2] No such file or directory: 'jobs/settings.yaml' (jobs/reads.py, line 4)"
    )


def test_a_failing_jobs_package_is_keyed_by_the_package(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit({"jobs/__init__.py": "import not_installed_anywhere\n", "jobs/hello.py": HELLO})
    discovery = discover_repository(checkout_of(repo, commit, tmp_path / "work"), SLUG)
    assert discovery.jobs == {}
    assert discovery.errors == {
        f"{SLUG}.jobs": (
            "ModuleNotFoundError: No module named 'not_installed_anywhere' (jobs/__init__.py, line 1)"
        )
    }


def test_a_jobs_module_and_a_root_package_work(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit({"__init__.py": "", "jobs.py": HELLO, "helpers/__init__.py": ""})
    discovery = discover_repository(checkout_of(repo, commit, tmp_path / "work"), SLUG)
    assert sorted(discovery.jobs) == [f"{SLUG}.jobs.Hello"]
    assert discovery.errors == {}


def test_a_module_that_exits_or_fails_registering_counts_nothing(repo: GitRepo, tmp_path: Path) -> None:
    half = textwrap.dedent(HELLO) + "\nraise RuntimeError('after registering')\n"
    commit = repo.commit(
        {"jobs/__init__.py": "", "jobs/half.py": half, "jobs/quits.py": "import sys\nsys.exit(3)\n"}
    )
    discovery = discover_repository(checkout_of(repo, commit, tmp_path / "work"), SLUG)
    assert discovery.jobs == {}
    assert set(discovery.errors) == {f"{SLUG}.jobs.half", f"{SLUG}.jobs.quits"}
    assert discovery.errors[f"{SLUG}.jobs.half"].startswith("RuntimeError: after registering (jobs/half.py")
    assert discovery.errors[f"{SLUG}.jobs.quits"] == "SystemExit: 3 (jobs/quits.py, line 2)"


def test_no_jobs_package_is_a_failure(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit({"README.md": "nothing here\n", "lib/jobs.py": HELLO})
    with pytest.raises(GitSourceError) as caught:
        discover_repository(checkout_of(repo, commit, tmp_path / "work"), SLUG)
    assert caught.value.reason == "NoJobsPackage"


def test_a_slug_shadowing_an_installed_module_is_a_conflict(repo: GitRepo, tmp_path: Path) -> None:
    commit = job_repo(repo)
    dest = tmp_path / "work" / "json"
    fetch_commit(repo.url, commit, dest, None, timeout=30, max_bytes=MIB)
    with pytest.raises(GitSourceError) as caught:
        discover_repository(dest, "json")
    assert caught.value.reason == "SlugConflict"
    assert "json/__init__.py" in caught.value.message
    assert str(tmp_path / "work") not in sys.path


def test_a_new_commit_is_imported_afresh_in_the_same_process(repo: GitRepo, tmp_path: Path) -> None:
    first = job_repo(repo)
    second = repo.commit({"jobs/hello.py": HELLO.replace('"Hello"', '"Howdy"'), "jobs/extra.py": HELLO})
    old = discover_repository(checkout_of(repo, first, tmp_path / "one"), SLUG)
    assert sorted(old.jobs) == [f"{SLUG}.jobs.hello.Hello"]
    new = discover_repository(checkout_of(repo, second, tmp_path / "two"), SLUG)
    assert sorted(new.jobs) == [f"{SLUG}.jobs.extra.Hello", f"{SLUG}.jobs.hello.Hello"]
    greeting = sys.modules[f"{SLUG}.jobs.hello"].GREETING
    assert greeting == "Howdy"
    assert str((tmp_path / "one").resolve()) not in sys.path


# --- sync-repo --------------------------------------------------------------------------------------


def parse_report(stdout: str) -> dict[str, Any]:
    last = stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith(SYNC_REPORT_PREFIX)
    report: dict[str, Any] = json.loads(last.removeprefix(SYNC_REPORT_PREFIX))
    return report


def sync_env(url: str, commit: str, *, slug: str = SLUG, **extra: str) -> dict[str, str]:
    """A sync pod's environment, as the operator writes it (its contract), with ``extra`` variables."""
    contract = SyncContract(
        repo_url=url, repo_commit=commit, repo_slug=slug, git_timeout=30, git_max_bytes=MIB
    )
    return {**{item["name"]: item["value"] for item in contract.env()}, **extra}


def test_sync_repo_prints_the_report_last(repo: GitRepo, tmp_path: Path) -> None:
    chatty = textwrap.dedent(HELLO) + "\nprint('imported!')\n"
    commit = repo.commit(
        {"jobs/__init__.py": "", "jobs/b.py": HELLO, "jobs/a.py": chatty, "jobs/x.py": BROKEN}
    )
    out, err = io.StringIO(), io.StringIO()
    message = tmp_path / "termination-log"
    env = sync_env(repo.url, commit, JOBPLANE_TERMINATION_MESSAGE_PATH=str(message))
    code = sync_repo(env, workdir=tmp_path / "work", out=out, err=err)
    assert code == 0, err.getvalue()
    report = parse_report(out.getvalue())
    assert report["commit"] == commit
    assert [job["classPath"] for job in report["jobs"]] == [f"{SLUG}.jobs.a.Hello", f"{SLUG}.jobs.b.Hello"]
    hello = report["jobs"][0]
    assert hello["moduleName"] == f"{SLUG}.jobs.a"
    assert hello["code"]["grouping"] == "Greetings"
    assert hello["variablesSchema"]["properties"]["who"]["default"] == "world"
    assert report["errors"] == {f"{SLUG}.jobs.x": "SyntaxError: invalid syntax (jobs/x.py, line 5)"}
    assert "imported!" in err.getvalue()  # the repository's prints stay off stdout
    assert json.loads(message.read_text())["status"] == "SUCCESS"
    assert (tmp_path / "work" / SLUG / "jobs" / "a.py").exists()  # a given workdir is kept


def test_sync_repo_failures_are_reported_too(repo: GitRepo, tmp_path: Path) -> None:
    job_repo(repo)
    out, err = io.StringIO(), io.StringIO()
    message = tmp_path / "termination-log"
    code = sync_repo(
        sync_env(repo.url, "f" * 40, JOBPLANE_TERMINATION_MESSAGE_PATH=str(message)), out=out, err=err
    )
    assert code == 1
    report = parse_report(out.getvalue())
    assert report == {
        "commit": "f" * 40,
        "failure": {
            "reason": "FetchFailed",
            "message": f"commit {'f' * 40} not found in {repo.url}: no branch or tag contains it",
        },
    }
    summary = json.loads(message.read_text())
    assert summary["status"] == "FAILURE"
    assert summary["error"].startswith("FetchFailed: commit ffff")
    conflict = io.StringIO()
    assert sync_repo(sync_env(repo.url, "f" * 40, slug="json"), out=conflict, err=io.StringIO()) == 1
    assert parse_report(conflict.getvalue())["failure"]["reason"] == "SlugConflict"


def test_a_sync_contract_that_does_not_hold_is_reported_never_quoted(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    message = tmp_path / "termination-log"
    url = f"https://ann:{PASSWORD}@git.example.com/jobs.git"
    # Written by hand: the operator would refuse to build this contract at all.
    env = {
        "JOBPLANE_REPO_URL": url,
        "JOBPLANE_REPO_COMMIT": "f" * 40,
        "JOBPLANE_REPO_SLUG": SLUG,
        "JOBPLANE_TERMINATION_MESSAGE_PATH": str(message),
    }
    assert sync_repo(env, out=out, err=err) == 1
    refused = (
        "JOBPLANE_REPO_URL must not hold a password: credentials go in the Secret named by the "
        "JobRepository's credentialsSecretRef"
    )
    # The report the operator reads (the commit is not taken from a contract that does not hold), the
    # termination message, and stderr.
    assert parse_report(out.getvalue()) == {
        "commit": "",
        "failure": {"reason": "InvalidInput", "message": refused},
    }
    assert json.loads(message.read_text())["error"] == f"InvalidInput: {refused}"
    assert err.getvalue() == f"jobplane: InvalidInput: {refused}\n"
    assert PASSWORD not in out.getvalue() + err.getvalue() + message.read_text()


def test_the_sync_job_the_operator_plans_is_what_sync_repo_runs(repo: GitRepo, tmp_path: Path) -> None:
    # The operator's side writes the pod's environment, the pod's side reads it: either drifting fails here.
    commit = job_repo(repo)
    repository = JobRepository.model_validate(
        {
            "metadata": {"name": "jobs", "namespace": "ops", "uid": "4e1d2c3b-0000-4000-8000-000000000001"},
            "spec": {"url": repo.url, "slug": SLUG},
        }
    )
    job = plan_sync_job(
        repository,
        job_name="jobs-sync-1",
        commit=commit,
        queue=None,
        default_image="localhost/jobplane:dev",
        timeout=60,
        max_bytes=MIB,
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["jobplane", "sync-repo"]
    env = {item["name"]: item["value"] for item in container["env"]}
    out, err = io.StringIO(), io.StringIO()
    assert sync_repo({**env, "JOBPLANE_TERMINATION_MESSAGE_PATH": ""}, out=out, err=err) == 0, err.getvalue()
    report = parse_sync_report(out.getvalue())
    assert report is not None
    assert report.failure is None
    assert (report.commit, [job["classPath"] for job in report.jobs]) == (
        commit,
        [f"{SLUG}.jobs.hello.Hello"],
    )


def cli_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JOBPLANE_", "GIT_"))}
    return {**base, "JOBPLANE_JOBS_ROOT": "/nonexistent", "PYTHONUNBUFFERED": "1", **extra}


def test_sync_repo_command_with_credentials_over_http_and_200_jobs(repo: GitRepo, tmp_path: Path) -> None:
    modules = {"jobs/__init__.py": ""}
    for number in range(20):
        classes = "".join(
            f"""
class Job{number}x{index}(Job):
    target = StringVar(description="what to check")
    count = IntegerVar(default={index}, min_value=0)

    class Meta:
        name = "Check {number}-{index}"
        has_sensitive_variables = False

    def run(self, *, target, count):
        return target * count
"""
            for index in range(10)
        )
        names = ", ".join(f"Job{number}x{index}" for index in range(10))
        header = "from jobplane import IntegerVar, Job, StringVar, register_jobs\n"
        source = f"{header}{classes}\nregister_jobs({names})\n"
        modules[f"jobs/group{number:02d}.py"] = source
    commit = repo.commit(modules)
    root = tmp_path / "served"
    root.mkdir()
    repo.git("clone", "--quiet", "--bare", str(repo.path), str(root / "jobs.git"))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "username").write_text("ann")
    (credentials / "password").write_text(PASSWORD)
    with GitHttpServer(root, "ann", PASSWORD) as server:
        # As the operator mounts a Secret scoped to the repository: its url key is a file too, ignored.
        (credentials / "url").write_text(server.base_url + "/")
        command = [sys.executable, "-m", "jobplane.cli", "sync-repo"]
        contract = sync_env(
            server.url_for("jobs.git"), commit, JOBPLANE_REPO_CREDENTIALS_DIR=str(credentials)
        )
        done = subprocess.run(
            command,
            env=cli_env(**contract),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    report = parse_report(done.stdout)
    assert len(report["jobs"]) == 200
    assert report["errors"] == {}
    assert PASSWORD not in done.stdout + done.stderr


# --- run-pod of a repository's job ------------------------------------------------------------------------


def run_pod(
    tmp_path: Path, class_path: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    message = tmp_path / "termination-log"
    message.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "run-pod", class_path],
        cwd=tmp_path,
        env=cli_env(
            JOBPLANE_TERMINATION_MESSAGE_PATH=str(message),
            JOBPLANE_GIT_WORKDIR=str(tmp_path / "repos"),
            JOBPLANE_DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(message.read_text())


def test_run_pod_fetches_the_commit_and_runs_its_job(repo: GitRepo, tmp_path: Path) -> None:
    first = job_repo(repo)
    repo.commit({"jobs/hello.py": HELLO.replace('"Hello"', '"Later"')})
    env = {
        "JOBPLANE_REPO_URL": repo.url,
        "JOBPLANE_REPO_COMMIT": first,  # pinned: not the tip
        "JOBPLANE_REPO_SLUG": SLUG,
        "JOBPLANE_RUN_DATA": '{"who": "Ann"}',
    }
    done, message = run_pod(tmp_path, f"{SLUG}.jobs.hello.Hello", **env)
    assert done.returncode == 0, done.stderr
    assert message == {"status": "SUCCESS", "result": '{"greeting": "Hello, Ann!"}', "error": None}
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["job"] == f"{SLUG}.jobs.hello.Hello"
    assert (tmp_path / "repos" / SLUG / "jobs" / "hello.py").exists()


def test_run_pod_names_a_broken_repository_module(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit({"jobs/__init__.py": "", "jobs/broken.py": BROKEN})
    env = {"JOBPLANE_REPO_URL": repo.url, "JOBPLANE_REPO_COMMIT": commit, "JOBPLANE_REPO_SLUG": SLUG}
    done, message = run_pod(tmp_path, f"{SLUG}.jobs.broken.Broken", **env)
    assert done.returncode == 2
    assert message["error"] == (
        f"JobNotFound: no job with class path '{SLUG}.jobs.broken.Broken'; module {SLUG}.jobs.broken failed "
        "to import: SyntaxError: invalid syntax (jobs/broken.py, line 5)"
    )


def test_run_pod_with_a_commit_that_cannot_be_fetched_is_refused(repo: GitRepo, tmp_path: Path) -> None:
    job_repo(repo)
    env = {"JOBPLANE_REPO_URL": repo.url, "JOBPLANE_REPO_COMMIT": "e" * 40, "JOBPLANE_REPO_SLUG": SLUG}
    done, message = run_pod(tmp_path, f"{SLUG}.jobs.hello.Hello", **env)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing ran
    assert message["status"] == "FAILURE"
    assert message["error"] == (
        f"RepositoryFetchFailed: commit {'e' * 40} not found in {repo.url}: no branch or tag contains it"
    )
    assert done.stderr.startswith("jobplane: commit eeee")
