"""The pod contract: the EnvVars the operator writes are what the runner reads, and the data database's URL
is only ever read from its file, with errors that name the Secret and never the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobplane_crds.podcontract import (
    DATA_DATABASE_FILE,
    DATA_DATABASE_MOUNT,
    DATA_DATABASE_UNAVAILABLE,
    PodContract,
    PodContractError,
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
    with pytest.raises(PodContractError) as caught:
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
    with pytest.raises(PodContractError) as caught:
        contract.data_database_url()
    assert caught.value.reason == DATA_DATABASE_UNAVAILABLE
    message = str(caught.value)
    assert "No such file or directory" in message
    assert "Secret 'data-db' (key 'DB_URL') must exist in the run's namespace" in message


@pytest.mark.parametrize("content", [b"", b"  \n", b"\xff\xfe"], ids=["empty", "blank", "not-utf8"])
def test_an_empty_or_unreadable_file_is_unavailable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "url"
    path.write_bytes(content)
    with pytest.raises(PodContractError) as caught:
        PodContract(data_database_url_file=path).data_database_url()
    assert caught.value.reason == DATA_DATABASE_UNAVAILABLE
    assert str(path) in str(caught.value)
