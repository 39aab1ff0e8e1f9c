"""Repository functions for users, groups, tokens and permissions; they take a session and never commit."""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from jobplane_api.identity.errors import AlreadyExists, AuthenticationFailed, InvalidValue, NotFound
from jobplane_api.identity.passwords import hash_password, verify_password
from jobplane_api.identity.permissions import validate_permission
from jobplane_api.identity.tokens import create_token
from jobplane_store.identity import Group, ObjectPermission, Token, User
from jobplane_store.models import utcnow

__all__ = [
    "INVALID_CREDENTIALS",
    "add_user_to_group",
    "check_password",
    "create_group",
    "create_permission",
    "create_user",
    "create_user_token",
    "get_group",
    "get_user",
    "list_groups",
    "list_permissions",
    "list_tokens",
    "list_users",
    "set_password",
]

log = logging.getLogger(__name__)

# Django's username rule: letters, digits and @ . + - _
USERNAME = re.compile(r"[\w.@+-]+")
MAX_NAME = 150
# Beyond this a password is a denial of service on PBKDF2 rather than a secret.
MAX_PASSWORD = 4096
INVALID_CREDENTIALS = "Invalid username/password."


@functools.cache
def _decoy_hash() -> str:
    """Verified against when the user is unknown or has no password: a random password nobody knows."""
    return hash_password(secrets.token_urlsafe(32))


def _check_name(what: str, name: str) -> None:
    if not name or len(name) > MAX_NAME:
        raise InvalidValue(f"a {what} name must have 1 to {MAX_NAME} characters")
    if what == "user" and not USERNAME.fullmatch(name):
        raise InvalidValue(f"username {name!r} may only hold letters, digits and @ . + - _")


def get_user(*, session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def get_group(*, session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise NotFound(f"no group {name!r}")
    return group


def create_user(
    *,
    session: Session,
    username: str,
    is_superuser: bool = False,
    password: str | None = None,
    groups: Sequence[str] = (),
) -> User:
    _check_name("user", username)
    if password is not None:
        _check_password_value(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AlreadyExists(f"user {username!r} already exists")
    members_of = [get_group(session=session, name=name) for name in dict.fromkeys(groups)]
    user = User(
        username=username,
        is_superuser=is_superuser,
        is_active=True,
        password_hash=hash_password(password) if password is not None else None,
        date_joined=utcnow(),
        groups=members_of,
    )
    session.add(user)
    session.flush()
    log.info("created user username=%s superuser=%s groups=%s", username, is_superuser, list(groups))
    return user


def _check_password_value(password: str) -> None:
    if not password:
        raise InvalidValue("a password cannot be empty")
    if len(password) > MAX_PASSWORD:
        raise InvalidValue(f"a password may have at most {MAX_PASSWORD} characters")


def set_password(*, session: Session, username: str, password: str | None) -> User:
    """Give the user a password (stored as a salted PBKDF2 hash); None removes password login."""
    user = get_user(session=session, username=username)
    if password is not None:
        _check_password_value(password)
    user.password_hash = hash_password(password) if password is not None else None
    session.flush()
    log.info("set password username=%s removed=%s", username, password is None)
    return user


def check_password(*, session: Session, username: str, password: str) -> User:
    """The active user with this username and password; AuthenticationFailed otherwise.

    An unknown user costs as much time as a wrong password, so that the answer's delay does not tell
    which usernames exist.
    """
    user = session.scalar(select(User).where(User.username == username))
    known = user is not None and user.password_hash is not None
    encoded = user.password_hash if user is not None and user.password_hash else _decoy_hash()
    if not verify_password(password, encoded) or not known or user is None:
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    if not user.is_active:
        raise AuthenticationFailed("User inactive or deleted.")
    return user


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).options(selectinload(User.groups)).order_by(User.username)))


def create_group(*, session: Session, name: str) -> Group:
    _check_name("group", name)
    if session.scalar(select(Group.id).where(Group.name == name)) is not None:
        raise AlreadyExists(f"group {name!r} already exists")
    group = Group(name=name)
    session.add(group)
    session.flush()
    log.info("created group name=%s", name)
    return group


def list_groups(*, session: Session) -> list[Group]:
    return list(session.scalars(select(Group).order_by(Group.name)))


def add_user_to_group(*, session: Session, username: str, group_name: str) -> None:
    user = get_user(session=session, username=username)
    group = get_group(session=session, name=group_name)
    if group not in user.groups:
        user.groups.append(group)
        session.flush()
        log.info("added user to group username=%s group=%s", username, group_name)


def create_user_token(
    *,
    session: Session,
    username: str,
    expires: datetime | None = None,
    write_enabled: bool = True,
    description: str = "",
) -> tuple[Token, str]:
    """A new token for the named user, and its key (shown once)."""
    user = get_user(session=session, username=username)
    if expires is not None and expires <= utcnow():
        raise InvalidValue(f"the expiry {expires.isoformat()} is in the past")
    return create_token(
        session=session, user=user, expires=expires, write_enabled=write_enabled, description=description
    )


def list_tokens(*, session: Session, username: str) -> list[Token]:
    user = get_user(session=session, username=username)
    return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created)))


def create_permission(
    *,
    session: Session,
    name: str,
    object_types: Sequence[str],
    actions: Sequence[str],
    constraints: Any = None,
    description: str = "",
    enabled: bool = True,
    users: Sequence[str] = (),
    groups: Sequence[str] = (),
) -> ObjectPermission:
    """Create an object permission, refusing one that names anything unknown (InvalidPermission)."""
    if not name or len(name) > 100:
        raise InvalidValue("a permission name must have 1 to 100 characters")
    object_types = list(dict.fromkeys(object_types))
    actions = list(dict.fromkeys(actions))
    validate_permission(object_types, actions, constraints)
    if session.scalar(select(ObjectPermission.id).where(ObjectPermission.name == name)) is not None:
        raise AlreadyExists(f"permission {name!r} already exists")
    permission = ObjectPermission(
        name=name,
        description=description,
        enabled=enabled,
        object_types=object_types,
        actions=actions,
        # {} and [] mean what None means (every object); store one spelling.
        constraints=constraints or None,
        users=[get_user(session=session, username=u) for u in dict.fromkeys(users)],
        groups=[get_group(session=session, name=g) for g in dict.fromkeys(groups)],
    )
    session.add(permission)
    session.flush()
    log.info(
        "created object permission name=%s object_types=%s actions=%s constrained=%s users=%s groups=%s",
        name,
        object_types,
        actions,
        permission.constraints is not None,
        list(users),
        list(groups),
    )
    return permission


def list_permissions(*, session: Session) -> list[ObjectPermission]:
    return list(
        session.scalars(
            select(ObjectPermission)
            .options(selectinload(ObjectPermission.users), selectinload(ObjectPermission.groups))
            .order_by(ObjectPermission.name)
        )
    )
