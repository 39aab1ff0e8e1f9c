"""The CLI names the extra to install when a command's dependency is missing, and nothing else."""

from __future__ import annotations

import tomllib

import pytest

from jobplane.cli import COMMAND_EXTRAS, EXIT_UNAVAILABLE, OPTIONAL_PACKAGES, main
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
