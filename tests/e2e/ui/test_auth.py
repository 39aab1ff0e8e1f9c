"""Sign-in and sign-out in a real Chromium, and a CSRF-less POST refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.ui_support import UiWorld


def test_sign_in_and_sign_out(
    page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    ui_world.user("alice", actions=["view"])
    page.goto(f"{ui_url}/jobs/")
    expect(page).to_have_url(f"{ui_url}/login/?next=/jobs/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username/password.")
    sign_in(page, "alice")
    expect(page.get_by_test_id("user-menu")).to_have_text("alice")
    page.get_by_test_id("user-menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{ui_url}/login/")
    page.goto(f"{ui_url}/jobs/")
    expect(page).to_have_url(f"{ui_url}/login/?next=/jobs/")


def test_a_post_without_the_csrf_token_is_refused(
    page: Page, ui_world: UiWorld, ui_url: str, sign_in: Callable[..., Any]
) -> None:
    ui_world.user("alice", actions=["view"])
    sign_in(page, "alice")
    # The browser's own cookies go along (same origin), but no token: as a forged form would post.
    answer = page.request.post(f"{ui_url}/logout/", form={"next": "/"}, max_redirects=0)
    assert answer.status == 403
    page.goto(f"{ui_url}/jobs/")
    expect(page.get_by_test_id("user-menu")).to_have_text("alice")
