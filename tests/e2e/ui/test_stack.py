"""The web UI on the whole stack (tests/stack.py: cluster, operator, API, Postgres) in Chromium, as issue 18's
"done when" reads: a user who is not an admin signs in, finds the seed's "My Job With Vars", gets a field
error, runs it and watches its log lines arrive from a real pod before the run ends, then SUCCESS, its
return value and its output file; runs the file job with an upload; cancels a long job (REVOKED); re-runs
in one click and from the pre-filled form with the same inputs; a read-only user gets no Run button; a
POST without the CSRF token is refused and signing out ends the session for good.

Screenshots of the run form and of a finished result page go to ``$JOBPLANE_UI_ARTIFACTS``.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from jobplane_api.identity import service
from jobplane_api.ui.auth import SESSION_COOKIE
from jobplane_store.database import create_store_engine, make_sessionmaker
from tests.e2e.api_support import Api
from tests.e2e.ui.conftest import ARTIFACTS
from tests.stack import Stack
from tests.ui_support import PASSWORD

pytestmark = pytest.mark.cluster

JOB = "api_examples.ExampleVariables"
WITH_VARS = "example.MyJobWithVars"
FILE_JOB = "api_examples.ExampleFile"
SLOW = "api_examples.SlowCounter"
# A pod starts (image, kubelet, first report) within this; a run's page follows it without reloads.
POD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    """The stack with the example jobs enabled and two users who sign in with a password."""
    admin = Api(api_stack, api_stack.admin_token)
    for job in (JOB, WITH_VARS, FILE_JOB, SLOW):
        admin.enable(job)
    engine = create_store_engine(api_stack.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for username, actions, files in (
                ("ui-runner", ["view", "run"], True),
                ("ui-reader", ["view"], False),
            ):
                service.create_user(session=session, username=username, password=PASSWORD)
                service.create_permission(
                    session=session,
                    name=f"{username}-jobs",
                    object_types=["extras.job", "extras.jobresult"],
                    actions=actions,
                    users=[username],
                )
                if files:
                    service.create_permission(
                        session=session,
                        name=f"{username}-files",
                        object_types=["extras.fileproxy"],
                        actions=["view"],
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


def _open_run_form(page: Page, search: str, name: str) -> None:
    page.get_by_role("searchbox", name="Search jobs").fill(search)
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_test_id("run-link").click()


def _landed_on_result(page: Page, stack: Stack) -> str:
    page.wait_for_url(re.compile(rf"{re.escape(stack.api_url)}/job-results/[0-9a-f-]{{36}}/$"))
    return page.url.rstrip("/").rsplit("/", 1)[1]


def _inputs(page: Page) -> dict[str, object]:
    shown: dict[str, object] = json.loads(page.get_by_test_id("result-inputs").inner_text())
    return shown


def test_my_job_with_vars_logs_live_from_its_pod_then_succeeds_with_a_value_and_a_file(
    page: Page, stack: Stack
) -> None:
    _sign_in(page, stack, "ui-runner")
    _open_run_form(page, "my job with vars", "My Job With Vars")
    page.get_by_label("String variable").fill("somevalue")
    page.get_by_label("Integer variable").fill("-5")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("error-integer_variable")).to_have_text(
        "Ensure this value is greater than or equal to 0."
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "stack-run-form.png"), full_page=True)
    page.get_by_label("Integer variable").fill("123")
    # Each line is followed by this many seconds of the run: the lines are seen while it goes on.
    page.get_by_label("Pause").fill("6")
    page.get_by_test_id("run-button").click()
    _landed_on_result(page, stack)
    page.evaluate("window.jobplaneNotReloaded = true")
    rows = page.get_by_test_id("log-row").filter(has_text="_variable=")
    expect(rows).to_have_count(2, timeout=POD_TIMEOUT_MS)
    expect(rows.nth(0)).to_contain_text("string_variable=somevalue")
    expect(rows.nth(1)).to_contain_text("integer_variable=123")
    # Both lines shown, and the run not over: they came over the stream, without a reload.
    expect(page.get_by_test_id("result-status")).to_have_text("STARTED")
    assert page.evaluate("window.jobplaneNotReloaded") is True
    expect(page.get_by_test_id("no-logs")).to_be_hidden()
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=POD_TIMEOUT_MS)
    assert page.evaluate("window.jobplaneNotReloaded") is True
    expect(page.get_by_test_id("result-user")).to_have_text("ui-runner")
    # The reason of the phase it left is not shown as the reason it ended.
    assert "PodRunning" not in page.locator("#result-summary").inner_text()
    expect(page.get_by_test_id("return-value")).to_contain_text('"integer_variable": 123')
    expect(page.get_by_test_id("return-value")).to_contain_text('"string_variable": "somevalue"')
    assert _inputs(page) == {"string_variable": "somevalue", "integer_variable": 123, "pause": 6}
    expect(page.get_by_test_id("log-row").filter(has_text="wrote inputs.json")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "stack-result-page.png"), full_page=True)
    with page.expect_download() as downloading:
        page.get_by_test_id("files").get_by_role("link", name="inputs.json").click()
    download = downloading.value
    assert download.suggested_filename == "inputs.json"
    path = download.path()
    assert json.loads(path.read_bytes()) == {"string_variable": "somevalue", "integer_variable": 123}


def test_the_file_job_runs_on_an_uploaded_file(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-runner")
    _open_run_form(page, "example file", "Example file")
    page.get_by_label("Interval").fill("0")
    page.get_by_label("Myfile").set_input_files(
        files=[{"name": "hosts.txt", "mimeType": "text/plain", "buffer": b"edge-1\nedge-2\n"}]
    )
    page.get_by_test_id("run-button").click()
    _landed_on_result(page, stack)
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=POD_TIMEOUT_MS)
    expect(page.get_by_test_id("return-value")).to_contain_text('"lines": 2')
    expect(page.get_by_test_id("log-row").filter(has_text="line 2: edge-2")).to_have_count(1)
    with page.expect_download() as downloading:
        page.get_by_test_id("files").get_by_role("link", name="report.txt").click()
    assert downloading.value.path().read_bytes() == b"1: edge-1\n2: edge-2\n"
    # The upload was read and deleted: no one-click re-run, the reason, and the form to choose it again.
    expect(page.get_by_test_id("rerun-now")).to_have_count(0)
    expect(page.get_by_test_id("rerun-blocked")).to_contain_text("Uploaded files are deleted")
    expect(page.get_by_test_id("rerun")).to_be_visible()


def test_a_long_job_is_cancelled_and_ends_revoked(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-runner")
    _open_run_form(page, "slow counter", "Slow counter")
    page.get_by_label("Steps").fill("600")
    page.get_by_test_id("run-button").click()
    _landed_on_result(page, stack)
    expect(page.get_by_test_id("log-row").filter(has_text="step 1 of 600")).to_have_count(
        1, timeout=POD_TIMEOUT_MS
    )
    page.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("result-status")).to_have_text("REVOKED", timeout=POD_TIMEOUT_MS)
    expect(page.get_by_test_id("cancel")).to_have_count(0)


def test_a_rerun_in_one_click_and_from_the_form_keeps_the_inputs(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-runner")
    _open_run_form(page, "my job with vars", "My Job With Vars")
    page.get_by_label("String variable").fill("again")
    page.get_by_label("Integer variable").fill("42")
    page.get_by_test_id("run-button").click()
    first = _landed_on_result(page, stack)
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=POD_TIMEOUT_MS)
    inputs = _inputs(page)
    assert inputs == {"string_variable": "again", "integer_variable": 42, "pause": 0}

    page.get_by_test_id("rerun-now").click()
    second = _landed_on_result(page, stack)
    assert second != first
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=POD_TIMEOUT_MS)
    assert _inputs(page) == inputs
    expect(page.get_by_test_id("result-user")).to_have_text("ui-runner")

    page.get_by_test_id("rerun").click()
    expect(page.get_by_label("String variable")).to_have_value("again")
    expect(page.get_by_label("Integer variable")).to_have_value("42")
    page.get_by_test_id("run-button").click()
    third = _landed_on_result(page, stack)
    assert third not in (first, second)
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS", timeout=POD_TIMEOUT_MS)
    assert _inputs(page) == inputs


def test_a_reader_gets_no_run_button(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-reader")
    page.get_by_role("link", name="Example variables").click()
    expect(page.get_by_test_id("run-blocked")).to_have_text("You do not have permission to run this job.")
    expect(page.get_by_test_id("run-link")).to_have_count(0)


def test_a_post_without_csrf_is_refused_and_signing_out_ends_the_session(page: Page, stack: Stack) -> None:
    _sign_in(page, stack, "ui-reader")
    # The browser's own cookies go along (same origin), but no token: as a forged form would post.
    answer = page.request.post(f"{stack.api_url}/logout/", form={"next": "/"}, max_redirects=0)
    assert answer.status == 403
    page.goto(f"{stack.api_url}/jobs/")
    expect(page.get_by_test_id("user-menu")).to_have_text("ui-reader")
    (session,) = [cookie for cookie in page.context.cookies() if cookie["name"] == SESSION_COOKIE]
    page.get_by_test_id("user-menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{stack.api_url}/login/")
    page.goto(f"{stack.api_url}/jobs/")
    expect(page).to_have_url(f"{stack.api_url}/login/?next=/jobs/")
    # The session's token is gone on the server: a copy of the cookie signs no one in.
    copied = httpx.get(f"{stack.api_url}/jobs/", cookies={SESSION_COOKIE: session["value"]})
    assert copied.status_code == 303
    assert copied.headers["location"].startswith("/login/")
