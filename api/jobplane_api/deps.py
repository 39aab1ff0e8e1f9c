"""Request dependencies: settings, a database session per request, the caller, the Kubernetes gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.errors import BadRequest, NotAuthenticated, PermissionDenied, Unavailable
from jobplane_api.identity import AuthenticationFailed, Principal, authenticate
from jobplane_api.settings import ApiSettings

if TYPE_CHECKING:
    from jobplane_api.identity.principal import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "DepthDep",
    "KubeDep",
    "PrincipalDep",
    "SessionDep",
    "SettingsDep",
    "get_depth",
    "get_kube",
    "get_principal",
    "get_session",
    "get_settings",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# The dependencies that only read the request or the app's state are coroutines: FastAPI runs a plain
# function dependency in its thread pool, a hop to a worker thread and back per request for each.
async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; committed when the route returns, rolled back when it raises."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def get_kube(request: Request) -> KubeGateway:
    kube: KubeGateway | None = request.app.state.kube
    if kube is None:
        raise Unavailable("This API runs without Kubernetes: jobs and runs are not available.")
    return kube


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
# scope="function": the commit happens before the response leaves, so a client that reads right after a
# write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
KubeDep = Annotated["KubeGateway", Depends(get_kube)]


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller, from ``Authorization: Token <key>``; read-only tokens and anonymous callers only read."""
    header = request.headers.get("authorization")
    try:
        principal: Principal = authenticate(session=session, authorization=header, now=datetime.now(UTC))
    except AuthenticationFailed as exc:
        raise NotAuthenticated(str(exc)) from None
    if principal.is_anonymous:
        if not settings.allow_anonymous_read or request.method not in SAFE_METHODS:
            raise NotAuthenticated()
        return Principal.anonymous_reader()
    if request.method not in SAFE_METHODS and not principal.write_enabled:
        raise PermissionDenied("This token is read-only: it cannot be used to change anything.")
    return principal


PrincipalDep = Annotated["Principal", Depends(get_principal)]


MAX_DEPTH = 10


async def get_depth(
    request: Request,
    depth: Annotated[
        str | None,
        Query(description="Levels of related objects shown in full (0-10); 0: {id, object_type, url}."),
    ] = None,
) -> int:
    """Nautobot's ``?depth``, for GET only (writes answer at depth 0, as Nautobot's do)."""
    if depth is None or request.method != "GET":
        return 0
    try:
        value = int(depth)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DEPTH:
        # Nautobot takes a word as 0 and fails with a 500 beyond 0-10 (DRF's assertion); a 400 says why.
        raise BadRequest(
            body={"depth": [f"{depth!r} is not a depth: give a whole number from 0 to {MAX_DEPTH}."]}
        )
    return value


DepthDep = Annotated[int, Depends(get_depth)]
