"""An ObjectVar's choices for the run form, read from the job-data database without importing the job.

The job's schema names the table, its key column and the display field (``x-jobplane-table``,
``x-jobplane-display-field``); the rows are read with plain SQL on those identifiers (quoted by
SQLAlchemy), filtered by the variable's fixed query params, and capped. Only when the API is given the
job-data database (``JOBPLANE_API_UI_DATA_DATABASE_URL``), and never a table of Jobplane's own store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, MetaData, Table, inspect, select
from sqlalchemy.exc import SQLAlchemyError

import jobplane_store.identity  # noqa: F401  (its tables join Base.metadata)
from jobplane_store.models import Base

__all__ = ["MAX_CHOICES", "DataChoices"]

log = logging.getLogger(__name__)

# A select with more rows than this is no help to anyone; the text field takes filters instead.
MAX_CHOICES = 500
STORE_TABLES = frozenset(Base.metadata.tables)


class DataChoices:
    """``(key, label)`` pairs of the rows an ObjectVar's schema points at; None when they cannot be read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, prop: Mapping[str, Any]) -> list[tuple[str, str]] | None:
        where = prop.get("x-jobplane-table")
        if not isinstance(where, Mapping) or not where.get("name") or not where.get("key"):
            return None  # a schema from before the table was recorded: the text field
        name, schema, key = str(where["name"]), where.get("schema"), str(where["key"])
        if name in STORE_TABLES and schema is None:
            log.warning("refusing ObjectVar choices from a table of the results store table=%s", name)
            return None
        display = str(prop.get("x-jobplane-display-field") or "")
        params: Mapping[str, Any] = prop.get("x-jobplane-query-params") or {}
        try:
            columns = {column["name"] for column in inspect(self.engine).get_columns(name, schema=schema)}
            if key not in columns:
                return None
            table = Table(name, MetaData(), schema=schema, autoload_with=self.engine)
            label = table.c[display] if display in columns else table.c[key]
            query = select(table.c[key], label).order_by(label).limit(MAX_CHOICES + 1)
            for column, value in params.items():
                if isinstance(value, str) and value.startswith("$"):
                    continue  # narrows by another variable of the form: all rows are offered
                if column in columns:
                    values = list(value) if isinstance(value, list | tuple) else [value]
                    query = query.where(table.c[column].in_(values))
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as exc:
            log.warning("could not read ObjectVar choices table=%s error=%s", name, exc)
            return None
        if len(rows) > MAX_CHOICES:
            return None
        return [(str(row[0]), str(row[1])) for row in rows]
