"""The CLI names the extra to install when a command's dependency is missing, and nothing else; sync-repo
takes its sync contract from the environment, as its help says."""

from __future__ import annotations

import re
import tomllib

import pytest

from jobplane.cli import COMMAND_EXTRAS, EXIT_UNAVAILABLE, OPTIONAL_PACKAGES, SYNC_REPO_VARIABLES, main
from jobplane_crds.gitcontract import SyncContract
from tests.conftest import REPO_ROOT


def _missing(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"No module named {name!r}", name=name)


def test_every_named_extra_exists_in_pyproject() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(COMMAND_EXTRAS.values()) | set(OPTIONAL_PACKAGES.values()) <= set(extras)


def test_a_server_command_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def operator_without_kopf(*_: object) -> int:
        raise _missing("kopf.structs")

    monkeypatch.setattr("jobplane.cli._operator", operator_without_kopf)
    assert main(["operator"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "'jobplane operator' needs the Python package 'kopf'" in err
    assert "pip install 'jobplane[operator]'" in err


def test_a_missing_postgres_driver_names_the_postgres_extra_whatever_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def runjob_on_postgres(*_: object) -> int:
        raise _missing("psycopg")

    monkeypatch.setattr("jobplane.cli._runjob", runjob_on_postgres)
    assert main(["runjob", "--local", "hello_world.HelloWorld"]) == EXIT_UNAVAILABLE
    assert "pip install 'jobplane[postgres]'" in capsys.readouterr().err


def test_a_missing_module_that_no_extra_brings_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise _missing("jobplane_operator.gone")

    monkeypatch.setattr("jobplane.cli._operator", broken)
    with pytest.raises(ModuleNotFoundError, match=r"jobplane_operator\.gone"):
        main(["operator"])


def test_sync_repo_help_names_every_variable_of_the_sync_contract_and_no_other() -> None:
    # The help is written out (building the parser must not import the contract's model): held to it here.
    named = set(re.findall(r"JOBPLANE_[A-Z_]+", SYNC_REPO_VARIABLES))
    assert named == {SyncContract.env_name(field) for field in SyncContract.model_fields}


def test_sync_repo_takes_no_per_run_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["sync-repo", "--url", "https://git.example.com/x.git"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --url" in capsys.readouterr().err
