"""The principal of a user named without a token (``runjob --local --username``) and its grants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from jobplane_api.identity import InvalidValue, NotFound, principal_of_user, service
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.identity import User


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'identity.sqlite3'}")
    ensure_schema(engine)
    with make_sessionmaker(engine)() as opened:
        yield opened
    engine.dispose()


def test_an_unknown_user_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="no user 'ghost'"):
        principal_of_user(session=session, username="ghost")


def test_an_inactive_user_is_refused(session: Session) -> None:
    service.create_user(session=session, username="gone", is_superuser=True, groups=[])
    session.query(User).filter_by(username="gone").update({"is_active": False})
    with pytest.raises(InvalidValue, match="user 'gone' is inactive"):
        principal_of_user(session=session, username="gone")


def test_grants_come_from_the_user_and_their_groups_and_may_be_used_to_write(session: Session) -> None:
    service.create_group(session=session, name="ops")
    service.create_user(session=session, username="ada", is_superuser=False, groups=["ops"])
    service.create_permission(
        session=session,
        name="run-demo",
        object_types=["extras.job"],
        actions=["run"],
        constraints={"grouping": "Demo"},
        description="",
        users=[],
        groups=["ops"],
    )
    ada = principal_of_user(session=session, username="ada")
    assert (ada.username, ada.is_superuser, ada.write_enabled) == ("ada", False, True)
    assert ada.allows("run", "extras.job", {"grouping": "Demo"})
    assert not ada.allows("run", "extras.job", {"grouping": "Other"})
