"""A local run's settings read without pydantic: the model's values, or None so that the model decides."""

from __future__ import annotations

import dataclasses
import os

import pytest
from pydantic import ValidationError

from jobplane.localsettings import LocalRunSettings, read_local_settings
from jobplane.settings import Settings

FIELDS = [field.name for field in dataclasses.fields(LocalRunSettings)]


@pytest.fixture(autouse=True)
def _no_jobplane_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("JOBPLANE_"):
            monkeypatch.delenv(key)


def model_values(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    return {name: getattr(settings, name) for name in [*FIELDS, "effective_data_database_url"]}


def test_every_field_is_a_field_of_the_model() -> None:
    assert set(FIELDS) <= set(Settings.model_fields)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"JOBPLANE_JOBS_ROOT": "/srv/jobs", "JOBPLANE_JOBS_ENTRY_POINT_GROUP": "acme.jobs"},
        {"JOBPLANE_DATABASE_URL": "sqlite:////tmp/x/results.db"},
        {"JOBPLANE_DATABASE_URL": "postgresql+psycopg://u:p@db/jobs", "JOBPLANE_NAMESPACE": "ignored"},
        {"JOBPLANE_DATA_DATABASE_URL": "sqlite:///data.db"},
        {"JOBPLANE_SOFT_TIME_LIMIT": "12", "JOBPLANE_TIME_LIMIT": "30.25"},
        {"JOBPLANE_SOFT_TIME_LIMIT": "0.5", "JOBPLANE_CREATE_FILE_MAX_SIZE": "2048"},
        {"JOBPLANE_API_DATABASE_URL": "not read by the SDK", "JOBPLANE_TOKEN": "secret"},
    ],
)
def test_plainly_valid_settings_are_the_models_values(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = read_local_settings(env)
    assert local is not None
    local_values = {name: getattr(local, name) for name in [*FIELDS, "effective_data_database_url"]}
    assert local_values == model_values(env, monkeypatch)


@pytest.mark.parametrize(
    ("env", "model_refuses"),
    [
        ({"jobplane_database_url": "sqlite:///lower.db"}, False),  # the model matches names in any case
        ({"JOBPLANE_TIME_LIMIT": ""}, True),
        ({"JOBPLANE_TIME_LIMIT": "abc"}, True),
        ({"JOBPLANE_TIME_LIMIT": "0"}, True),
        ({"JOBPLANE_TIME_LIMIT": "-5"}, True),
        ({"JOBPLANE_TIME_LIMIT": "1e3"}, False),
        ({"JOBPLANE_TIME_LIMIT": " 30"}, False),
        ({"JOBPLANE_SOFT_TIME_LIMIT": "007"}, False),
        ({"JOBPLANE_CREATE_FILE_MAX_SIZE": "1.5"}, True),
        ({"JOBPLANE_CREATE_FILE_MAX_SIZE": "1_000"}, False),
        ({"JOBPLANE_JOBS_ROOT": ""}, False),
        ({"JOBPLANE_DATABASE_URL": "sqlite:///a.db", "JOBPLANE_DATA_DATABASE_URL": "sqlite:///a.db"}, True),
    ],
)
def test_anything_else_is_left_to_the_model(
    env: dict[str, str], model_refuses: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert read_local_settings(env) is None
    if model_refuses:
        with pytest.raises(ValidationError):
            model_values(env, monkeypatch)
    else:
        model_values(env, monkeypatch)
