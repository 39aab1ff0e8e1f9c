"""Result pages in a real Chromium: a finished result, live logs over SSE, a resumed stream, the list.

The store is a real Postgres (its notifications wake the streams); logs are written as a job pod writes
them, through the report endpoints with a run token, so the page shows them while the run goes on.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from jobplane_api.services import log_stream
from jobplane_api.settings import ApiSettings
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import JobResult, JobStatus
from tests.e2e.ui.conftest import ARTIFACTS
from tests.integration.api.test_log_stream import KEY, Pod
from tests.ui_support import NAMESPACE, Tour, UiWorld, job_definition

pytestmark = pytest.mark.postgres

TOUR = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def ui_world(tmp_path: Path, postgres_url: str) -> UiWorld:
    """The UI's world on Postgres rather than SQLite, with run tokens for the pods' reports."""
    world = UiWorld(tmp_path)
    world.engine = create_store_engine(postgres_url)
    ensure_schema(world.engine)
    world.sessions = make_sessionmaker(world.engine)
    world.settings = ApiSettings(kubernetes=False, namespace=NAMESPACE, run_token_key=KEY)
    world.add_definition(job_definition(Tour, uid=TOUR))
    world.user("ada", actions=["view", "run"])
    return world


def started(ui_url: str, world: UiWorld) -> Pod:
    pod = Pod(ui_url).started()
    with world.sessions.begin() as session:
        row = session.get(JobResult, uuid.UUID(pod.uid))
        assert row is not None
        row.job_model_id = uuid.UUID(TOUR)
        row.task_kwargs = {"hostname": "edge-1"}
    return pod


def rows(page: Page) -> Any:
    return page.get_by_test_id("log-row")


def test_live_logs_appear_while_the_run_goes_on_and_the_page_ends_with_it(
    page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    pod = started(ui_url, ui_world)
    pod.log("first line")
    sign_in(page, "ada")
    page.goto(f"{ui_url}/job-results/{pod.uid}/")
    expect(page.get_by_test_id("result-status")).to_have_text("STARTED")
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_test_id("cancel")).to_be_visible()
    # Written while the page is open: they appear before the run ends, without a reload.
    pod.log("second line", "third line")
    expect(rows(page)).to_have_count(3)
    expect(rows(page).nth(2)).to_contain_text("third line")
    expect(page.get_by_test_id("result-status")).to_have_text("STARTED")
    pod.log("careful", level="warning")
    pod.finish()
    # The end event brings the final summary: status, return value, Re-run instead of Cancel.
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS")
    expect(page.get_by_test_id("return-value")).to_contain_text('"ok": true')
    expect(page.get_by_test_id("rerun")).to_have_attribute("href", f"/jobs/{TOUR}/run/?rerun={pod.uid}")
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(rows(page)).to_have_count(4)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "result-page.png"), full_page=True)
    # Filters: the table and its (now finished) log narrow to one level, then to a search.
    page.get_by_test_id("filter-level").select_option("warning")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("careful")
    page.get_by_test_id("filter-level").select_option("")
    page.get_by_test_id("filter-search").fill("second")
    page.get_by_test_id("filter-search").press("Enter")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("second line")


def test_a_stream_that_drops_resumes_without_gaps_or_duplicates(
    page: Page,
    ui_world: UiWorld,
    ui_url: str,
    sign_in: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every stream closes (without end) right after its first read: the browser reconnects on its own,
    # sending the id of the last entry it got.
    monkeypatch.setattr(log_stream, "LIFETIME_SECONDS", 0.0)
    streams: list[Request] = []
    page.on("request", lambda request: streams.append(request) if "/logs/stream/" in request.url else None)
    pod = started(ui_url, ui_world)
    pod.log("line 0")
    sign_in(page, "ada")
    page.goto(f"{ui_url}/job-results/{pod.uid}/")
    expect(rows(page)).to_have_count(1)
    for number in range(1, 4):
        pod.log(f"line {number}")
        expect(rows(page)).to_have_count(number + 1)
    pod.finish()
    expect(page.get_by_test_id("result-status")).to_have_text("SUCCESS")
    texts = [text.split("line ")[-1] for text in rows(page).all_inner_texts()]
    assert texts == ["0", "1", "2", "3"]
    ids = page.eval_on_selector_all("[data-testid=log-row]", "rows => rows.map(row => row.id)")
    assert len(ids) == len(set(ids)) == 4
    resumed = [request.all_headers().get("last-event-id") for request in streams[1:]]
    assert len(streams) >= 2
    assert any(resumed), "no reconnect carried Last-Event-ID"


def test_the_results_list_filters_and_pages(
    page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    from datetime import UTC, datetime, timedelta

    day = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with ui_world.sessions.begin() as session:
        for number in range(60):
            session.add(
                JobResult(
                    id=uuid.uuid4(),
                    name="Variables tour",
                    job_class_path="ui_support.Tour",
                    job_model_id=uuid.UUID(TOUR),
                    user="ada",
                    status=JobStatus.FAILURE if number % 3 == 0 else JobStatus.SUCCESS,
                    date_created=day - timedelta(hours=number),
                )
            )
    sign_in(page, "ada")
    page.goto(f"{ui_url}/job-results/")
    expect(page.get_by_test_id("result-count")).to_contain_text("60 results, 1\u201350 shown")
    expect(page.get_by_test_id("result-row")).to_have_count(50)
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("result-row")).to_have_count(10)
    expect(page).to_have_url(re.compile(r"offset=50"))
    page.get_by_test_id("filter-status").select_option("FAILURE")
    expect(page.get_by_test_id("result-count")).to_contain_text("20 results")
    expect(page).to_have_url(re.compile(r"status=FAILURE"))
    page.get_by_test_id("filter-from").fill("2026-11-30")
    expect(page.get_by_test_id("result-count")).to_contain_text("5 results")
    page.get_by_test_id("result-row").first.get_by_role("link").click()
    expect(page.get_by_test_id("result-status")).to_have_text("FAILURE")
