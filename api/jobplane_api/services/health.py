"""Readiness of the API's stores, for ``/api/status/``."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["check_database"]


def check_database(*, session: Session) -> None:
    """A round trip to the database; raises (the request fails) when it does not answer."""
    session.execute(text("SELECT 1"))
