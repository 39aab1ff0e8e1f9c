"""The Git repositories pages in a real Chromium: adding one after a field error, a reader's view without
Add or Sync, Sync landing on its result, a repository's jobs, and the pages without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from jobplane_api.kube import REPOSITORY_DISPLAY_NAME
from tests.ui_support import Tour, UiWorld, job_definition

TOUR = "11111111-1111-4111-8111-111111111111"
GIT = ["extras.gitrepository", "extras.job", "extras.jobresult"]
COMMIT = "0123456789abcdef" * 2 + "01234567"


@pytest.fixture
def world(ui_world: UiWorld) -> UiWorld:
    ui_world.add_definition(
        job_definition(
            Tour, uid=TOUR, source={"type": "repository", "repository": "netops", "commit": COMMIT}
        )
    )
    ui_world.fake.add(
        "netops",
        {"url": "https://git.example.com/netops.git", "slug": "netops"},
        {
            "commit": COMMIT,
            "lastSyncTime": "2026-11-30T12:00:00Z",
            "conditions": [
                {
                    "type": "Synced",
                    "status": "True",
                    "reason": "Synced",
                    "message": "1 job",
                    "lastTransitionTime": "2026-11-30T12:00:00Z",
                }
            ],
        },
    )
    ui_world.fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"] = {
        REPOSITORY_DISPLAY_NAME: "Network ops"
    }
    ui_world.user("admin", actions=["view", "add", "change"], object_types=GIT)
    ui_world.user("reader", actions=["view"], object_types=GIT)
    return ui_world


def test_adding_a_repository_shows_the_field_error_then_its_page(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "admin")
    page.get_by_role("link", name="Git repositories").click()
    page.get_by_test_id("add-repository").click()
    page.get_by_label("Name").fill("Edge routers")
    page.get_by_label("Remote URL").fill("ftp://git.example.com/edge.git")
    page.get_by_test_id("add-button").click()
    error = page.get_by_test_id("error-remote_url")
    expect(error).to_have_text(re.compile(r"^Unsupported URL scheme 'ftp'"))
    expect(page.get_by_label("Remote URL")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Edge routers")
    page.get_by_label("Remote URL").fill("https://git.example.com/edge.git")
    page.get_by_label("Branch").fill("release")
    page.get_by_test_id("add-button").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edge routers")
    expect(page.get_by_test_id("no-jobs")).to_be_visible()
    created = world.fake.objects[("jobrepositories", "edge-routers")]
    assert created["spec"]["ref"] == "release"
    page.get_by_role("link", name="Git repositories").first.click()
    expect(page.get_by_test_id("repository-row")).to_have_count(2)


def test_a_reader_sees_no_add_or_sync_button(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "reader")
    page.goto(f"{ui_url}/git-repositories/")
    row = page.get_by_test_id("repository-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Network ops")
    expect(row.get_by_test_id("sync-state")).to_contain_text("synced")
    expect(page.get_by_test_id("add-repository")).to_have_count(0)
    expect(page.get_by_test_id("sync")).to_have_count(0)
    page.get_by_role("link", name="Network ops").click()
    expect(page.get_by_test_id("commit")).to_have_text(COMMIT)
    expect(page.get_by_test_id("sync")).to_have_count(0)
    # The repository's jobs, each linked to its page.
    page.get_by_role("link", name="Variables tour").click()
    expect(page).to_have_url(f"{ui_url}/jobs/{TOUR}/")


def test_sync_lands_on_the_syncs_result(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "admin")
    page.goto(f"{ui_url}/git-repositories/")
    page.get_by_role("button", name="Sync Network ops").click()
    page.wait_for_url(re.compile(rf"{re.escape(ui_url)}/job-results/[0-9a-f-]{{36}}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Git Repository: Sync")


def test_the_pages_work_without_javascript(
    browser: Any, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "admin")
        page.goto(f"{ui_url}/git-repositories/")
        expect(page.get_by_test_id("repository-row")).to_have_count(1)
        page.get_by_role("link", name="Network ops").click()
        expect(page.get_by_test_id("job-row")).to_have_count(1)
        # The forms post without htmx too.
        page.get_by_test_id("sync").click()
        page.wait_for_url(re.compile(rf"{re.escape(ui_url)}/job-results/[0-9a-f-]{{36}}/$"))
    finally:
        context.close()
