"""Browser tests of the web UI: Playwright (pytest-playwright's ``page``) driving Debian's Chromium.

``browser_type_launch_args`` points Playwright at /usr/lib/chromium/chromium (scripts/setup-host.sh
installs the package; Playwright's own browser download is not used). ``ui_world`` is the app on a SQLite
store and an in-memory apiserver (tests/ui_support.py), ``ui_url`` serves it with uvicorn on 127.0.0.1;
``sign_in`` signs a user in through the form. Screenshots go to ``$JOBPLANE_UI_ARTIFACTS`` (default
/tmp/jobplane-ui-artifacts) and are not committed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.conftest import serve_app
from tests.ui_support import PASSWORD, UiWorld

CHROMIUM = Path(os.environ.get("JOBPLANE_CHROMIUM", "/usr/lib/chromium/chromium"))
ARTIFACTS = Path(os.environ.get("JOBPLANE_UI_ARTIFACTS", "/tmp/jobplane-ui-artifacts"))

__all__ = ["ARTIFACTS", "browser_type_launch_args", "sign_in", "ui_url", "ui_world"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-host.sh (Debian's chromium package)")
    # --no-sandbox: the tests run as root, where Chromium's setuid sandbox refuses to start.
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": ["--no-sandbox"]}


@pytest.fixture
def ui_world(tmp_path: Path) -> UiWorld:
    """An empty world; tests add job definitions and users before opening pages."""
    return UiWorld(tmp_path)


@pytest.fixture
def ui_url(ui_world: UiWorld) -> Iterator[str]:
    with serve_app(ui_world.app()) as url:
        yield url


@pytest.fixture
def sign_in(ui_url: str) -> Callable[..., None]:
    """Sign ``page`` in as ``username`` through the sign-in form, and wait for the jobs list."""

    def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
        page.goto(f"{ui_url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{ui_url}/jobs/")

    return sign_in
