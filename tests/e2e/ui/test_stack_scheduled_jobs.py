"""Approvals in the web UI on the whole stack (tests/stack.py: cluster, operator, API, Postgres) in Chromium:
a user runs an approval-required job from its form and lands on the scheduled job awaiting approval, with
no Approve button of their own; another user approves it from the approval queue; the operator fires it, a
real pod runs it, and its result, linked from the scheduled job's page, ends in SUCCESS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from jobplane_api.identity import service
from jobplane_api.services.approvals import OWN_REQUEST
from jobplane_store.database import create_store_engine, make_sessionmaker
from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api
from tests.e2e.test_admission import NOOP, override
from tests.e2e.ui.test_stack import _sign_in
from tests.stack import Stack
from tests.ui_support import PASSWORD, SCHEDULING

pytestmark = pytest.mark.cluster

REQUESTER, APPROVER = "ui-requester", "ui-approver"
# A fire waits for the operator, then a pod for its image and node: much longer than expect()'s 5 s.
POD_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Iterator[Stack]:
    """The stack with the no-op job enabled and requiring approval; two users who may run, approve, change
    and delete (what stops the requester approving is that the request is theirs)."""
    Api(api_stack, api_stack.admin_token).enable(NOOP)
    override(api_stack, NOOP, approvalRequired=True)
    engine = create_store_engine(api_stack.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for username in (REQUESTER, APPROVER):
                service.create_user(session=session, username=username, password=PASSWORD)
                service.create_permission(
                    session=session,
                    name=f"{username}-scheduling",
                    object_types=[*SCHEDULING, "extras.joblogentry"],
                    actions=["view", "run", "change", "delete", "approve"],
                    users=[username],
                )
    finally:
        engine.dispose()
    yield api_stack
    override(api_stack, NOOP, approvalRequired=None)


def _approval_required(admin: Api) -> dict[str, Any]:
    """The job once the API's cache has the approval override (a moment after the patch)."""

    def seen() -> dict[str, Any] | None:
        job = admin.job(NOOP)
        return job if job["approval_required"] else None

    return dict(wait_for("the API to see approval_required", seen, timeout=30, interval=0.5))


def test_an_approved_request_runs_in_a_pod(page: Page, browser: Browser, stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    job = _approval_required(admin)
    _sign_in(page, stack, REQUESTER)
    page.goto(f"{stack.api_url}/jobs/{job['id']}/run/")
    expect(page.get_by_test_id("approval-note")).to_be_visible()
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(r".*/scheduled-jobs/[0-9a-f-]{36}/\?created=1$"))
    scheduled = page.url.split("/")[-2]
    expect(page.get_by_test_id("created-note")).to_contain_text("is awaiting approval")
    expect(page.get_by_test_id("approve")).to_have_count(0)
    expect(page.get_by_test_id("approve-refused")).to_have_text(OWN_REQUEST)

    context = browser.new_context()
    approver = context.new_page()
    try:
        _sign_in(approver, stack, APPROVER)
        approver.get_by_role("link", name="Scheduled jobs").first.click()
        approver.get_by_test_id("filter-awaiting").click()
        row = approver.locator(f'[data-testid="scheduled-row"]:has(a[href="/scheduled-jobs/{scheduled}/"])')
        expect(row.get_by_test_id("state")).to_have_text("awaiting approval")
        row.get_by_role("link").first.click()
        approver.get_by_test_id("approve").click()
        expect(approver.get_by_test_id("state")).to_contain_text(f"approved by {APPROVER}")
    finally:
        context.close()

    record: dict[str, Any] = admin.get(f"/api/extras/scheduled-jobs/{scheduled}/").json()
    selector = f"jobplane.io/schedule={record['job_schedule']['name']}"

    def fired() -> list[Any] | None:
        return list(stack.cluster.get_json("jobruns", "-n", stack.namespace, "-l", selector)["items"]) or None

    (run,) = wait_for("the approved scheduled job to fire", fired, timeout=120)
    admin.wait_result(run["metadata"]["uid"], "SUCCESS", timeout=POD_TIMEOUT_MS / 1000)
    # The requester's page of the scheduled job lists the run; its result page shows how it ended.
    page.reload()
    expect(page.get_by_test_id("approval-state")).to_contain_text(f"approved by {APPROVER}")
    page.get_by_test_id("run-row").get_by_role("link").click()
    expect(page).to_have_url(f"{stack.api_url}/job-results/{run['metadata']['uid']}/")
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS")
