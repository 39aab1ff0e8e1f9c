"""Authenticate a request from its ``Authorization: Token <key>`` header, in two queries."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, union, update
from sqlalchemy.orm import Session

from jobplane_api.identity.errors import AuthenticationFailed, InvalidValue, NotFound
from jobplane_api.identity.principal import Grant, Principal
from jobplane_api.identity.tokens import hash_key
from jobplane_store.identity import (
    ObjectPermission,
    Token,
    User,
    object_permission_groups,
    object_permission_users,
    user_groups,
)

__all__ = ["LAST_USED_RESOLUTION", "authenticate", "load_grants", "principal_of_user"]

log = logging.getLogger(__name__)

# last_used is written at most this often per token, so that reads do not all turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
USAGE = "use 'Authorization: Token <key>'"


def _parse(authorization: str) -> str:
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        raise AuthenticationFailed(f"Bearer tokens are for job runs only; {USAGE}")
    if scheme.lower() != "token":
        raise AuthenticationFailed(f"Invalid token header: {USAGE}")
    if not credentials:
        raise AuthenticationFailed("Invalid token header. No credentials provided.")
    if " " in credentials:
        raise AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    return credentials


def authenticate(*, session: Session, authorization: str | None, now: datetime) -> Principal:
    """The principal of a request; anonymous (no grants) without a header. Raises AuthenticationFailed.

    It may update the token's ``last_used``: the caller's transaction must be committed for it to stay.
    """
    if authorization is None or not authorization.strip():
        return Principal.anonymous()
    key = _parse(authorization)
    row = session.execute(
        select(
            Token.id,
            Token.expires,
            Token.last_used,
            Token.write_enabled,
            User.id,
            User.username,
            User.is_superuser,
            User.is_active,
        )
        .join(User, Token.user_id == User.id)
        .where(Token.key_hash == hash_key(key))
    ).one_or_none()
    if row is None:
        raise AuthenticationFailed("Invalid token")
    token_id, expires, last_used, write_enabled, user_id, username, is_superuser, is_active = row
    if not is_active:
        raise AuthenticationFailed("User inactive or deleted.")
    if expires is not None and expires <= now:
        raise AuthenticationFailed("Token expired")
    cutoff = now - LAST_USED_RESOLUTION
    if last_used is None or last_used <= cutoff:
        _touch(session, token_id, now, cutoff)
    grants = () if is_superuser else load_grants(session=session, user_id=user_id)
    return Principal(
        username=username,
        is_superuser=is_superuser,
        write_enabled=write_enabled,
        grants=grants,
        user_id=user_id,
    )


def _touch(session: Session, token_id: int, now: datetime, cutoff: datetime) -> None:
    """Record the use, unless a concurrent request is doing so: the row lock is skipped, never waited
    for, so that a long request holding it does not stall every other request with the same token."""
    due = (
        select(Token.id)
        .where(Token.id == token_id, or_(Token.last_used.is_(None), Token.last_used <= cutoff))
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(Token).where(Token.id.in_(due.scalar_subquery())).values(last_used=now),
        execution_options={"synchronize_session": False},
    )


def load_grants(*, session: Session, user_id: int) -> tuple[Grant, ...]:
    """The enabled permissions given to the user directly or through any of its groups."""
    through_groups = (
        select(object_permission_groups.c.permission_id)
        .join(user_groups, user_groups.c.group_id == object_permission_groups.c.group_id)
        .where(user_groups.c.user_id == user_id)
    )
    direct = select(object_permission_users.c.permission_id).where(
        object_permission_users.c.user_id == user_id
    )
    rows = session.execute(
        select(
            ObjectPermission.name,
            ObjectPermission.object_types,
            ObjectPermission.actions,
            ObjectPermission.constraints,
        )
        .where(ObjectPermission.enabled, ObjectPermission.id.in_(union(direct, through_groups)))
        .order_by(ObjectPermission.id)
    ).all()
    grants = []
    for name, object_types, actions, constraints in rows:
        grant = Grant.from_permission(
            name=name, object_types=object_types, actions=actions, constraints=constraints
        )
        if grant is not None:
            grants.append(grant)
    return tuple(grants)


def principal_of_user(*, session: Session, username: str) -> Principal:
    """The principal of a user named without a token (``runjob --local --username``), with every action.

    Raises NotFound for an unknown user and InvalidValue for an inactive one, as a token of theirs would fail.
    """
    user = session.execute(
        select(User.id, User.is_superuser, User.is_active).where(User.username == username)
    ).one_or_none()
    if user is None:
        raise NotFound(f"no user {username!r}")
    user_id, is_superuser, is_active = user
    if not is_active:
        raise InvalidValue(f"user {username!r} is inactive")
    grants = () if is_superuser else load_grants(session=session, user_id=user_id)
    return Principal(
        username=username, is_superuser=is_superuser, write_enabled=True, grants=grants, user_id=user_id
    )
