"""The pod contract: the EnvVars the operator writes are what the runner reads, and the data database's URL
is only ever read from its file, with errors that name the Secret and never the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobplane.settings import Settings
from jobplane_crds.envcontract import ContractError, GitFetchLimits
from jobplane_crds.podcontract import (
    DATA_DATABASE_FILE,
    DATA_DATABASE_MOUNT,
    DATA_DATABASE_UNAVAILABLE,
    PodContract,
)

URL = "postgresql+psycopg://jobs:pa55-w0rd@db.example:5432/inventory"


def env_of(contract: PodContract) -> dict[str, str]:
    return {item["name"]: item["value"] for item in contract.env()}


def test_the_operator_writes_the_mounted_file_and_the_secret_it_comes_from_never_the_url() -> None:
    contract = PodContract.for_data_database("jobplane-data-database", "url")
    assert contract.env() == [
        {"name": "JOBPLANE_DATA_DATABASE_URL_FILE", "value": f"{DATA_DATABASE_MOUNT}/{DATA_DATABASE_FILE}"},
        {"name": "JOBPLANE_DATA_DATABASE_SECRET", "value": "jobplane-data-database/url"},
    ]


def test_what_the_operator_writes_the_runner_reads_back() -> None:
    written = PodContract.for_data_database("data-db", "DATABASE_URL")
    assert PodContract.read(env_of(written)) == written
    # The process environment is the default source (pydantic-settings), with the same names.
    assert PodContract.read({}) == PodContract()


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPLANE_DATA_DATABASE_URL_FILE", "/run/url")
    monkeypatch.setenv("JOBPLANE_DATA_DATABASE_SECRET", "")
    assert PodContract.read() == PodContract(data_database_url_file=Path("/run/url"))


def test_an_unknown_field_has_no_variable() -> None:
    with pytest.raises(KeyError):
        PodContract.env_name("data_database_url")


def test_a_bad_value_is_named_by_its_variable_not_quoted() -> None:
    with pytest.raises(ContractError) as caught:
        PodContract.read({"JOBPLANE_DATA_DATABASE_SECRET": URL})
    assert caught.value.reason == "InvalidInput"
    assert "JOBPLANE_DATA_DATABASE_SECRET" in str(caught.value)
    assert "pa55-w0rd" not in str(caught.value)


def test_a_pod_given_no_data_database_has_none() -> None:
    assert PodContract.read({}).data_database_url() is None


def test_the_url_comes_from_its_file_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text(URL + "\n", encoding="utf-8")
    contract = PodContract(data_database_url_file=path, data_database_secret="data-db/url")
    assert contract.data_database_url() == URL


def test_a_missing_file_names_the_secret_and_its_key(tmp_path: Path) -> None:
    contract = PodContract(data_database_url_file=tmp_path / "url", data_database_secret="data-db/DB_URL")
    with pytest.raises(ContractError) as caught:
        contract.data_database_url()
    assert caught.value.reason == DATA_DATABASE_UNAVAILABLE
    message = str(caught.value)
    assert "No such file or directory" in message
    assert "Secret 'data-db' (key 'DB_URL') must exist in the run's namespace" in message


@pytest.mark.parametrize("content", [b"", b"  \n", b"\xff\xfe"], ids=["empty", "blank", "not-utf8"])
def test_an_empty_or_unreadable_file_is_unavailable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "url"
    path.write_bytes(content)
    with pytest.raises(ContractError) as caught:
        PodContract(data_database_url_file=path).data_database_url()
    assert caught.value.reason == DATA_DATABASE_UNAVAILABLE
    assert str(path) in str(caught.value)


# --- the whole contract: every variable a run pod is given ---------------------------------------------


def full_contract() -> PodContract:
    """Every field the operator writes for a run of a repository job that reports to the API."""
    return PodContract(
        run_name="nightly-audit",
        run_uid="6f1f6c2e-3f0a-4d3e-9d7e-1b2c3d4e5f60",
        run_namespace="ops",
        run_class_path="netops.jobs.audit.Audit",
        run_queue="network",
        run_soft_time_limit=1234567.25,
        run_dryrun=True,
        run_data='{"site": "ams1"}',
        api_url="http://jobplane-api.jobplane.svc:8000",
        run_token_file=Path("/var/run/jobplane/run-token/token"),
        data_database_url_file=Path(DATA_DATABASE_MOUNT) / DATA_DATABASE_FILE,
        data_database_secret="data-db/url",
        repo_url="https://git.example.com/netops.git",
        repo_commit="c" * 40,
        repo_slug="netops",
        repo_credentials_dir=Path("/var/run/jobplane/git-credentials"),
    )


def test_every_field_the_operator_renders_the_runner_parses_back_equal() -> None:
    written = full_contract()
    env = env_of(written)
    assert PodContract.read(env) == written
    # One variable per field written, each under its field's name, and nothing inline that is a secret.
    assert set(env) == {PodContract.env_name(field) for field in written.model_fields_set}
    assert env["JOBPLANE_RUN_DRYRUN"] == "true"
    assert env["JOBPLANE_RUN_SOFT_TIME_LIMIT"] == "1234567.25"  # every digit: "%g" would say 1.23457e+06
    # The names the runner has always read (pods started by an older operator keep working).
    assert {"JOBPLANE_RUN_CLASS_PATH", "JOBPLANE_RUN_DATA", "JOBPLANE_API_URL", "JOBPLANE_REPO_URL"} <= set(
        env
    )


def test_the_inputs_from_a_file_round_trip_too() -> None:
    written = PodContract(run_data_file=Path("/var/run/jobplane/inputs/data.json"), run_dryrun=False)
    assert env_of(written) == {
        "JOBPLANE_RUN_DRYRUN": "false",
        "JOBPLANE_RUN_DATA_FILE": "/var/run/jobplane/inputs/data.json",
    }
    assert PodContract.read(env_of(written)) == written


def test_built_by_keyword_it_never_takes_the_operators_own_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The operator's process may have JOBPLANE_* variables of its own: none may leak into a job pod.
    monkeypatch.setenv("JOBPLANE_RUN_USER", "the-operator")
    monkeypatch.setenv("JOBPLANE_API_URL", "http://elsewhere")
    assert env_of(PodContract(run_name="r")) == {"JOBPLANE_RUN_NAME": "r"}
    # The runner, by default, reads the process environment.
    assert PodContract.read().run_user == "the-operator"


def test_a_repository_url_without_its_commit_names_the_missing_variable() -> None:
    with pytest.raises(ContractError) as caught:
        PodContract.read(
            {"JOBPLANE_REPO_URL": "https://git.example.com/netops.git", "JOBPLANE_REPO_SLUG": "n"}
        )
    assert caught.value.reason == "InvalidInput"
    assert str(caught.value) == (
        "JOBPLANE_REPO_COMMIT is missing: a repository job needs JOBPLANE_REPO_URL, JOBPLANE_REPO_COMMIT and "
        "JOBPLANE_REPO_SLUG"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JOBPLANE_RUN_SOFT_TIME_LIMIT", "soon", "JOBPLANE_RUN_SOFT_TIME_LIMIT must be a number of seconds"),
        ("JOBPLANE_RUN_SOFT_TIME_LIMIT", "-1", "JOBPLANE_RUN_SOFT_TIME_LIMIT must be above 0 and finite"),
        ("JOBPLANE_RUN_DRYRUN", "perhaps", "JOBPLANE_RUN_DRYRUN must be true or false"),
        (
            "JOBPLANE_DATA_DATABASE_SECRET",
            "no-key",
            "JOBPLANE_DATA_DATABASE_SECRET must be <secret name>/<key>",
        ),
    ],
)
def test_a_malformed_variable_is_named_with_what_it_must_be(variable: str, value: str, message: str) -> None:
    with pytest.raises(ContractError) as caught:
        PodContract.read({variable: value})
    assert (caught.value.reason, str(caught.value)) == ("InvalidInput", message)


def test_inline_data_that_is_not_json_is_named_by_position_never_quoted() -> None:
    with pytest.raises(ContractError) as caught:
        PodContract.read({"JOBPLANE_RUN_DATA": '{"password": "' + "hunter2"})
    assert str(caught.value).startswith("JOBPLANE_RUN_DATA is not valid JSON: Unterminated string")
    assert "(line 1, column 14)" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ContractError) as caught:
        PodContract.read({"JOBPLANE_RUN_DRYRUN": "perhaps", "JOBPLANE_RUN_SOFT_TIME_LIMIT": "nan"})
    assert str(caught.value) == (
        "JOBPLANE_RUN_SOFT_TIME_LIMIT must be above 0 and finite; JOBPLANE_RUN_DRYRUN must be true or false"
    )


def test_inputs_inline_and_from_a_file_together_are_refused() -> None:
    with pytest.raises(ContractError, match="set only one of JOBPLANE_RUN_DATA_FILE and JOBPLANE_RUN_DATA"):
        PodContract.read({"JOBPLANE_RUN_DATA": "{}", "JOBPLANE_RUN_DATA_FILE": "/in/data.json"})


# --- the bounds of a fetch of job code: written by the operator, read by every jobplane process ----------


def test_the_git_limits_the_operator_writes_are_what_the_pods_settings_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = GitFetchLimits(git_timeout=200, git_max_bytes=2048)
    env = env_of(written)
    assert env == {"JOBPLANE_GIT_TIMEOUT": "200", "JOBPLANE_GIT_MAX_BYTES": "2048"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # what sync-repo and run-pod read, with pydantic-settings, in the pod
    assert (settings.git_timeout, settings.git_max_bytes) == (written.git_timeout, written.git_max_bytes)


def test_only_the_git_limits_the_operator_set_are_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPLANE_GIT_TIMEOUT", "7")  # the operator's own setting: not the pod's
    assert env_of(GitFetchLimits(git_max_bytes=4096)) == {"JOBPLANE_GIT_MAX_BYTES": "4096"}
    assert Settings().git_timeout == 7  # while the settings do read the environment


def test_a_malformed_git_limit_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPLANE_GIT_MAX_BYTES", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [error["loc"] for error in caught.value.errors()] == [("git_max_bytes",)]
