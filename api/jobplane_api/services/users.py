"""Users as Nautobot's read API shows them, so that a related user (a result's) can be followed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from jobplane_api.errors import BadRequest, NotFound, PermissionDenied
from jobplane_api.pagination import Page, PageParams
from jobplane_api.schemas import NestedObject, UserRead
from jobplane_store.identity import User

if TYPE_CHECKING:
    from jobplane_api.identity import Principal

__all__ = ["USER", "get_user", "list_users", "user_record"]

USER = "users.user"


def user_record(user: User, base_url: str) -> UserRead:
    return UserRead(
        id=user.id,
        display=user.username,
        url=f"{base_url}/api/users/users/{user.id}/",
        username=user.username,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        date_joined=user.date_joined,
        # Django's Group, as Nautobot names it; its endpoint is not served here.
        groups=[
            NestedObject(
                id=group.id, object_type="auth.group", url=f"{base_url}/api/users/groups/{group.id}/"
            )
            for group in user.groups
        ],
    )


def _conditions(principal: Principal, filters: Mapping[str, list[str]]) -> list[ColumnElement[bool]]:
    if not principal.has("view", USER):
        raise PermissionDenied()
    conditions: list[ColumnElement[bool]] = []
    restriction = principal.sql_filter("view", USER)
    if restriction is not None:
        conditions.append(restriction)
    for key, values in filters.items():
        if key == "username":
            conditions.append(User.username.in_(values))
        elif key == "id":
            if not all(value.isdigit() for value in values):
                raise BadRequest(body={key: ["Enter a whole number."]})
            conditions.append(User.id.in_([int(value) for value in values]))
    return conditions


def list_users(
    *,
    session: Session,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]],
) -> Page[UserRead]:
    """By username; the view permission on users.user is needed, as in Nautobot."""
    conditions = _conditions(principal, filters)
    count = session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
    rows = session.scalars(
        select(User)
        .options(selectinload(User.groups))
        .where(*conditions)
        .order_by(User.username)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return page.page([user_record(row, base_url) for row in rows], count)


def get_user(*, session: Session, principal: Principal, user_id: int, base_url: str) -> UserRead:
    conditions = _conditions(principal, {})
    user = session.scalars(
        select(User).options(selectinload(User.groups)).where(User.id == user_id, *conditions)
    ).first()
    if user is None:
        raise NotFound()
    return user_record(user, base_url)
