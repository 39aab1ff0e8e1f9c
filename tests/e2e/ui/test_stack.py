"""The web UI on the whole stack (tests/stack.py: cluster, operator, API, Postgres) in Chromium: a user who
is not an admin signs in, runs a job from its form after a field error, lands on its result, and the job
runs in a pod to SUCCESS; a read-only user gets no Run button."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from jobplane.store.database import create_store_engine, make_sessionmaker
from jobplane_api.identity import service
from tests.e2e.api_support import Api
from tests.stack import Stack
from tests.ui_support import PASSWORD

pytestmark = pytest.mark.cluster

JOB = "api_examples.ExampleVariables"


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    """The stack with the example job enabled and two users who sign in with a password."""
    Api(api_stack, api_stack.admin_token).enable(JOB)
    engine = create_store_engine(api_stack.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for username, actions in (("ui-runner", ["view", "run"]), ("ui-reader", ["view"])):
                service.create_user(session=session, username=username, password=PASSWORD)
                service.create_permission(
                    session=session,
                    name=f"{username}-jobs",
                    object_types=["extras.job", "extras.jobresult"],
                    actions=actions,
                    users=[username],
                )
    finally:
        engine.dispose()
    return api_stack


def _sign_in(page: Page, stack: Stack, username: str) -> None:
    page.goto(f"{stack.api_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.api_url}/jobs/")


def test_a_run_from_the_form_runs_in_a_pod(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-runner")
    page.get_by_role("searchbox", name="Search jobs").fill("example variables")
    page.get_by_role("link", name="Example variables").click()
    page.get_by_test_id("run-link").click()
    page.get_by_label("String variable").fill("from the browser")
    page.get_by_label("Integer variable").fill("-1")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("error-integer_variable")).to_have_text(
        "Ensure this value is greater than or equal to 0."
    )
    page.get_by_label("Integer variable").fill("7")
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(rf"{re.escape(stack.api_url)}/job-results/[0-9a-f-]{{36}}/$"))
    result_id = page.url.rstrip("/").rsplit("/", 1)[1]
    result = Api(stack, stack.admin_token).wait_result(result_id)
    assert result["status"]["value"] == "SUCCESS", result
    assert result["result"] == {"string_variable": "from the browser", "integer_variable": 7}
    assert result["requested_by"] == "ui-runner"


def test_a_reader_gets_no_run_button(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-reader")
    page.get_by_role("link", name="Example variables").click()
    expect(page.get_by_test_id("run-blocked")).to_have_text("You do not have permission to run this job.")
    expect(page.get_by_test_id("run-link")).to_have_count(0)
