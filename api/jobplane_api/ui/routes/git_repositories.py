"""Git repositories pages: the list with each one's last sync, the add form, Sync, and a repository's page
with its jobs.

Every read and write goes through the services the REST API uses (``services.git_repositories``,
``services.jobs``) with the signed-in user as the principal: the same permission checks, the same
validation and messages (shown next to their fields); a sync lands on its job result's page, which follows
it live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from jobplane_api.deps import KubeDep, SessionDep
from jobplane_api.errors import BadRequest, PermissionDenied
from jobplane_api.identity import Principal
from jobplane_api.routes import base_url
from jobplane_api.schemas import GitRepositoryRead, GitRepositoryWrite, JobRead
from jobplane_api.services import git_repositories as service
from jobplane_api.services import jobs as jobs_service
from jobplane_api.ui.auth import UserDep, csrf_protect
from jobplane_api.ui.templating import is_htmx, render
from jobplane_crds.v1alpha1 import JobDefinition

__all__ = ["ADD_FIELDS", "repository_job_ids", "router", "sync_state", "write_of_form"]

router = APIRouter(prefix="/git-repositories", dependencies=[Depends(csrf_protect)])

# The add form: Nautobot's fields (GitRepositoryForm), in its order, as the API's create takes them.
ADD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "Any text, unique."),
    ("slug", "Slug", "The Python package its jobs import as; left empty, made from the name."),
    ("remote_url", "Remote URL", "http(s)://, ssh://, git:// or user@host:path; never a password in it."),
    ("branch", "Branch", "A branch, tag or commit; left empty, main."),
    (
        "secrets_group",
        "Credentials Secret",
        "The name of a Secret of the namespace holding the credentials (labelled "
        "jobplane.io/secret-type: repository-credentials); empty for a public repository.",
    ),
)
CONTENTS_FIELD = "provided_contents"
# Left out of the body when empty, so the service applies its default (the slug from the name, main).
OPTIONAL_TEXT = ("slug", "branch", "secrets_group")


def write_of_form(form: Mapping[str, Any], contents: Iterable[Any]) -> dict[str, Any]:
    """The API's create body of a submitted add form: name and remote_url always (blank ones are refused
    by the service with its own message), the optional fields only when filled, the ticked contents."""
    body: dict[str, Any] = {}
    for name, _label, _help in ADD_FIELDS:
        raw = form.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        if text or name not in OPTIONAL_TEXT:
            body[name] = text
    body[CONTENTS_FIELD] = [value for value in contents if isinstance(value, str)]
    return body


def sync_state(record: GitRepositoryRead) -> tuple[str, str]:
    """The last sync as a badge: (word, tone)."""
    if record.suspend:
        return "suspended", "muted"
    if record.status.degraded:
        return "degraded", "bad"
    if record.status.synced:
        return "synced", "ok"
    if record.status.last_sync_time is None:
        return "not synced yet", "muted"
    return "sync failed", "bad"


def repository_job_ids(definitions: Iterable[JobDefinition], object_name: str) -> list[str]:
    """The ids of the JobDefinitions whose code came from the JobRepository ``object_name``."""
    ids = []
    for definition in definitions:
        source = definition.status.source if definition.status is not None else None
        if source is not None and source.type == "repository" and source.repository == object_name:
            ids.append(str(definition.metadata.uid))
    return sorted(ids)


def _can(user: Principal, action: str, record: GitRepositoryRead) -> bool:
    return user.allows(action, service.GIT_REPOSITORY, record.model_dump(mode="json"))


@router.get("/")
def repository_list(request: Request, user: UserDep, kube: KubeDep) -> Response:
    """Every repository the user may view, with its last sync; Add and Sync as the user may."""
    records = service.list_repositories(kube=kube, principal=user, base_url=base_url(request), filters={})
    rows = [
        {"record": record, "state": sync_state(record), "can_sync": _can(user, "change", record)}
        for record in records
    ]
    context = {"nav": "git", "rows": rows, "can_add": user.has("add", service.GIT_REPOSITORY)}
    return render(request, "git_repositories/list.html", context)


def _add_page(
    request: Request,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    status_code: int = 200,
) -> Response:
    values = values or {CONTENTS_FIELD: list(service.PROVIDED_CONTENTS)}
    errors = errors or {}
    context = {
        "nav": "git",
        "fields": ADD_FIELDS,
        "contents": service.NAUTOBOT_CONTENTS,
        "contents_field": CONTENTS_FIELD,
        "values": values,
        "errors": errors,
        # Errors of no field of the form (Nautobot's non_field_errors) go above it.
        "form_errors": [
            message
            for key, messages in errors.items()
            if key not in {name for name, _, _ in ADD_FIELDS} | {CONTENTS_FIELD}
            for message in messages
        ],
    }
    return render(request, "git_repositories/add.html", context, status_code=status_code)


def _require_add(user: Principal) -> None:
    if not user.has("add", service.GIT_REPOSITORY):
        raise PermissionDenied("You do not have permission to add Git repositories.")


@router.get("/add/")
def add_form(request: Request, user: UserDep) -> Response:
    _require_add(user)
    return _add_page(request)


def _errors_of(exc: ValidationError | BadRequest) -> dict[str, list[str]]:
    if isinstance(exc, ValidationError):
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            where = str(error.get("loc", ("non_field_errors",))[0])
            errors.setdefault(where, []).append(str(error.get("msg")))
        return errors
    body = exc.body()
    return {key: value if isinstance(value, list) else [str(value)] for key, value in body.items()}


@router.post("/add/")
async def add(request: Request, user: UserDep, kube: KubeDep) -> Response:
    """Create the repository through the API's create service: its page on success (the operator syncs it
    at once), the form with each error next to its field otherwise (400)."""
    _require_add(user)
    form = await request.form()
    body = write_of_form(form, form.getlist(CONTENTS_FIELD))
    try:
        write = GitRepositoryWrite.model_validate(body)
        record = await run_in_threadpool(
            service.create_repository, kube=kube, principal=user, write=write, base_url=base_url(request)
        )
    except (ValidationError, BadRequest) as exc:
        return _add_page(request, values=body, errors=_errors_of(exc), status_code=400)
    return RedirectResponse(f"/git-repositories/{record.id}/", status_code=303)


def _jobs_of(request: Request, user: Principal, kube: KubeDep, object_name: str) -> list[JobRead] | None:
    """The repository's jobs the user may view; None when they may view no job at all."""
    ids = repository_job_ids(kube.definitions(), object_name)
    try:
        return jobs_service.list_jobs(
            kube=kube, principal=user, base_url=base_url(request), filters={"id": ids}
        )
    except PermissionDenied:
        return None


@router.get("/{key}/")
def repository_detail(request: Request, key: str, user: UserDep, kube: KubeDep) -> Response:
    """A repository: its settings, its last sync (commit, errors) and its jobs."""
    _, record = service.lookup_repository(kube=kube, principal=user, key=key, base_url=base_url(request))
    context = {
        "nav": "git",
        "repo": record,
        "state": sync_state(record),
        "can_sync": _can(user, "change", record),
        "jobs": _jobs_of(request, user, kube, record.job_repository.name),
    }
    return render(request, "git_repositories/detail.html", context)


@router.post("/{key}/sync/")
def sync(request: Request, key: str, user: UserDep, kube: KubeDep, session: SessionDep) -> Response:
    """Sync now through the API's sync service, then follow the sync on its job result's page."""
    answer = service.sync_repository(
        kube=kube,
        session=session,
        principal=user,
        key=key,
        base_url=base_url(request),
        now=datetime.now(UTC),
    )
    target = f"/job-results/{answer.job_result.id}/"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
