"""run-pod's pure parts: reading inputs, the termination message, the stdout reporter, hiding values."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobplane.joblog import LogEntry
from jobplane.settings import Settings
from jobplane_runtime.pod import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    TERMINATION_MESSAGE_LIMIT,
    TRUNCATED,
    PodInputError,
    StdoutReporter,
    build_summary,
    data_database_url,
    load_data,
    read_contract,
    read_pod_run,
    scrub,
)

SECRET = "s3cr3t-Pa55word"


# --- data loading ------------------------------------------------------------------------------


def test_no_data_means_an_empty_object() -> None:
    assert load_data(read_contract({})) == ({}, False)
    assert load_data(read_contract({"JOBPLANE_RUN_DATA": "  "})) == ({}, False)


def test_data_from_env() -> None:
    assert load_data(read_contract({"JOBPLANE_RUN_DATA": '{"who": "Ann"}'})) == ({"who": "Ann"}, False)


def test_data_from_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"password": SECRET}), encoding="utf-8")
    assert load_data(read_contract({"JOBPLANE_RUN_DATA_FILE": str(path)})) == ({"password": SECRET}, True)


def test_file_and_env_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(PodInputError, match="only one of"):
        load_data(read_contract({"JOBPLANE_RUN_DATA_FILE": str(path), "JOBPLANE_RUN_DATA": "{}"}))
    # A blank env value next to the file is no conflict (a template may always set the variable).
    assert load_data(read_contract({"JOBPLANE_RUN_DATA_FILE": str(path), "JOBPLANE_RUN_DATA": ""})) == (
        {},
        True,
    )


def test_missing_file_is_named_without_content(tmp_path: Path) -> None:
    with pytest.raises(PodInputError, match=r"cannot read .*missing\.json: No such file"):
        load_data(read_contract({"JOBPLANE_RUN_DATA_FILE": str(tmp_path / "missing.json")}))


@pytest.mark.parametrize("key", ["JOBPLANE_RUN_DATA", "JOBPLANE_RUN_DATA_FILE"])
def test_invalid_json_error_never_quotes_the_data(tmp_path: Path, key: str) -> None:
    text = '{"password": "' + SECRET + '"'  # unterminated object
    if key == "JOBPLANE_RUN_DATA_FILE":
        path = tmp_path / "data.json"
        path.write_text(text, encoding="utf-8")
        env = {key: str(path)}
    else:
        env = {key: text}
    with pytest.raises(PodInputError) as caught:
        load_data(read_contract(env))
    assert "not valid JSON" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.kind == "InvalidInput"


def test_class_path_argument_beats_env() -> None:
    run = read_pod_run(
        "a.B", read_contract({"JOBPLANE_RUN_CLASS_PATH": "c.D", "JOBPLANE_TERMINATION_MESSAGE_PATH": ""})
    )
    assert run.class_path == "a.B"
    assert read_pod_run(None, read_contract({"JOBPLANE_RUN_CLASS_PATH": "c.D"})).class_path == "c.D"


def test_missing_class_path_is_refused() -> None:
    with pytest.raises(PodInputError, match="no job class path"):
        read_pod_run(None, read_contract({}))


def test_identity_limits_and_flags_from_env(tmp_path: Path) -> None:
    run = read_pod_run(
        "a.B",
        read_contract(
            {
                "JOBPLANE_RUN_NAME": "nightly-1",
                "JOBPLANE_RUN_UID": "0b7c5d0e-3d6c-4d8e-9d34-7d1b8c3f5a11",
                "JOBPLANE_RUN_USER": "ann",
                "JOBPLANE_RUN_SOFT_TIME_LIMIT": "2.5",
                "JOBPLANE_RUN_DRYRUN": "True",
                "JOBPLANE_TERMINATION_MESSAGE_PATH": str(tmp_path / "msg"),
            }
        ),
    )
    assert (run.run_name, run.run_uid, run.user) == (
        "nightly-1",
        "0b7c5d0e-3d6c-4d8e-9d34-7d1b8c3f5a11",
        "ann",
    )
    assert run.soft_time_limit == 2.5
    assert run.dryrun is True
    assert run.termination_message_path == tmp_path / "msg"


def test_defaults_without_env() -> None:
    run = read_pod_run("a.B", read_contract({}))
    assert run.soft_time_limit is None
    assert run.dryrun is False
    assert run.run_name is None
    assert len(run.run_uid) == 36  # a fresh UUID: job_result_id must exist even for a run started by hand
    # Off Kubernetes the default path does not exist and is never created.
    expected = DEFAULT_TERMINATION_MESSAGE_PATH if DEFAULT_TERMINATION_MESSAGE_PATH.exists() else None
    assert run.termination_message_path == expected


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_bad_soft_limit_is_refused(value: str) -> None:
    with pytest.raises(PodInputError, match="JOBPLANE_RUN_SOFT_TIME_LIMIT"):
        read_pod_run("a.B", read_contract({"JOBPLANE_RUN_SOFT_TIME_LIMIT": value}))


def test_bad_dryrun_flag_is_refused() -> None:
    with pytest.raises(PodInputError, match="JOBPLANE_RUN_DRYRUN must be true or false"):
        read_pod_run("a.B", read_contract({"JOBPLANE_RUN_DRYRUN": "maybe"}))


# --- the termination message -------------------------------------------------------------------


def test_summary_of_a_small_result_is_complete() -> None:
    message = json.loads(build_summary("SUCCESS", {"greeting": "Hello, Ann!"}, None))
    assert message == {"status": "SUCCESS", "result": '{"greeting": "Hello, Ann!"}', "error": None}


def test_summary_of_a_failure_keeps_the_error() -> None:
    message = json.loads(build_summary("FAILURE", None, "RuntimeError: boom"))
    assert message == {"status": "FAILURE", "result": None, "error": "RuntimeError: boom"}


def test_summary_carries_a_reason_only_when_the_pod_gives_one() -> None:
    message = json.loads(build_summary("FAILURE", None, "x", reason="DataDatabaseUnavailable"))
    assert message == {"status": "FAILURE", "result": None, "error": "x", "reason": "DataDatabaseUnavailable"}
    text = build_summary("FAILURE", "r" * 100_000, "e" * 100_000, reason="DataDatabaseUnavailable")
    assert len(text) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(text)["reason"] == "DataDatabaseUnavailable"


# --- the data database ---------------------------------------------------------------------------


def test_the_data_database_comes_from_the_contracts_file_else_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text("sqlite:///data.db\n", encoding="utf-8")
    contract = read_contract({"JOBPLANE_DATA_DATABASE_URL_FILE": str(path)})
    assert data_database_url(contract, Settings()) == "sqlite:///data.db"
    assert (
        data_database_url(read_contract({}), Settings(data_database_url="sqlite:///by-hand.db"))
        == "sqlite:///by-hand.db"
    )
    assert data_database_url(read_contract({}), Settings()) is None
    with pytest.raises(PodInputError, match="set only one of") as both:
        data_database_url(contract, Settings(data_database_url="sqlite:///by-hand.db"))
    assert both.value.kind == "InvalidInput"


def test_a_data_database_file_that_is_not_there_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(PodInputError) as caught:
        data_database_url(
            read_contract({"JOBPLANE_DATA_DATABASE_URL_FILE": str(tmp_path / "url")}), Settings()
        )
    assert caught.value.kind == "DataDatabaseUnavailable"


@pytest.mark.parametrize(
    "result",
    [
        {"rows": list(range(100_000))},
        "x" * 1_000_000,
        '"' * 50_000,  # every quote doubles when escaped
        "\x01" * 50_000,  # every control character becomes six bytes
        "é€😀" * 20_000,  # non-ASCII is escaped, so bytes and characters agree
    ],
    ids=["big-list", "long-string", "quotes", "control", "non-ascii"],
)
def test_summary_of_a_huge_result_stays_under_the_kubelet_limit(result: object) -> None:
    text = build_summary("FAILURE", result, "ValueError: " + "y" * 100_000)
    assert len(text.encode("utf-8")) <= TERMINATION_MESSAGE_LIMIT
    message = json.loads(text)
    assert message["status"] == "FAILURE"
    assert message["error"].startswith("ValueError: yyy")
    assert message["error"].endswith(TRUNCATED)
    assert message["result"].endswith(TRUNCATED) or message["result"] == ""


def test_summary_of_a_big_list_keeps_an_excerpt() -> None:
    message = json.loads(build_summary("SUCCESS", {"rows": list(range(100_000))}, None))
    assert message["result"].startswith('{"rows": [0, 1, 2')
    assert message["result"].endswith(TRUNCATED)
    assert 1000 < len(message["result"]) <= 2048


def test_summary_of_a_value_json_cannot_encode_uses_its_text() -> None:
    message = json.loads(build_summary("SUCCESS", {"when": datetime(2026, 1, 2, tzinfo=UTC)}, None))
    assert message["result"] == '{"when": "2026-01-02 00:00:00+00:00"}'


# --- the stdout reporter -------------------------------------------------------------------------


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_reporter_prints_one_json_line_per_event() -> None:
    out = io.StringIO()
    reporter = StdoutReporter(out, max_file_size=100, run={"job": "a.B", "run": "r1", "run_uid": "u1"})
    reporter.started()
    created = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    reporter.log(LogEntry(level="info", message="multi\nline", grouping="run", created=created))
    reporter.log(
        LogEntry(level="failure", message="bad", grouping="check", log_object="ams1", absolute_url="/d/1")
    )
    file_id = reporter.create_file("report.csv", b"a,b\n")
    reporter.finished("FAILURE", {"n": 1}, "Traceback ...")
    events = _lines(out)
    assert events[0] == {"type": "started", "job": "a.B", "run": "r1", "run_uid": "u1"}
    assert events[1] == {
        "type": "log",
        "level": "info",
        "grouping": "run",
        "message": "multi\nline",
        "object": None,
        "url": None,
        "time": "2026-11-25T12:00:00+00:00",
    }
    assert events[2]["object"] == "ams1"
    assert events[2]["url"] == "/d/1"
    assert events[3] == {"type": "file", "id": file_id, "name": "report.csv", "size": 4}
    assert events[4] == {
        "type": "result",
        "status": "FAILURE",
        "result": {"n": 1},
        "traceback": "Traceback ...",
    }
    assert reporter.files[file_id] == ("report.csv", b"a,b\n")
    assert reporter.last_failure == "bad"


def test_reporter_refuses_a_file_above_the_cap() -> None:
    reporter = StdoutReporter(io.StringIO(), max_file_size=3)
    with pytest.raises(ValueError, match="above the limit of 3 bytes"):
        reporter.create_file("big.txt", b"1234")


# --- hiding sensitive values ---------------------------------------------------------------------


def test_scrub_hides_every_form_of_a_value() -> None:
    data = {"password": SECRET, "choices": ["alpha-1"], "n": 12345, "flag": True, "tiny": "a"}
    text = f"{SECRET!r} is not one; \"{SECRET}\"; {SECRET}; 'alpha-1'; 12345 as a number; a flag"
    scrubbed = scrub(text, data)
    assert SECRET not in scrubbed
    assert "alpha-1" not in scrubbed
    assert "12345" not in scrubbed
    assert "a flag" in scrubbed  # short values and booleans would hit ordinary words
