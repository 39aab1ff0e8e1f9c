"""The jobs pages in a real Chromium: list and search, the run form of every variable type, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui.conftest import ARTIFACTS
from tests.ui_support import Disabled, Hidden, Sensitive, Tour, TwoQueues, UiWorld, job_definition

TOUR = "11111111-1111-4111-8111-111111111111"
DISABLED = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def world(ui_world: UiWorld) -> UiWorld:
    for definition in (
        job_definition(Tour, uid=TOUR),
        job_definition(Disabled, uid=DISABLED, enabled=False),
        job_definition(Hidden),
        job_definition(Sensitive),
        job_definition(TwoQueues),
    ):
        ui_world.add_definition(definition)
    ui_world.user("runner", actions=["view", "run"])
    ui_world.user("viewer", actions=["view"])
    ui_world.user("root", superuser=True)
    return ui_world


def test_the_list_is_grouped_and_searched_as_one_types(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "viewer")
    expect(page.get_by_role("heading", level=2)).to_have_text(["Getting started", "Tools"])
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(4)  # the hidden one is not listed
    page.get_by_role("searchbox", name="Search jobs").fill("tour")
    expect(rows).to_have_count(1)  # htmx swapped the table in
    expect(rows.first).to_contain_text("Variables tour")
    expect(page).to_have_url(f"{ui_url}/jobs/?q=tour")
    page.get_by_role("searchbox", name="Search jobs").fill("")
    page.get_by_label("Show hidden jobs").check()
    expect(rows).to_have_count(5)
    expect(page.get_by_text("Hidden helper")).to_be_visible()


def test_the_list_works_without_javascript(
    browser: Any, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, "viewer")
        page.goto(f"{ui_url}/jobs/?q=disabled")
        expect(page.get_by_test_id("job-row")).to_have_count(1)
        page.get_by_role("link", name="Disabled one").click()
        expect(page.get_by_test_id("job-description")).to_have_text("Nobody enabled it.")
    finally:
        context.close()


def test_run_every_variable_type_with_a_field_error_first(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    page.set_viewport_size({"width": 1280, "height": 1600})
    sign_in(page, "runner")
    page.get_by_role("link", name="Variables tour").click()
    page.get_by_test_id("run-link").click()
    expect(page).to_have_url(f"{ui_url}/jobs/{TOUR}/run/")
    # Defaults: 0 is a value, the choice's default is selected, the network's default is there.
    expect(page.get_by_label("Port count")).to_have_value("0")
    expect(page.get_by_label("Role")).to_have_value("switch")
    expect(page.get_by_label("Network")).to_have_value("198.51.100.0/24")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-form.png"), full_page=True)

    page.get_by_label("Hostname").fill("Not Valid")
    page.get_by_label("Settings").fill("{broken")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("error-hostname")).to_have_text(
        "Invalid value. Must match regex: ^[a-z][a-z0-9-]*$"
    )
    expect(page.get_by_test_id("error-settings")).to_have_text("Enter valid JSON.")
    expect(page.get_by_label("Hostname")).to_have_attribute("aria-invalid", "true")
    assert world.runs() == []

    page.get_by_label("Hostname").fill("edge-1")
    page.get_by_label("Notes").fill("two\nlines")
    page.get_by_label("Port count").fill("0")
    page.get_by_label("Enabled", exact=True).check()
    page.get_by_label("Dryrun").check()
    page.get_by_label("Role").select_option("router")
    page.get_by_label("OSPF").check()
    page.get_by_label("Item", exact=True).fill("7")
    page.get_by_label("Items").fill("1, 2")
    page.get_by_label("Upload").set_input_files(
        files=[{"name": "hosts.txt", "mimeType": "text/plain", "buffer": b"edge-1\n"}]
    )
    page.get_by_label("Gateway").fill("192.0.2.1")
    page.get_by_label("Management ip").fill("192.0.2.10/24")
    page.get_by_label("Network").fill("10.1.0.0/16")
    page.get_by_label("Settings").fill('{"vlans": [10, 20]}')
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(rf"{re.escape(ui_url)}/job-results/[0-9a-f-]{{36}}/$"))
    (run,) = world.runs()
    data = run["spec"]["data"]
    assert data["hostname"] == "edge-1"
    assert data["notes"] == "two\nlines"
    assert (data["port_count"], data["enabled"], data["dryrun"]) == (0, True, True)
    assert (data["role"], data["features"]) == ("router", ["ospf"])
    assert (data["item"], data["items"]) == ("7", ["1", "2"])
    assert (data["gateway"], data["management_ip"], data["network"]) == (
        "192.0.2.1",
        "192.0.2.10/24",
        "10.1.0.0/16",
    )
    assert data["settings"] == {"vlans": [10, 20]}
    assert re.fullmatch(r"[0-9a-f-]{36}", data["upload"])
    assert page.url.rstrip("/").endswith(str(run["metadata"]["uid"]))


def test_the_queue_selector_shows_for_two_queues(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "runner")
    page.get_by_role("link", name="Two queues").click()
    page.get_by_test_id("run-link").click()
    page.get_by_label("Queue").select_option("gpu")
    page.get_by_label("Count").fill("3")
    page.get_by_test_id("run-button").click()
    page.wait_for_url(re.compile(r".*/job-results/.+/$"))
    (run,) = world.runs()
    assert (run["spec"]["queue"], run["spec"]["data"]) == ("gpu", {"count": 3})


def test_a_disabled_job_has_no_run_button_and_says_why(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "runner")
    page.get_by_role("link", name="Disabled one").click()
    expect(page.get_by_test_id("run-blocked")).to_have_text(
        "This job is disabled: an administrator must enable it before it can run."
    )
    expect(page.get_by_test_id("run-link")).to_have_count(0)
    page.goto(f"{ui_url}/jobs/{DISABLED}/run/")
    expect(page.get_by_test_id("run-button")).to_have_count(0)


def test_a_user_without_run_sees_no_run_button(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "viewer")
    page.get_by_role("link", name="Variables tour").click()
    expect(page.get_by_test_id("run-blocked")).to_have_text("You do not have permission to run this job.")
    expect(page.get_by_test_id("run-link")).to_have_count(0)
    page.goto(f"{ui_url}/jobs/{TOUR}/run/")
    expect(page.get_by_test_id("run-button")).to_have_count(0)
    expect(page.get_by_role("heading", name="Administration")).to_have_count(0)


def test_an_admin_enables_a_job_and_it_can_run(
    page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    sign_in(page, "root")
    page.get_by_role("link", name="Disabled one").click()
    page.get_by_test_id("toggle-enabled").click()
    expect(page.get_by_test_id("toggle-enabled")).to_have_text("Disable")
    expect(page.get_by_test_id("run-link")).to_be_visible()
    page.get_by_text("Metadata overrides").click()
    override = page.get_by_test_id("override-name")
    override.get_by_role("textbox").fill("Now enabled")
    override.get_by_label("override").check()
    page.get_by_role("button", name="Save overrides").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Now enabled")


def test_the_pages_fit_a_phone(page: Page, world: UiWorld, ui_url: str, sign_in: Callable[..., Any]) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "runner")
    page.goto(f"{ui_url}/jobs/{TOUR}/run/")
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 5)"
    )
    assert width <= 390, f"the run form scrolls sideways on a phone ({width}px): {wide}"
