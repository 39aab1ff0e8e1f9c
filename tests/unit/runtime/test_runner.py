"""The runner's lifecycle: hook order, fail(), exceptions, the soft time limit, logging, files, results."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest

from jobplane import IntegerVar, Job, SoftTimeLimitExceeded, StringVar
from jobplane.job import TimeLimits
from jobplane_runtime.runner import execute_job
from tests.builders import RecordingReporter

LIMITS = TimeLimits(soft=30, hard=60)


def run(job_class: type[Job], data: dict[str, Any] | None = None, **kwargs: Any) -> RecordingReporter:
    reporter = RecordingReporter()
    execute_job(
        job_class,
        data or {},
        reporter=reporter,
        job_result_id="11111111-1111-1111-1111-111111111111",
        limits=kwargs.pop("limits", LIMITS),
        **kwargs,
    )
    return reporter


class Recorder(Job):
    """Records its hooks in order; behaviour chosen by the ``mode`` variable."""

    mode = StringVar(default="ok")
    calls: list[tuple[Any, ...]] = []

    def before_start(self, task_id: str, args: Any, kwargs: dict[str, Any]) -> None:
        self.calls.append(("before_start", kwargs["mode"]))
        if kwargs["mode"] == "fail-before":
            self.fail("refused in before_start")
        if kwargs["mode"] == "raise-before":
            raise RuntimeError("broken before_start")

    def run(self, *, mode: str) -> Any:
        self.calls.append(("run",))
        if mode == "raise":
            raise ValueError("boom")
        if mode == "fail":
            self.fail("Device %s is wrong", "leaf-1")
            return {"partial": True}
        if mode == "unjsonable":
            return object()
        return {"mode": mode}

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self.calls.append(("on_success", retval))

    def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self.calls.append(("on_failure", type(exc).__name__ if einfo else exc, einfo is not None))

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self.calls.append(("after_return", status))


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    Recorder.calls = []


def test_success_lifecycle_order_and_result() -> None:
    reporter = run(Recorder, {"mode": "ok"})
    assert Recorder.calls == [
        ("before_start", "ok"),
        ("run",),
        ("on_success", {"mode": "ok"}),
        ("after_return", "SUCCESS"),
    ]
    assert reporter.outcome == ("SUCCESS", {"mode": "ok"}, None)
    assert reporter.events == ["started", "finished"]
    assert reporter.messages("info")[0] == "Running job"
    assert reporter.messages("info")[-1] == "Job completed"


def test_fail_marks_failure_without_raising_and_keeps_return_value() -> None:
    reporter = run(Recorder, {"mode": "fail"})
    assert Recorder.calls == [
        ("before_start", "fail"),
        ("run",),
        ("on_failure", {"partial": True}, False),
        ("after_return", "FAILURE"),
    ]
    assert reporter.outcome == ("FAILURE", {"partial": True}, None)
    failure = [e for e in reporter.entries if e.level == "failure"]
    assert [(e.message, e.grouping) for e in failure] == [("Device leaf-1 is wrong", "run")]


def test_fail_in_before_start_skips_run() -> None:
    reporter = run(Recorder, {"mode": "fail-before"})
    assert ("run",) not in Recorder.calls
    assert reporter.outcome is not None
    assert reporter.outcome[0] == "FAILURE"


def test_exception_in_run_fails_with_traceback_and_exc_result() -> None:
    reporter = run(Recorder, {"mode": "raise"})
    assert Recorder.calls[-2:] == [("on_failure", "ValueError", True), ("after_return", "FAILURE")]
    assert reporter.outcome is not None
    status, result, trace = reporter.outcome
    assert status == "FAILURE"
    assert result == {"exc_type": "ValueError", "exc_message": "boom"}
    assert trace is not None
    assert "ValueError: boom" in trace
    assert "ValueError: boom" in reporter.messages("error")


def test_exception_in_before_start_skips_run_and_fails() -> None:
    reporter = run(Recorder, {"mode": "raise-before"})
    assert ("run",) not in Recorder.calls
    assert reporter.outcome is not None
    assert reporter.outcome[1] == {"exc_type": "RuntimeError", "exc_message": "broken before_start"}


def test_return_value_that_is_not_json_fails_clearly() -> None:
    reporter = run(Recorder, {"mode": "unjsonable"})
    assert reporter.outcome is not None
    assert reporter.outcome[0] == "FAILURE"
    assert any("cannot be stored as JSON" in m for m in reporter.messages("error"))


def test_rich_return_values_are_stored_as_json() -> None:
    class Rich(Job):
        def run(self) -> Any:
            return {"when": dt.date(2026, 1, 2), "id": uuid.UUID(int=1), "tags": ("a",)}

    reporter = run(Rich)
    assert reporter.outcome is not None
    assert reporter.outcome[1] == {
        "when": "2026-01-02",
        "id": "00000000-0000-0000-0000-000000000001",
        "tags": ["a"],
    }


class Sleeper(Job):
    cleaned_up: list[str] = []

    def run(self) -> None:
        try:
            time.sleep(5)
        except SoftTimeLimitExceeded:
            self.cleaned_up.append("run")
            raise

    def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self.cleaned_up.append(f"on_failure:{type(exc).__name__}")

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self.cleaned_up.append(f"after_return:{status}")


def test_soft_time_limit_raises_inside_the_job_and_hooks_still_run() -> None:
    Sleeper.cleaned_up = []
    reporter = run(Sleeper, limits=TimeLimits(soft=0.3, hard=10))
    assert Sleeper.cleaned_up == ["run", "on_failure:SoftTimeLimitExceeded", "after_return:FAILURE"]
    assert reporter.outcome is not None
    assert reporter.outcome[1]["exc_type"] == "SoftTimeLimitExceeded"
    assert any("Soft time limit of 0.3 s exceeded" in m for m in reporter.messages("failure"))


def test_warning_logged_when_hard_limit_not_above_soft() -> None:
    reporter = run(Recorder, limits=TimeLimits(soft=30, hard=30))
    assert any("not above the soft time limit" in m for m in reporter.messages("warning"))


class Chatty(Job):
    count = IntegerVar(min_value=0)

    class Meta:
        has_sensitive_variables = False

    def run(self, *, count: int) -> None:
        self.logger.debug("d")
        self.logger.info("i %d", count)
        self.logger.success("s")
        self.logger.warning("w")
        self.logger.failure("f")
        self.logger.error("e")
        self.logger.critical("c")
        self.helper()
        self.logger.info("custom", extra={"grouping": "Inventory", "object": Thing()})
        self.logger.info("console only", extra={"skip_db_logging": True})
        self.logger.info("unsaved", extra={"object": Thing(url=None)})

    def helper(self) -> None:
        self.logger.info("from helper")


class Thing:
    def __init__(self, url: str | None = "/devices/1/") -> None:
        self.url = url

    def __str__(self) -> str:
        return "leaf-01"

    def get_absolute_url(self) -> str | None:
        return self.url


def test_logger_levels_grouping_and_object() -> None:
    echoed: list[str] = []
    reporter = run(Chatty, {"count": 0}, echo=lambda entry: echoed.append(entry.message))
    run_entries = [e for e in reporter.entries if e.grouping == "run" and e.log_object is None]
    assert [(e.level, e.message) for e in run_entries] == [
        ("debug", "d"),
        ("info", "i 0"),
        ("success", "s"),
        ("warning", "w"),
        ("failure", "f"),
        ("error", "e"),
        ("critical", "c"),
    ]
    helper = next(e for e in reporter.entries if e.message == "from helper")
    assert helper.grouping == "helper"
    custom = next(e for e in reporter.entries if e.message == "custom")
    assert (custom.grouping, custom.log_object, custom.absolute_url) == (
        "Inventory",
        "leaf-01",
        "/devices/1/",
    )
    assert "console only" not in reporter.messages()
    assert "console only" in echoed


class FileMaker(Job):
    size = IntegerVar(min_value=0)

    def run(self, *, size: int) -> str:
        return self.create_file("report.txt", "x" * size)


def test_create_file_reports_the_file_and_respects_the_cap() -> None:
    reporter = run(FileMaker, {"size": 10})
    assert reporter.outcome is not None
    assert reporter.outcome[0] == "SUCCESS"
    assert list(reporter.files.values()) == [("report.txt", b"x" * 10)]
    too_big = run(FileMaker, {"size": 4096})
    assert too_big.outcome is not None
    assert too_big.outcome[0] == "FAILURE"
    assert too_big.files == {}


def test_create_file_refuses_paths() -> None:
    class Sneaky(Job):
        def run(self) -> None:
            self.create_file("../etc/passwd", "x")

    reporter = run(Sneaky)
    assert reporter.outcome is not None
    assert "Invalid file name" in reporter.outcome[1]["exc_message"]


def test_helpers_outside_a_run_say_so() -> None:
    with pytest.raises(RuntimeError, match="only available while the job runs"):
        FileMaker().create_file("a.txt", "x")
