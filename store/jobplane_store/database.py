"""Engines, sessions and schema migrations of the results store (SQLite or Postgres)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from jobplane_store.sqlite import HEAD_REVISION, set_sqlite_pragmas

__all__ = [
    "HEAD_REVISION",
    "create_store_engine",
    "current_revision",
    "ensure_schema",
    "make_sessionmaker",
    "upgrade",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Postgres advisory lock key held while migrating: "jobplane" in ASCII, as a 64-bit integer.
MIGRATION_LOCK_ID = int.from_bytes(b"jobplane", "big") >> 1


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    set_sqlite_pragmas(dbapi_connection)


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the results store; SQLite gets the pragmas that make it safe for two processes."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (all of them by default)."""
    # Local: Alembic is loaded only when a store needs migrating, not by every run that opens one.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction: without one of our own, another process could
            # see a half-migrated schema. IMMEDIATE also makes a second migrating process wait its turn.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            # The chart's migrations hook and a starting API replica may migrate at once: one waits for the
            # other (the lock ends with this transaction), then finds nothing left to do.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> None:
    """Bring the store's schema up to date; cheap when it already is."""
    if current_revision(engine) != HEAD_REVISION:
        log.info("migrating results store url=%s", engine.url.render_as_string(hide_password=True))
        upgrade(engine)
