"""``/api/users/tokens/``: API tokens, Nautobot's endpoints; and NetBox's ``provision/`` for a login."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from jobplane_api.deps import PrincipalDep, SessionDep, SettingsDep, get_depth, get_principal
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import TokenProvision, TokenRead, TokenWrite
from jobplane_api.services import tokens as service
from jobplane_store.identity import User

router = APIRouter(prefix="/api/users/tokens", tags=["tokens"])

TokenId = Annotated[int, Path(description="The token's id.", ge=1, le=2**31 - 1)]


def token_owner(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """Whom a new token is for: the user of a Basic username and password (Nautobot's way to get a
    first token), or the caller of a (write-enabled) token."""
    header = request.headers.get("authorization") or ""
    if header.strip().lower().startswith("basic "):
        username, password = service.basic_credentials(header)
        return service.password_user(session=session, username=username, password=password)
    principal = get_principal(request, session, settings)
    return service.token_user(session=session, principal=principal)


OwnerDep = Annotated[User, Depends(token_owner)]


FILTERS_DOC = (
    "Your tokens (a superuser's: everyone's), oldest first; keys are never shown again. "
    "Filters (Nautobot's): id, key (the whole key), write_enabled, created and expires "
    "(with __lt, __lte, __gt, __gte, __n; expires__isnull), description (with __ic, __isw, "
    "__iew, __ie, __re, __ire and their __n forms), q; and user (username or id)."
)


@router.get("/", response_model=Page[TokenRead], description=FILTERS_DOC, dependencies=[Depends(get_depth)])
def list_tokens(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[TokenRead]:
    return service.list_tokens(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )


@router.post("/", status_code=201, response_model=TokenRead)
def create_token(
    request: Request, session: SessionDep, owner: OwnerDep, write: TokenWrite | None = None
) -> TokenRead:
    """A new token for yourself; with HTTP basic authentication, for the user of that password. The
    answer holds the key: it is stored hashed and cannot be shown again."""
    return service.create_token_for(
        session=session,
        user=owner,
        write=write or TokenWrite(),
        base_url=base_url(request),
        now=datetime.now(UTC),
    )


@router.post("/provision/", status_code=201, response_model=TokenRead)
def provision_token(request: Request, session: SessionDep, body: TokenProvision | None = None) -> TokenRead:
    """A new token from a username and password, in HTTP basic authentication or in the body
    (``{"username", "password"}``, as NetBox takes them); a wrong pair is refused with 403."""
    return service.provision_token(
        session=session,
        authorization=request.headers.get("authorization"),
        body=body or TokenProvision(),
        base_url=base_url(request),
        now=datetime.now(UTC),
    )


@router.get("/{token_id}/", response_model=TokenRead, dependencies=[Depends(get_depth)])
def get_token(token_id: TokenId, request: Request, session: SessionDep, principal: PrincipalDep) -> TokenRead:
    return service.get_token(
        session=session, principal=principal, token_id=token_id, base_url=base_url(request)
    )


# Two routes rather than one with two methods: each gets an OpenAPI operation id of its own.
@router.patch("/{token_id}/", response_model=TokenRead)
@router.put("/{token_id}/", response_model=TokenRead)
def change_token(
    token_id: TokenId, write: TokenWrite, request: Request, session: SessionDep, principal: PrincipalDep
) -> TokenRead:
    """Change the fields sent: description, expires, write_enabled (PUT is taken as PATCH)."""
    return service.update_token(
        session=session, principal=principal, token_id=token_id, write=write, base_url=base_url(request)
    )


@router.delete("/{token_id}/", status_code=204, response_class=Response)
def delete_token(token_id: TokenId, session: SessionDep, principal: PrincipalDep) -> Response:
    service.delete_token(session=session, principal=principal, token_id=token_id)
    return Response(status_code=204)
