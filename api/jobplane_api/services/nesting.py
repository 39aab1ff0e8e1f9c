"""``?depth=N``: related objects in full, as Nautobot's nested serializers render them when depth > 0.

At depth 0 (the default) a related object is ``{"id", "object_type", "url"}`` or null. At depth N it is the
object's own record, whose related objects are rendered at depth N - 1; as in Nautobot, a nested object
leaves out its many-to-many fields (a nested job has no ``job_queues``, a nested user no ``groups``).

Unlike Nautobot, a related object the caller may not view stays a reference: ``?depth`` never shows more
than following the ``url`` would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only, selectinload

from jobplane_api.pagination import Page
from jobplane_api.schemas import (
    FileProxyRead,
    JobQueueRead,
    JobRead,
    JobResultRead,
    ScheduledJobRead,
    UserRead,
)
from jobplane_api.services.job_queues import visible_queues
from jobplane_api.services.jobs import job_record, queue_ids
from jobplane_api.services.results import FILE_COLUMNS, file_record
from jobplane_api.services.users import user_record
from jobplane_store.identity import User
from jobplane_store.models import FileProxy

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "Related",
    "job_at_depth",
    "page_at_depth",
    "queues_by_id",
    "related_of_results",
    "related_of_scheduled_jobs",
    "result_at_depth",
    "scheduled_job_at_depth",
]

R = TypeVar("R")
JOB = "extras.job"
USER = "users.user"
FILE = "extras.fileproxy"


@dataclass
class Related:
    """The related objects the caller may view, by id (as the references show it)."""

    queues: dict[str, JobQueueRead] = field(default_factory=dict)
    jobs: dict[str, JobRead] = field(default_factory=dict)
    users: dict[str, UserRead] = field(default_factory=dict)
    files: dict[str, FileProxyRead] = field(default_factory=dict)


def page_at_depth(page: Page[R], render: Callable[[R], dict[str, Any]]) -> dict[str, Any]:
    """A list page whose records are rendered at a depth."""
    data: dict[str, Any] = page.model_dump(mode="json")
    data["results"] = [render(record) for record in page.results]
    return data


def _expand(reference: Any, found: Mapping[str, Any], render: Any) -> Any:
    """A reference replaced by its object's rendering when the object is known (and visible)."""
    if not isinstance(reference, dict) or str(reference.get("id")) not in found:
        return reference
    return render(found[str(reference["id"])])


def _queue(record: JobQueueRead) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json")
    return data


def job_at_depth(record: JobRead, depth: int, related: Related, *, nested: bool = False) -> dict[str, Any]:
    """A job record at this depth; ``nested``: as an object inside another (no many-to-many fields)."""
    data: dict[str, Any] = record.model_dump(mode="json")
    if nested:
        data.pop("job_queues")
    if depth < 1:
        return data
    if not nested:
        data["job_queues"] = [_expand(ref, related.queues, _queue) for ref in data["job_queues"]]
    data["default_job_queue"] = _expand(data["default_job_queue"], related.queues, _queue)
    return data


def _user(record: UserRead) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json")
    data.pop("groups")  # many-to-many: left out of a nested user, as Nautobot leaves it out
    return data


def _file(record: FileProxyRead) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json")
    return data


def _job_and_people_at_depth(
    record: JobResultRead | ScheduledJobRead, depth: int, related: Related, people: tuple[str, ...]
) -> dict[str, Any]:
    """A record whose job and users (the fields ``people``) are in full at depth 1 and more."""
    data: dict[str, Any] = record.model_dump(mode="json")
    if depth < 1:
        return data
    data["job_model"] = _expand(
        data["job_model"], related.jobs, lambda job: job_at_depth(job, depth - 1, related, nested=True)
    )
    for key in people:
        data[key] = _expand(data.get(key), related.users, _user)
    return data


def result_at_depth(record: JobResultRead, depth: int, related: Related) -> dict[str, Any]:
    """A job result at this depth: its job, user and files in full at depth 1 and more."""
    data = _job_and_people_at_depth(record, depth, related, ("user",))
    if depth >= 1:
        data["files"] = [_expand(ref, related.files, _file) for ref in data["files"]]
    return data


def scheduled_job_at_depth(record: ScheduledJobRead, depth: int, related: Related) -> dict[str, Any]:
    """A scheduled job at this depth: its job, queue and users in full at depth 1 and more."""
    data = _job_and_people_at_depth(record, depth, related, ("user", "approved_by_user"))
    if depth >= 1:
        data["job_queue"] = _expand(data["job_queue"], related.queues, _queue)
    return data


def queues_by_id(kube: KubeGateway, principal: Principal, base_url: str) -> dict[str, JobQueueRead]:
    return {str(record.id): record for record in visible_queues(kube, principal, base_url)}


def _ids(references: Sequence[Any]) -> list[str]:
    return [str(reference.id) for reference in references if reference is not None]


def related_of_results(
    records: Sequence[JobResultRead],
    depth: int,
    *,
    session: Session,
    kube: KubeGateway | None,
    principal: Principal,
    base_url: str,
) -> Related:
    """The jobs, users, files (and at depth 2, queues) of these results that the caller may view."""
    related = Related()
    if depth < 1:
        return related
    if kube is not None and depth > 1:
        related.queues = queues_by_id(kube, principal, base_url)
    if kube is not None:
        related.jobs = _jobs_by_id(kube, principal, base_url, _ids([record.job_model for record in records]))
    related.users = _users_by_id(session, principal, base_url, _ids([record.user for record in records]))
    file_ids = [uuid.UUID(file_id) for file_id in _ids([ref for record in records for ref in record.files])]
    if file_ids and principal.has("view", FILE):
        proxies = select(FileProxy).options(load_only(*FILE_COLUMNS)).where(FileProxy.id.in_(file_ids))
        if (restriction := principal.sql_filter("view", FILE)) is not None:
            proxies = proxies.where(restriction)
        related.files = {str(proxy.id): file_record(proxy, base_url) for proxy in session.scalars(proxies)}
    return related


def _jobs_by_id(
    kube: KubeGateway, principal: Principal, base_url: str, job_ids: Sequence[str]
) -> dict[str, JobRead]:
    """The jobs of these ids that the caller may view."""
    found: dict[str, JobRead] = {}
    if not principal.has("view", JOB):
        return found
    ids = queue_ids(kube)
    for job_id in set(job_ids):
        definition = kube.find_definition(job_id)
        if definition is None:
            continue
        job = job_record(definition, base_url, ids)
        if principal.allows("view", JOB, job.model_dump(mode="json")):
            found[job_id] = job
    return found


def _users_by_id(
    session: Session, principal: Principal, base_url: str, user_ids: Sequence[str]
) -> dict[str, UserRead]:
    """The users of these ids that the caller may view."""
    wanted = {int(user_id) for user_id in user_ids}
    if not wanted or not principal.has("view", USER):
        return {}
    users = select(User).options(selectinload(User.groups)).where(User.id.in_(wanted))
    if (restriction := principal.sql_filter("view", USER)) is not None:
        users = users.where(restriction)
    return {str(user.id): user_record(user, base_url) for user in session.scalars(users)}


def related_of_scheduled_jobs(
    records: Sequence[ScheduledJobRead],
    depth: int,
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    base_url: str,
) -> Related:
    """The jobs, queues and users of these scheduled jobs that the caller may view."""
    related = Related()
    if depth < 1:
        return related
    related.queues = queues_by_id(kube, principal, base_url)
    related.jobs = _jobs_by_id(kube, principal, base_url, _ids([record.job_model for record in records]))
    people = [record.user for record in records] + [record.approved_by_user for record in records]
    related.users = _users_by_id(session, principal, base_url, _ids(people))
    return related
