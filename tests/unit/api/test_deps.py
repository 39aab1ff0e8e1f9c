"""The request dependencies that only read the request or the app's state run on the event loop."""

from __future__ import annotations

import inspect

import pytest

from jobplane_api import deps


@pytest.mark.parametrize("dependency", [deps.get_settings, deps.get_kube, deps.get_depth])
def test_request_only_dependencies_are_coroutines(dependency: object) -> None:
    # FastAPI runs a plain-function dependency in its thread pool: a hop to a worker thread and back per
    # request (bench/README.md, the run endpoint's third pass: 1.3-1.8 ms of the machine's CPU a run).
    assert inspect.iscoroutinefunction(dependency)


@pytest.mark.parametrize("dependency", [deps.get_session, deps.get_principal])
def test_dependencies_that_wait_on_the_database_stay_in_the_thread_pool(dependency: object) -> None:
    # They block on SQL: on the event loop they would stall every other request.
    assert not inspect.iscoroutinefunction(dependency)
    assert not inspect.isasyncgenfunction(dependency)
