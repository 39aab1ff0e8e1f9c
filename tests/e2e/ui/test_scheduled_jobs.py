"""Scheduled jobs and approvals in a real Chromium, on Postgres: a schedule from the run form (a crontab's
field error first), the list; an approval-required run that waits, whose requester sees no Approve (and
why), approved by another user and then shown approved by them; another denied and gone; a reader without
Pause or Delete; the pages without JavaScript.

Kubernetes is the in-memory apiserver of tests/ui_support.py (JobSchedules stored as the API writes them);
an approved schedule firing in a pod is tests/e2e/ui/test_stack_scheduled_jobs.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from jobplane_api.services.approvals import OWN_REQUEST
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from tests.e2e.ui.conftest import ARTIFACTS
from tests.ui_support import SCHEDULING, Reserve, TwoQueues, UiWorld, job_definition

pytestmark = pytest.mark.postgres

RESERVE = "77777777-7777-4777-8777-777777777777"
QUEUES = "55555555-5555-4555-8555-555555555555"
EVERY = ["view", "run", "change", "delete", "approve"]


@pytest.fixture
def ui_world(tmp_path: Path, postgres_url: str) -> UiWorld:
    """The UI's world on Postgres, with an approval-required job and a plain one; a requester, an approver
    and a reader of scheduled jobs."""
    world = UiWorld(tmp_path)
    world.engine = create_store_engine(postgres_url)
    ensure_schema(world.engine)
    world.sessions = make_sessionmaker(world.engine)
    world.add_definition(job_definition(Reserve, uid=RESERVE))
    world.add_definition(job_definition(TwoQueues, uid=QUEUES))
    world.user("rita", actions=EVERY, object_types=SCHEDULING)
    world.user("abe", actions=EVERY, object_types=SCHEDULING)
    world.user("rex", actions=["view"], object_types=SCHEDULING)
    return world


@pytest.fixture
def other_page(browser: Browser) -> Iterator[Page]:
    """A second browser context: another user signed in at the same time."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def scheduled_id(page: Page) -> str:
    match = re.search(r"/scheduled-jobs/([0-9a-f-]{36})/", page.url)
    assert match, page.url
    return match.group(1)


def request_reserve(page: Page, ui_url: str, site: str) -> str:
    """Run the approval-required job from its form: it lands on the scheduled job awaiting approval."""
    page.goto(f"{ui_url}/jobs/{RESERVE}/run/")
    expect(page.get_by_test_id("approval-note")).to_contain_text("This job requires approval")
    page.get_by_label("Site").fill(site)
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(r".*/scheduled-jobs/[0-9a-f-]{36}/\?created=1$"))
    return scheduled_id(page)


def test_a_schedule_from_the_form_after_a_crontab_error_is_listed(
    page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "rita")
    page.goto(f"{ui_url}/jobs/{QUEUES}/run/")
    page.get_by_label("Count").fill("2")
    page.get_by_label("Run", exact=True).select_option("custom")
    page.get_by_label("Schedule name").fill("Nightly count")
    page.get_by_label("Crontab").fill("61 2 * * *")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("error-_schedule_crontab")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-form-schedule-error.png"), full_page=True)
    expect(page.get_by_label("Crontab")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Schedule name")).to_have_value("Nightly count")
    assert ui_world.schedules() == []

    page.get_by_label("Crontab").fill("30 2 * * 1-5")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(r".*/scheduled-jobs/[0-9a-f-]{36}/\?created=1$"))
    expect(page.get_by_test_id("created-note")).to_contain_text("Scheduled: Nightly count runs crontab")
    expect(page.get_by_test_id("interval")).to_have_text("Crontab 30 2 * * 1-5")
    (schedule,) = ui_world.schedules()
    assert schedule["spec"]["schedule"]["timeZone"] == "Europe/Berlin"
    assert ui_world.runs() == []

    page.get_by_role("link", name="Scheduled jobs").first.click()
    row = page.get_by_test_id("scheduled-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Nightly count")
    expect(row).to_contain_text("Two queues")
    expect(row).to_contain_text("rita")
    expect(row.get_by_test_id("enabled")).to_have_text("enabled")
    page.screenshot(path=str(ARTIFACTS / "scheduled-jobs.png"), full_page=True)


def test_the_requester_cannot_approve_another_user_does_and_a_second_is_denied(
    page: Page, other_page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "rita")
    first = request_reserve(page, ui_url, "ams")
    expect(page.get_by_test_id("created-note")).to_contain_text("is awaiting approval")
    expect(page.get_by_test_id("state")).to_contain_text("awaiting approval")
    expect(page.get_by_test_id("approve")).to_have_count(0)
    expect(page.get_by_test_id("approve-refused")).to_have_text(OWN_REQUEST)
    assert ui_world.runs() == []
    second = request_reserve(page, ui_url, "fra")

    sign_in(other_page, "abe")
    other_page.get_by_role("link", name="Scheduled jobs").first.click()
    other_page.get_by_test_id("filter-awaiting").click()
    expect(other_page.get_by_test_id("scheduled-row")).to_have_count(2)
    other_page.goto(f"{ui_url}/scheduled-jobs/{first}/")
    expect(other_page.get_by_test_id("approve-refused")).to_have_count(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    other_page.screenshot(path=str(ARTIFACTS / "scheduled-job-awaiting-approval.png"), full_page=True)
    other_page.get_by_test_id("approve").click()
    expect(other_page.get_by_test_id("state")).to_contain_text("approved by abe")
    expect(other_page.get_by_test_id("approval-state")).to_contain_text("approved by abe at ")
    expect(other_page.get_by_test_id("approve")).to_have_count(0)

    other_page.goto(f"{ui_url}/scheduled-jobs/{second}/")
    other_page.get_by_test_id("deny").click()
    other_page.wait_for_url(f"{ui_url}/scheduled-jobs/")
    rows = other_page.get_by_test_id("scheduled-row")
    expect(rows).to_have_count(1)
    expect(rows.get_by_test_id("state")).to_have_text("approved by abe")
    other_page.get_by_test_id("filter-awaiting").click()
    expect(other_page.get_by_test_id("no-scheduled-jobs")).to_have_text("Nothing awaits approval.")

    # The requester's own page now says who approved it.
    page.goto(f"{ui_url}/scheduled-jobs/{first}/")
    expect(page.get_by_test_id("state")).to_contain_text("approved by abe")
    assert [s["spec"]["approval"]["by"] for s in ui_world.schedules()] == ["abe"]


def test_a_reader_sees_no_pause_or_delete_and_the_pages_work_without_javascript(
    browser: Browser, page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "rita")
    scheduled = request_reserve(page, ui_url, "ams")
    expect(page.get_by_test_id("pause")).to_be_visible()
    expect(page.get_by_test_id("delete")).to_be_visible()
    context = browser.new_context(java_script_enabled=False)
    reader = context.new_page()
    try:
        sign_in(reader, "rex")
        reader.get_by_role("link", name="Scheduled jobs").first.click()
        expect(reader.get_by_test_id("scheduled-row")).to_have_count(1)
        reader.get_by_test_id("scheduled-row").get_by_role("link").first.click()
        expect(reader).to_have_url(f"{ui_url}/scheduled-jobs/{scheduled}/")
        expect(reader.get_by_test_id("requester")).to_have_text("rita")
        for button in ("pause", "resume", "delete", "approve", "deny", "dry-run"):
            expect(reader.get_by_test_id(button)).to_have_count(0)
        expect(reader.get_by_test_id("approve-refused")).to_have_text(
            "You do not have permission to approve this request."
        )
    finally:
        context.close()
    # The requester pauses it (a plain form post) and deletes it after the confirmation page.
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("resume")).to_be_visible()
    page.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-delete").click()
    page.wait_for_url(f"{ui_url}/scheduled-jobs/")
    expect(page.get_by_test_id("no-scheduled-jobs")).to_be_visible()
    assert ui_world.schedules() == []
