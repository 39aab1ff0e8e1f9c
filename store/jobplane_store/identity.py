"""SQLAlchemy models of the API's identities: users, groups, tokens and object permissions (Nautobot's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobplane_store.models import Base, JSONType, utcnow

__all__ = [
    "Group",
    "ObjectPermission",
    "Token",
    "User",
    "object_permission_groups",
    "object_permission_users",
    "user_groups",
]

user_groups = Table(
    "users_user_groups",
    Base.metadata,
    Column("user_id", ForeignKey("users_user.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("users_group.id", ondelete="CASCADE"), primary_key=True),
)

object_permission_users = Table(
    "users_object_permission_users",
    Base.metadata,
    Column("permission_id", ForeignKey("users_object_permission.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users_user.id", ondelete="CASCADE"), primary_key=True, index=True),
)

object_permission_groups = Table(
    "users_object_permission_groups",
    Base.metadata,
    Column("permission_id", ForeignKey("users_object_permission.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("users_group.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(Base):
    """A person or a service account that calls the API."""

    __tablename__ = "users_user"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    # Django's "pbkdf2_sha256$iterations$salt$hash" format, for a later web login; None: no password login.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_superuser: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    date_joined: Mapped[datetime] = mapped_column(default=utcnow)

    groups: Mapped[list[Group]] = relationship(secondary=user_groups, back_populates="users")
    tokens: Mapped[list[Token]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class Group(Base):
    """A named set of users that permissions can be given to."""

    __tablename__ = "users_group"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)

    users: Mapped[list[User]] = relationship(secondary=user_groups, back_populates="groups")


class Token(Base):
    """An API token; only the SHA-256 of its key is stored, the key itself is shown once."""

    __tablename__ = "users_token"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users_user.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, so that people can tell their tokens apart in a listing.
    key_prefix: Mapped[str] = mapped_column(String(8))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime | None]
    last_used: Mapped[datetime | None]
    write_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    description: Mapped[str] = mapped_column(String(200), default="")

    user: Mapped[User] = relationship(back_populates="tokens")


class ObjectPermission(Base):
    """Actions on object types, optionally limited by constraints, given to users and groups (Nautobot's)."""

    __tablename__ = "users_object_permission"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    # "app_label.model" names, e.g. ["extras.job"], and actions, e.g. ["view", "run"].
    object_types: Mapped[list[str]] = mapped_column(JSONType)
    actions: Mapped[list[str]] = mapped_column(JSONType)
    # A dict of lookups (all must match) or a list of such dicts (any may match); None: every object.
    constraints: Mapped[Any | None] = mapped_column(JSONType)

    users: Mapped[list[User]] = relationship(secondary=object_permission_users)
    groups: Mapped[list[Group]] = relationship(secondary=object_permission_groups)
