"""The Git repositories pages on the whole stack (tests/stack.py: cluster, operator, API, Postgres) in
Chromium: a user who may add repositories adds one served over HTTP from the host, syncs it, lands on the
sync's result and sees it end, then finds the repository's job on its page."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from jobplane_api.identity import service
from jobplane_store.database import create_store_engine, make_sessionmaker
from tests.e2e.test_git_repositories import job_module
from tests.gitserver import GitHttpServer, GitRepo
from tests.stack import Stack
from tests.ui_support import PASSWORD

pytestmark = pytest.mark.cluster

USER = "ui-git-admin"
# A sync can wait for its pod's image and node: much longer than expect()'s default 5 s.
SYNC_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    """The stack with a user (not a superuser) who may view, add and sync Git repositories and view jobs."""
    engine = create_store_engine(api_stack.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            service.create_user(session=session, username=USER, password=PASSWORD)
            service.create_permission(
                session=session,
                name=f"{USER}-git",
                object_types=["extras.gitrepository", "extras.job", "extras.jobresult"],
                actions=["view", "add", "change"],
                users=[USER],
            )
    finally:
        engine.dispose()
    return api_stack


@pytest.fixture(scope="module")
def served_url(stack: Stack) -> Iterator[str]:
    """A public repository (no credentials) of one job, served over smart HTTP on the cluster's bridge
    address, which the sync pods reach from the pod network."""
    root = Path(tempfile.mkdtemp(prefix="jobplane-ui-git-"))
    try:
        bare = root / "ui-jobs.git"
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True)
        GitRepo(root / "work").commit(
            {
                "jobs/__init__.py": "",
                "jobs/hello.py": job_module("Hello", description="from the UI", version="v1"),
            },
            "one job",
            push_to=bare,
        )
        # On the cluster's bridge address: the sync pods run on the pod network.
        with GitHttpServer(root, None, None, host=stack.cluster.apiserver_ip) as server:
            yield server.url_for("ui-jobs.git")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_add_sync_follow_and_see_its_jobs(page: Page, stack: Stack, served_url: str) -> None:
    page.goto(f"{stack.api_url}/login/")
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.api_url}/jobs/")
    page.get_by_role("link", name="Git repositories").click()
    page.get_by_test_id("add-repository").click()
    page.get_by_label("Name").fill("UI jobs")
    page.get_by_label("Remote URL").fill(served_url)
    page.get_by_test_id("add-button").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("UI jobs")
    repository_page = page.url
    page.get_by_test_id("sync").click()
    page.wait_for_url(re.compile(rf"{re.escape(stack.api_url)}/job-results/[0-9a-f-]{{36}}/$"))
    # The result page follows the sync live: its status changes without a reload.
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=SYNC_TIMEOUT_MS)
    page.goto(repository_page)
    expect(page.get_by_test_id("sync-state")).to_contain_text("synced")
    job = page.get_by_test_id("job-row")
    expect(job).to_have_count(1)
    expect(job).to_contain_text("hello.Hello")
    job.get_by_role("link").click()
    expect(page.get_by_test_id("job-source")).to_contain_text("Git repository")
