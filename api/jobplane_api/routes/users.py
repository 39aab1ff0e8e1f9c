"""``/api/users/users/``: users, read-only, so that the user of a job result can be followed by its url."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from jobplane_api.deps import PrincipalDep, SessionDep
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import UserRead
from jobplane_api.services import users as service

router = APIRouter(prefix="/api/users/users", tags=["users"])

UserId = Annotated[int, Path(description="The user's id.", ge=1, le=2**31 - 1)]


@router.get("/", response_model=Page[UserRead], description="Filters: id, username.")
def list_users(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[UserRead]:
    return service.list_users(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )


@router.get("/{user_id}/", response_model=UserRead)
def get_user(user_id: UserId, request: Request, session: SessionDep, principal: PrincipalDep) -> UserRead:
    return service.get_user(session=session, principal=principal, user_id=user_id, base_url=base_url(request))
