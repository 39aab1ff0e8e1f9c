"""``/api/extras/git-repositories/``: Git repositories of jobs (JobRepositories), syncs, the push webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from jobplane_api.deps import KubeDep, PrincipalDep, SessionDep, SettingsDep, get_depth
from jobplane_api.errors import PayloadTooLarge
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import (
    GitRepositoryRead,
    GitRepositorySyncResponse,
    GitRepositoryWrite,
    GitWebhookResponse,
)
from jobplane_api.services import git_repositories as service

router = APIRouter(prefix="/api/extras/git-repositories", tags=["git repositories"])

RepositoryKey = Annotated[
    str, Path(description="The repository's UUID, its name or its JobRepository's name.", min_length=1)
]
Signature = Annotated[
    str | None,
    Header(
        alias=service.SIGNATURE_HEADER,
        description="sha256=<hex HMAC-SHA256 of the raw body, keyed with the webhook secret>",
    ),
]

WEBHOOK_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": (
                        "A push event (GitHub, Gitea or GitLab); its repository URLs and its `ref` are used."
                    ),
                    "additionalProperties": True,
                }
            }
        },
    },
}


@router.post("/webhook/", status_code=202, response_model=GitWebhookResponse, openapi_extra=WEBHOOK_DOC)
async def webhook(
    request: Request, kube: KubeDep, settings: SettingsDep, signature: Signature = None
) -> GitWebhookResponse:
    """Sync every repository the pushed URL names. Needs no token: the body's signature is the proof."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.upload_max_size:
            raise PayloadTooLarge(f"The webhook body is above the limit of {settings.upload_max_size} bytes.")
    return await run_in_threadpool(
        service.handle_webhook,
        kube=kube,
        secret=settings.git_webhook_secret,
        body=bytes(body),
        content_type=request.headers.get("content-type", ""),
        signature=signature,
        now=datetime.now(UTC),
    )


@router.get(
    "/",
    response_model=Page[GitRepositoryRead],
    description="Filters: id, name, slug, remote_url, branch, secrets_group.",
    dependencies=[Depends(get_depth)],
)
def list_repositories(
    request: Request, kube: KubeDep, principal: PrincipalDep, page: PageDep
) -> Page[GitRepositoryRead]:
    records = service.list_repositories(
        kube=kube, principal=principal, base_url=base_url(request), filters=query_filters(request)
    )
    return page.page(records[page.offset : page.offset + page.limit], len(records))


@router.post("/", status_code=201, response_model=GitRepositoryRead)
def create_repository(
    write: GitRepositoryWrite, request: Request, kube: KubeDep, principal: PrincipalDep
) -> GitRepositoryRead:
    """Add a repository (name and remote_url required; its JobRepository is named after the slug); the
    operator syncs it and its jobs appear."""
    return service.create_repository(kube=kube, principal=principal, write=write, base_url=base_url(request))


@router.get("/{key}/", response_model=GitRepositoryRead, dependencies=[Depends(get_depth)])
def get_repository(
    key: RepositoryKey, request: Request, kube: KubeDep, principal: PrincipalDep
) -> GitRepositoryRead:
    _, record = service.lookup_repository(kube=kube, principal=principal, key=key, base_url=base_url(request))
    return record


# Two routes rather than one with two methods: each gets an OpenAPI operation id of its own.
@router.patch("/{key}/", response_model=GitRepositoryRead)
@router.put("/{key}/", response_model=GitRepositoryRead)
def change_repository(
    key: RepositoryKey, write: GitRepositoryWrite, request: Request, kube: KubeDep, principal: PrincipalDep
) -> GitRepositoryRead:
    """Change the fields sent; the slug cannot change (PUT is taken as PATCH, as for jobs)."""
    return service.update_repository(
        kube=kube, principal=principal, key=key, write=write, base_url=base_url(request)
    )


@router.delete("/{key}/", status_code=204, response_class=Response)
def delete_repository(
    key: RepositoryKey, request: Request, kube: KubeDep, principal: PrincipalDep
) -> Response:
    """Delete the repository; its jobs stay, marked not installed."""
    service.delete_repository(kube=kube, principal=principal, key=key, base_url=base_url(request))
    return Response(status_code=204)


@router.post("/{key}/sync/", response_model=GitRepositorySyncResponse)
def sync_repository(
    key: RepositoryKey, request: Request, kube: KubeDep, session: SessionDep, principal: PrincipalDep
) -> GitRepositorySyncResponse:
    """Sync now; the answer's job_result (GET /api/extras/job-results/{id}/) ends when the sync does."""
    return service.sync_repository(
        kube=kube,
        session=session,
        principal=principal,
        key=key,
        base_url=base_url(request),
        now=datetime.now(UTC),
    )
