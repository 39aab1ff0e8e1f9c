"""Alembic environment of the results store: runs on the connection handed in by jobplane_store.database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import jobplane_store.identity  # noqa: F401  (its tables are part of the metadata)
from jobplane_store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Called from the alembic command line: use the URL the caller configured.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///jobplane.sqlite3")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
