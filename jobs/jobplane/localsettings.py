"""The settings a local run reads, taken from the environment without pydantic when they are plainly valid.

``jobplane runjob --local`` is the job author's inner loop: building the pydantic-settings model cost a third
of a no-op run (measured start-up cost, ``bench/runjob_overhead.py``). :func:`read_local_settings` accepts
only values whose meaning cannot differ from the model's (digits for numbers, any text for a string)
and answers None for anything else, so that the caller builds :class:`jobplane.settings.Settings`, whose
validation (and error message) then decides. ``tests/unit/jobs/test_localsettings.py`` holds both to the
same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["LocalRunSettings", "RunSettings", "data_database_url_of", "read_local_settings"]

ENV_PREFIX = "JOBPLANE_"
# Numbers in the plainest notation: pydantic reads them exactly as float() and int() do.
_PLAIN_INTEGER = re.compile(r"[1-9][0-9]{0,17}")
_PLAIN_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?")


class RunSettings(Protocol):
    """What discovering and running a job on this machine reads: both settings types have it."""

    @property
    def jobs_root(self) -> Path: ...

    @property
    def jobs_entry_point_group(self) -> str: ...

    @property
    def database_url(self) -> str: ...

    @property
    def data_database_url(self) -> str | None: ...

    @property
    def soft_time_limit(self) -> float: ...

    @property
    def time_limit(self) -> float: ...

    @property
    def create_file_max_size(self) -> int: ...

    @property
    def effective_data_database_url(self) -> str: ...


@dataclass(frozen=True)
class LocalRunSettings:
    """The fields of :class:`jobplane.settings.Settings` a local run reads, with the same defaults."""

    jobs_root: Path = Path("jobs/examples")
    jobs_entry_point_group: str = "jobplane.jobs"
    database_url: str = "sqlite:///jobplane.sqlite3"
    data_database_url: str | None = None
    soft_time_limit: float = 300.0
    time_limit: float = 600.0
    create_file_max_size: int = 10 * 1024 * 1024

    @property
    def effective_data_database_url(self) -> str:
        return data_database_url_of(self.database_url, self.data_database_url)


def read_local_settings(environ: Mapping[str, str]) -> LocalRunSettings | None:
    """The local run's settings from ``environ``; None when the full model must judge them.

    None for: a ``JOBPLANE_*`` name not in capitals (the model matches names case-insensitively), an
    empty value, a number not in plain notation or not above zero, and a data database that is the SQLite
    store's own file (the model refuses it).
    """
    values: dict[str, str] = {}
    for key, value in environ.items():
        if key[: len(ENV_PREFIX)].upper() != ENV_PREFIX:
            continue
        if key != key.upper():
            return None
        values[key[len(ENV_PREFIX) :].lower()] = value
    fields: dict[str, object] = {}
    for name in ("jobs_root", "jobs_entry_point_group", "database_url", "data_database_url"):
        if name in values:
            if not values[name]:
                return None
            fields[name] = Path(values[name]) if name == "jobs_root" else values[name]
    for name in ("soft_time_limit", "time_limit"):
        if name in values:
            if not _PLAIN_DECIMAL.fullmatch(values[name]) or float(values[name]) <= 0:
                return None
            fields[name] = float(values[name])
    if "create_file_max_size" in values:
        raw = values["create_file_max_size"]
        if not _PLAIN_INTEGER.fullmatch(raw) or int(raw) <= 0:
            return None
        fields["create_file_max_size"] = int(raw)
    settings = LocalRunSettings(**fields)  # type: ignore[arg-type]
    if settings.data_database_url == settings.database_url and settings.database_url.startswith("sqlite"):
        return None
    return settings


def data_database_url_of(database_url: str, data_database_url: str | None) -> str:
    """The job-data database: as set, else the results store's, except with SQLite.

    SQLite allows one writer per file: a job holding an open write transaction on its data would
    block every log line the runner stores meanwhile. So a SQLite results store gets a sibling
    file for job data (``jobplane.sqlite3`` → ``jobplane-data.sqlite3``).
    """
    if data_database_url:
        return data_database_url
    # Only needed here, when a run uses its data database: SQLAlchemy is not imported by a local run that
    # does not (measured start-up cost).
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        return url.set(database=str(path.with_name(f"{path.stem}-data{path.suffix}"))).render_as_string(
            hide_password=False
        )
    return database_url
