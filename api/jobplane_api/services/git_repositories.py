"""Git repositories of jobs as Nautobot shows them, kept as JobRepositories; manual syncs, the push webhook.

The API only writes what a repository should be (its spec), the name it was given (an annotation: the
object's name comes from the slug) and when a sync was asked for (an annotation, and a job result that
services/sync_results.py brings to an end); the operator resolves the ref, runs the sync and writes the
status shown here.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import keyword
import logging
import re
import sys
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from jobplane_api.errors import ApiError, BadRequest, Conflict, NotFound, PermissionDenied, Unavailable
from jobplane_api.kube import (
    REPOSITORY_DISPLAY_NAME,
    KubeConflict,
    KubeError,
    KubeInvalid,
    KubeNotFound,
    find_repository,
    repository_display_name,
)
from jobplane_api.schemas import (
    GitRepositoryRead,
    GitRepositoryStatusRead,
    GitRepositorySyncResponse,
    GitRepositoryWrite,
    GitWebhookResponse,
    JobRepositoryReference,
)
from jobplane_api.services.results import result_record, user_ids
from jobplane_api.services.sync_results import new_sync_result
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import JobRepository, JobRepositoryStatus

if TYPE_CHECKING:
    from pydantic import SecretStr
    from sqlalchemy.orm import Session

    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "GIT_REPOSITORY",
    "SIGNATURE_HEADER",
    "WebhookUnauthenticated",
    "create_repository",
    "delete_repository",
    "filter_repositories",
    "handle_webhook",
    "list_repositories",
    "lookup_repository",
    "matching_repositories",
    "name_problem",
    "normalise_url",
    "object_name_from_slug",
    "pushed_ref",
    "repository_record",
    "slug_from_name",
    "sync_repository",
    "sync_timestamp",
    "update_repository",
    "url_problem",
    "verify_signature",
    "webhook_urls",
]

log = logging.getLogger(__name__)

GIT_REPOSITORY = "extras.gitrepository"
PROVIDED_CONTENTS = ("extras.job",)
# What Nautobot's provided_contents accepts (its registered datasource contents); only jobs are provided here.
NAUTOBOT_CONTENTS = (
    "extras.configcontextschema",
    "extras.configcontext",
    "extras.job",
    "extras.exporttemplate",
    "extras.graphqlquery",
    "data_validation.data_compliance_rule",
)
NAME_TAKEN = "Git repository with this name already exists."
SLUG_TAKEN = "Git repository with this slug already exists."
DEFAULT_REF = "main"
DEFAULT_INTERVAL = "5m"
SIGNATURE_HEADER = "X-Hub-Signature-256"
WEBHOOK_SECRET_SETTING = "JOBPLANE_API_GIT_WEBHOOK_SECRET"

# A repository's name is free text, as Nautobot's (a CharField of 255); its object name comes from the slug.
_NAME_MAX = 255
_OBJECT_NAME_MAX = 63  # the operator puts the object name in label values
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SLUG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLUG_MAX = 63
_INTERVAL = re.compile(r"^([0-9]+(s|m|h))+$")
_URL_MAX = 2048
_REF_MAX = 255
# git's rules for ref names (git check-ref-format), plus no leading "-" so a ref is never read as an option.
_REF_FORBIDDEN = re.compile(r"(\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\])")
# user@host:path, git's scp-like syntax for SSH (no "://", no port).
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/\s:]+)@)?(?P<host>[^@/\s:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<path>(?!//)\S*)$"
)
_URL_SCHEMES = ("http", "https", "ssh", "git", "file")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}

CREDENTIALS_IN_URL = (
    "The URL holds credentials: put them in a Secret of the namespace (keys username and password, "
    "a token going in password; or identity and known_hosts for SSH), labelled "
    "jobplane.io/secret-type: repository-credentials and with a key url holding the repository's URL or a "
    "prefix of it (the operator uses no other Secret), and give its name as secrets_group."
)
NO_CRD = (
    "The JobRepository resource is not installed in this cluster: apply the CRDs (crds/ or the Helm chart)."
)
# Where push payloads name the repository: GitHub and Gitea (repository.*), GitLab (project.*).
REPOSITORY_URL_KEYS = ("clone_url", "git_http_url", "http_url", "url", "html_url", "ssh_url", "git_ssh_url")
PROJECT_URL_KEYS = ("git_http_url", "git_ssh_url", "web_url")


class WebhookUnauthenticated(ApiError):
    """A webhook request without a signature: 401, as it gave no credentials at all."""

    status_code = 401
    code = "WebhookUnauthenticated"
    default_detail = f"The request is not signed: {SIGNATURE_HEADER} is missing."


# --- values (pure) ----------------------------------------------------------------------------------------


def sync_timestamp(now: datetime) -> str:
    """The sync-request annotation's value: RFC 3339 in UTC with microseconds, so each request differs."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_url(url: str) -> str:
    """A Git URL reduced to what names the repository, to match a push payload's URLs with a spec's.

    Scheme and host lowercased, userinfo, default port, query, trailing ``/`` and ``.git`` dropped;
    ``user@host:path`` is read as ``ssh://host/path``.
    """
    text = url.strip()
    scp = _SCP_LIKE.fullmatch(text) if "://" not in text else None
    port: int | None = None
    if scp is not None:
        scheme, host, path = "ssh", scp["host"].strip("[]").lower(), "/" + scp["path"].lstrip("/")
    else:
        try:
            parts = urlsplit(text)
        except ValueError:  # a broken IPv6 literal: nothing to reduce, it can only match itself
            return text
        scheme, host, path = parts.scheme.lower(), parts.hostname or "", parts.path
        try:
            port = parts.port
        except ValueError:
            port = None
    if port is not None and port == _DEFAULT_PORTS.get(scheme):
        port = None
    if ":" in host:
        host = f"[{host}]"
    path = path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{path}"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a repository's remote_url, or None. Credentials in it are always refused."""
    if not url.strip():
        return "This field may not be blank."
    if len(url) > _URL_MAX:
        return f"Ensure this field has no more than {_URL_MAX} characters."
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        return "The URL may not contain spaces or control characters."
    if url.startswith("-"):
        return "The URL may not start with '-'."
    if "://" not in url:
        head = url.split("@", 1)[0] if "@" in url else ""
        if ":" in head:
            return CREDENTIALS_IN_URL
        if _SCP_LIKE.fullmatch(url):
            return None
        return "Enter a Git URL: http(s)://, ssh://, git:// or file://, or user@host:path for SSH."
    try:
        parts = urlsplit(url)
    except ValueError:
        return "The URL's host is not valid (a broken [IPv6] address)."
    scheme = parts.scheme.lower()
    if scheme not in _URL_SCHEMES:
        return f"Unsupported URL scheme {parts.scheme!r}: use http, https, ssh, git or file."
    if parts.password is not None or ("@" in parts.netloc and scheme in ("http", "https")):
        # Over HTTP even a user name alone is usually a token (https://<token>@host/...).
        return CREDENTIALS_IN_URL
    if scheme == "file":
        return None if parts.path else "A file URL needs a path."
    if not parts.hostname:
        return "The URL has no host."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "The URL's port is not a number between 0 and 65535."
    return None


def slug_from_name(name: str) -> str:
    """Nautobot's default slug (``slugify_dashes_to_underscores``): "a" before a name that does not start with
    a letter or ``_``, then Django's slugify (ASCII, lowercase, punctuation dropped, spaces and dashes as
    one ``-``), then ``-`` as ``_``; cut to the slug's length limit."""
    content = name if name and re.fullmatch(r"[_A-Za-z]", name[0]) else f"a{name}"
    value = unicodedata.normalize("NFKD", content).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    value = re.sub(r"[-\s]+", "-", value).strip("-_")
    return value.replace("-", "_")[:_SLUG_MAX].rstrip("_") or "a"


def object_name_from_slug(slug: str) -> str:
    """The JobRepository's metadata.name for a slug: lowercase, ``_`` as ``-`` (a Kubernetes name)."""
    name = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")[:_OBJECT_NAME_MAX].rstrip("-")
    return name or "repository"


def _shadows_installed_module(slug: str) -> bool:
    if slug in sys.stdlib_module_names or slug in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(slug)
    except (ImportError, ValueError):
        return False
    # A namespace package (origin None) is only a directory on sys.path; it shadows nothing in a pod.
    return spec is not None and spec.origin is not None


def slug_problem(slug: str) -> str | None:
    if not _SLUG.fullmatch(slug) or keyword.iskeyword(slug):
        return (
            "Enter a Python identifier (letters, digits and _, not starting with a digit): "
            "the repository's jobs import as <slug>.jobs.<module>."
        )
    if len(slug) > _SLUG_MAX:
        return f"Ensure this field has no more than {_SLUG_MAX} characters."
    if _shadows_installed_module(slug):
        return f"{slug!r} is the name of an installed Python module: choose another slug."
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` (already stripped, as DRF's CharField strips it) cannot be a repository's name."""
    if not name:
        return "This field may not be blank."
    if len(name) > _NAME_MAX:
        return f"Ensure this field has no more than {_NAME_MAX} characters."
    if "\x00" in name:
        return "Null characters are not allowed."
    return None


def ref_problem(ref: str) -> str | None:
    if not ref:
        return "This field may not be blank."
    if len(ref) > _REF_MAX:
        return f"Ensure this field has no more than {_REF_MAX} characters."
    if ref.startswith(("-", "/", ".")) or ref.endswith(("/", ".", ".lock")) or _REF_FORBIDDEN.search(ref):
        return "Enter a branch, tag or commit name as git allows it (git check-ref-format)."
    return None


def _secret_problem(name: str) -> str | None:
    if len(name) > 253 or not _SECRET_NAME.fullmatch(name):
        return "Enter the name of a Secret of the namespace (a Kubernetes name)."
    return None


def _interval_problem(interval: str) -> str | None:
    if len(interval) > 32 or not _INTERVAL.fullmatch(interval):
        return "Enter a duration such as 30s, 5m, 1h or 1h30m."
    return None


def contents_problems(contents: list[str]) -> list[str]:
    """Why ``provided_contents`` cannot be accepted: a value Nautobot does not know (its own message), one
    it knows but jobplane does not provide, or no extras.job (the operator would install jobs anyway)."""
    problems = [f'"{value}" is not a valid choice.' for value in contents if value not in NAUTOBOT_CONTENTS]
    unsupported = sorted({value for value in contents if value in NAUTOBOT_CONTENTS} - set(PROVIDED_CONTENTS))
    if unsupported:
        problems.append(
            f"Only jobs (extras.job) are provided by Git repositories here, not {', '.join(unsupported)}: "
            "remove it, or keep that content in Nautobot."
        )
    if not problems and "extras.job" not in contents:
        problems.append("Git repositories here provide jobs: include extras.job.")
    return problems


# --- records ----------------------------------------------------------------------------------------------


def repository_record(repository: JobRepository | Mapping[str, Any], base_url: str) -> GitRepositoryRead:
    """The Nautobot GitRepository record of a JobRepository."""
    repository = JobRepository.of(repository)
    meta, spec = repository.metadata, repository.spec
    status = repository.status or JobRepositoryStatus()
    conditions = {condition.type: condition for condition in status.conditions}
    synced_condition, degraded_condition = conditions.get("Synced"), conditions.get("Degraded")
    synced = synced_condition is not None and synced_condition.status == "True"
    degraded = degraded_condition is not None and degraded_condition.status == "True"
    telling = degraded_condition if degraded else synced_condition
    created = parse_time(meta.creation_timestamp)
    last_sync = parse_time(status.last_sync_time)
    uid = meta.uid
    name = repository_display_name(repository)
    return GitRepositoryRead(
        id=uuid.UUID(str(uid)),
        display=name,
        url=f"{base_url}/api/extras/git-repositories/{uid}/",
        name=name,
        slug=spec.slug,
        remote_url=spec.url,
        branch=spec.ref or DEFAULT_REF,
        secrets_group=spec.credentials_secret_ref or None,
        provided_contents=list(PROVIDED_CONTENTS),
        current_head=str(status.commit or ""),
        created=created,
        last_updated=max(created, last_sync) if created and last_sync else (last_sync or created),
        interval=spec.interval or DEFAULT_INTERVAL,
        suspend=spec.suspend,
        status=GitRepositoryStatusRead(
            synced=synced,
            degraded=degraded,
            message=(telling.message if telling is not None else "") or None,
            class_paths=list(status.class_paths),
            import_errors=dict(status.import_errors),
            last_sync_time=last_sync,
        ),
        job_repository=JobRepositoryReference(namespace=str(meta.namespace or ""), name=str(meta.name)),
    )


FILTER_FIELDS = ("id", "name", "slug", "remote_url", "branch", "secrets_group")


def filter_repositories(
    records: Iterable[GitRepositoryRead], filters: Mapping[str, list[str]]
) -> list[GitRepositoryRead]:
    """Exact filters on id, name, slug, remote_url (compared normalised), branch and secrets_group."""
    selected = list(records)
    for key, values in filters.items():
        if key not in FILTER_FIELDS:
            continue  # as the jobs list: parameters that are not filters of this list are ignored
        if key == "remote_url":
            wanted = {normalise_url(value) for value in values}
            selected = [record for record in selected if normalise_url(record.remote_url) in wanted]
        else:
            exact = set(values)
            selected = [record for record in selected if str(getattr(record, key)) in exact]
    return selected


# --- Kubernetes access ------------------------------------------------------------------------------------


@contextmanager
def _kube_errors(what: str) -> Iterator[None]:
    """Kubernetes failures as API errors: gone → 404, changed meanwhile → 409, refused → 400, else 503."""
    try:
        yield
    except KubeNotFound:
        raise NotFound(f"{what} is gone.") from None
    except KubeConflict as exc:
        raise Conflict(exc.message) from None
    except KubeInvalid as exc:
        raise BadRequest(body={"non_field_errors": [exc.message]}) from None
    except KubeError as exc:
        raise Unavailable(exc.message) from None


def _all_repositories(kube: KubeGateway) -> list[JobRepository]:
    try:
        return kube.repositories()
    except KubeNotFound:
        raise Unavailable(NO_CRD) from None
    except KubeError as exc:
        raise Unavailable(exc.message) from None


def _allowed(principal: Principal, action: str, record: GitRepositoryRead) -> bool:
    return principal.allows(action, GIT_REPOSITORY, record.model_dump(mode="json"))


def list_repositories(
    *, kube: KubeGateway, principal: Principal, base_url: str, filters: Mapping[str, list[str]]
) -> list[GitRepositoryRead]:
    if not principal.has("view", GIT_REPOSITORY):
        raise PermissionDenied()
    records = [repository_record(repository, base_url) for repository in _all_repositories(kube)]
    visible = [record for record in records if _allowed(principal, "view", record)]
    return sorted(filter_repositories(visible, filters), key=lambda record: record.name)


def lookup_repository(
    *, kube: KubeGateway, principal: Principal, key: str, base_url: str, action: str = "view"
) -> tuple[JobRepository, GitRepositoryRead]:
    """The repository named by its id (uid), name or object name; 404 when unknown or not visible."""
    if not principal.has("view", GIT_REPOSITORY) and not principal.has(action, GIT_REPOSITORY):
        raise PermissionDenied()
    repository = find_repository(_all_repositories(kube), key)
    if repository is None:
        raise NotFound(f"No Git repository with id or name {key!r}.")
    record = repository_record(repository, base_url)
    if not (_allowed(principal, "view", record) or _allowed(principal, action, record)):
        raise NotFound()
    if action != "view" and not _allowed(principal, action, record):
        raise PermissionDenied(f"You do not have permission to {action} this Git repository.")
    return repository, record


def _spec_values(given: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The spec fields (camelCase) of the fields given, each checked; problems go into ``errors``."""
    spec: dict[str, Any] = {}
    checks = (
        ("remote_url", "url", url_problem),
        ("branch", "ref", ref_problem),
        ("interval", "interval", _interval_problem),
    )
    for field, crd_field, problem_of in checks:
        if field not in given:
            continue
        value = given[field]
        problem = "This field may not be null." if value is None else problem_of(value)
        if problem:
            errors.setdefault(field, []).append(problem)
        else:
            spec[crd_field] = value
    if "secrets_group" in given:
        secret = given["secrets_group"] or None  # "" clears it as null does
        problem = _secret_problem(secret) if secret is not None else None
        if problem:
            errors.setdefault("secrets_group", []).append(problem)
        else:
            spec["credentialsSecretRef"] = secret
    if "suspend" in given:
        if given["suspend"] is None:
            errors.setdefault("suspend", []).append("This field may not be null.")
        else:
            spec["suspend"] = bool(given["suspend"])
    if "provided_contents" in given:
        if given["provided_contents"] is None:
            errors.setdefault("provided_contents", []).append("This field may not be null.")
        else:
            errors.setdefault("provided_contents", []).extend(contents_problems(given["provided_contents"]))
            if not errors["provided_contents"]:
                del errors["provided_contents"]
    return spec


def _name_value(given: Mapping[str, Any], errors: dict[str, list[str]]) -> str | None:
    """The name sent, stripped as DRF strips a CharField; None when not sent or refused (into ``errors``)."""
    if "name" not in given:
        return None
    if given["name"] is None:
        errors.setdefault("name", []).append("This field may not be null.")
        return None
    name = str(given["name"]).strip()
    if problem := name_problem(name):
        errors.setdefault("name", []).append(problem)
        return None
    return name


def _name_in_use(repositories: list[JobRepository], name: str, exclude_uid: str | None = None) -> bool:
    return any(
        repository_display_name(repository) == name and repository.metadata.uid != exclude_uid
        for repository in repositories
    )


def _url_problem_of_others(
    repositories: list[JobRepository], url: str, exclude_uid: str | None = None
) -> str | None:
    """Nautobot's check: no two repositories with the same remote_url may provide the same contents. Jobs
    are all a repository provides here, so the same URL (compared as written, as Nautobot compares it) is
    refused whatever its branch. The other repository is not named: the caller may not be allowed to see it.
    """
    for repository in repositories:
        if repository.spec.url == url and repository.metadata.uid != exclude_uid:
            return (
                f"The remote URL {url} is already a Git repository's, which provides jobs: two repositories "
                "of one URL would provide the same jobs. Change the branch of that repository instead."
            )
    return None


def _slug_in_use(
    kube: KubeGateway, repositories: list[JobRepository], slug: str, errors: dict[str, list[str]]
) -> None:
    object_name = object_name_from_slug(slug)
    for repository in repositories:
        if repository.spec.slug == slug:
            errors.setdefault("slug", []).append(SLUG_TAKEN)
            return
        if repository.metadata.name == object_name:
            errors.setdefault("slug", []).append(
                f"The JobRepository name {object_name!r} made from this slug is already Git repository "
                f"{repository_display_name(repository)!r}'s: choose another slug."
            )
            return
    for definition in kube.definitions():
        status = definition.status
        if status is None or (status.source is not None and status.source.type == "repository"):
            continue
        if not status.installed:
            continue
        class_path = str(status.class_path or "")
        if class_path.split(".", 1)[0] == slug:
            errors.setdefault("slug", []).append(
                f"{slug!r} is already the module of the installed job {class_path}: choose another slug."
            )
            return


def create_repository(
    *, kube: KubeGateway, principal: Principal, write: GitRepositoryWrite, base_url: str
) -> GitRepositoryRead:
    """A new JobRepository; the operator syncs it at once and its jobs appear as JobDefinitions."""
    if not principal.has("add", GIT_REPOSITORY):
        raise PermissionDenied()
    # Read-only and unknown keys were dropped by the schema, as Nautobot's serializer drops them.
    given = write.model_dump(exclude_unset=True)
    errors: dict[str, list[str]] = {}
    for field in ("name", "remote_url"):
        if field not in given:
            errors.setdefault(field, []).append("This field is required.")
    name = _name_value(given, errors)
    # Blank or null: made from the name, as Nautobot's AutoSlugField makes it.
    slug = given.get("slug") or (slug_from_name(name) if name else None)
    if slug is not None and (problem := slug_problem(slug)):
        errors.setdefault("slug", []).append(problem)
    values = _spec_values({key: value for key, value in given.items() if key != "name"}, errors)
    if errors:
        raise BadRequest(body=errors)
    assert name is not None
    assert slug is not None
    repositories = _all_repositories(kube)
    if _name_in_use(repositories, name):
        errors["name"] = [NAME_TAKEN]
    _slug_in_use(kube, repositories, slug, errors)
    if errors:
        raise BadRequest(body=errors)
    # After the fields, as Nautobot's model validation runs once the fields are valid.
    if problem := _url_problem_of_others(repositories, values["url"]):
        raise BadRequest(body={"non_field_errors": [problem]})
    object_name = object_name_from_slug(slug)
    spec = {
        "url": values["url"],
        "ref": values.get("ref", DEFAULT_REF),
        "slug": slug,
        "interval": values.get("interval", DEFAULT_INTERVAL),
        "suspend": values.get("suspend", False),
    }
    if values.get("credentialsSecretRef"):
        spec["credentialsSecretRef"] = values["credentialsSecretRef"]
    try:
        with _kube_errors(f"Git repository {name}"):
            created = kube.create_repository(object_name, spec, {REPOSITORY_DISPLAY_NAME: name})
    except Conflict:  # created meanwhile by another request, with the same slug
        raise BadRequest(body={"slug": [SLUG_TAKEN]}) from None
    except NotFound:  # the resource type itself is unknown
        raise Unavailable(NO_CRD) from None
    return repository_record(created, base_url)


def update_repository(
    *, kube: KubeGateway, principal: Principal, key: str, write: GitRepositoryWrite, base_url: str
) -> GitRepositoryRead:
    """A PATCH (or a PUT, taken as one) of the fields sent; the name may change, the slug cannot."""
    repository, record = lookup_repository(
        kube=kube, principal=principal, key=key, base_url=base_url, action="change"
    )
    given = write.model_dump(exclude_unset=True)
    errors: dict[str, list[str]] = {}
    new_name = _name_value(given, errors)
    if new_name == record.name:
        new_name = None
    elif new_name is not None and _name_in_use(_all_repositories(kube), new_name, str(record.id)):
        errors["name"] = [NAME_TAKEN]
    if given.get("slug") and given["slug"] != record.slug:
        # Nautobot's words; here the object name and the jobs' class paths depend on it too.
        errors["slug"] = [
            f"Slug cannot be changed once set. Current slug is {record.slug}, "
            f"requested slug is {given['slug']}"
        ]
    values = _spec_values(given, errors)
    if errors:
        raise BadRequest(body=errors)
    current = repository.spec.model_dump(by_alias=True)  # the keys of _spec_values's
    url = values.get("url", current.get("url"))
    if url and (problem := _url_problem_of_others(_all_repositories(kube), url, str(record.id))):
        raise BadRequest(body={"non_field_errors": [problem]})
    body: dict[str, Any] = {}
    spec_patch = {field: value for field, value in values.items() if current.get(field) != value}
    if spec_patch:
        body["spec"] = spec_patch
    if new_name is not None:
        body["metadata"] = {"annotations": {REPOSITORY_DISPLAY_NAME: new_name}}
    if not body:
        return record
    name = str(repository.metadata.name)
    with _kube_errors(f"Git repository {name}"):
        updated = kube.patch_repository(name, body)
    changed = sorted(spec_patch) + (["name"] if new_name is not None else [])
    log.info("changed repository repository=%s fields=%s", name, ",".join(changed))
    return repository_record(updated, base_url)


def delete_repository(*, kube: KubeGateway, principal: Principal, key: str, base_url: str) -> None:
    """Delete the JobRepository; the operator marks its jobs not installed (they are kept)."""
    repository, _ = lookup_repository(
        kube=kube, principal=principal, key=key, base_url=base_url, action="delete"
    )
    name = str(repository.metadata.name)
    with _kube_errors(f"Git repository {name}"):
        kube.delete_repository(name)


def sync_repository(
    *,
    kube: KubeGateway,
    session: Session,
    principal: Principal,
    key: str,
    base_url: str,
    now: datetime,
) -> GitRepositorySyncResponse:
    """Ask the operator to sync now (Nautobot's sync needs change on the repository) and answer with the
    sync's job result, PENDING until the operator acts (services/sync_results.py follows it)."""
    repository, record = lookup_repository(
        kube=kube, principal=principal, key=key, base_url=base_url, action="change"
    )
    name = str(repository.metadata.name)
    if repository.spec.suspend:
        raise Conflict(f"Repository {record.name} is suspended: set suspend to false to sync it.")
    requested_at = sync_timestamp(now)
    with _kube_errors(f"Git repository {name}"):
        kube.request_sync(name, requested_at)
    result = new_sync_result(
        repository=repository, requested_at=requested_at, user=principal.username, now=now
    )
    session.add(result)
    session.flush()
    return GitRepositorySyncResponse(
        message=f"Repository {record.name} sync job added to queue.",
        job_result=result_record(result, base_url, users=user_ids(session, [result.user])),
    )


# --- the push webhook -------------------------------------------------------------------------------------


def verify_signature(secret: SecretStr | None, body: bytes, signature: str | None) -> None:
    """Check ``X-Hub-Signature-256: sha256=<hex>`` against the HMAC-SHA256 of the raw body, in constant time.

    No secret configured → 403 (the webhook is off); no signature → 401; a wrong one → 403.
    """
    key = secret.get_secret_value() if secret is not None else ""
    if not key:
        raise PermissionDenied(
            f"The Git webhook is off: set {WEBHOOK_SECRET_SETTING} on the API, and the same secret on "
            "the Git server's webhook."
        )
    if not signature:
        raise WebhookUnauthenticated(
            f"{SIGNATURE_HEADER} is missing: the Git server must sign its requests with the webhook secret."
        )
    expected = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    algorithm, _, digest = signature.strip().partition("=")
    given = f"{algorithm.lower()}={digest.lower()}".encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), given):
        raise PermissionDenied(
            f"The signature does not match: the Git server and {WEBHOOK_SECRET_SETTING} must hold the "
            "same secret."
        )


def parse_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The push event: a JSON body, or GitHub's form encoding (``payload=<json>``)."""
    text = body.decode("utf-8", "replace")
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        text = (parse_qs(text).get("payload") or [""])[0]
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"JSON parse error - {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(payload, dict):
        raise BadRequest(body={"non_field_errors": ["Invalid data. Expected a dictionary."]})
    return payload


def webhook_urls(payload: Mapping[str, Any]) -> set[str]:
    """The normalised URLs a push payload gives for its repository."""
    found: set[str] = set()
    for section, keys in (("repository", REPOSITORY_URL_KEYS), ("project", PROJECT_URL_KEYS)):
        part = payload.get(section)
        if not isinstance(part, Mapping):
            continue
        for key in keys:
            value = part.get(key)
            if isinstance(value, str) and value.strip() and len(value) <= _URL_MAX:
                found.add(normalise_url(value))
    return found


_OBJECT_NAME = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def pushed_ref(payload: Mapping[str, Any]) -> str | None:
    """The full ref a push payload says it moved (GitHub, GitLab, Gitea: ``ref``), or None."""
    ref = payload.get("ref")
    return ref if isinstance(ref, str) and ref.startswith("refs/") and len(ref) <= 255 else None


def follows(ref: str, pushed: str | None) -> bool:
    """Whether a push of the ref ``pushed`` can move a repository that follows ``ref``.

    A commit never moves. A branch or tag moves with a push of itself only; a push that names no ref (a
    ping, a host whose payload differs) may have moved any of them.
    """
    if _OBJECT_NAME.match(ref):
        return False
    return pushed is None or pushed in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}")


def matching_repositories(
    repositories: Iterable[JobRepository], urls: set[str], pushed: str | None = None
) -> list[str]:
    """Names of the repositories whose spec.url is one of ``urls`` (normalised) and whose ref the push of
    ``pushed`` can move, sorted; suspended ones are left out (the operator ignores their sync requests)."""
    names = []
    for repository in repositories:
        spec = repository.spec
        if spec.suspend or normalise_url(spec.url) not in urls:
            continue
        if follows(spec.ref or "main", pushed):
            names.append(str(repository.metadata.name))
    return sorted(names)


def handle_webhook(
    *,
    kube: KubeGateway,
    secret: SecretStr | None,
    body: bytes,
    content_type: str,
    signature: str | None,
    now: datetime,
) -> GitWebhookResponse:
    """A push notification: request a sync of every repository with the pushed URL that follows the
    pushed branch or tag (a push to a feature branch costs no sync pod).

    Never logs the body or the signature; only the names synced (or the URLs matched when none was).
    """
    verify_signature(secret, body, signature)
    payload = parse_payload(body, content_type)
    urls = webhook_urls(payload)
    names = matching_repositories(_all_repositories(kube), urls, pushed_ref(payload))
    requested_at = sync_timestamp(now)
    synced: list[str] = []
    for name in names:
        try:
            kube.request_sync(name, requested_at)
        except KubeNotFound:
            continue  # deleted meanwhile
        except KubeError as exc:
            raise Unavailable(exc.message) from None
        synced.append(name)
    if synced:
        log.info("webhook requested syncs repositories=%s", ",".join(synced))
    else:
        log.info("webhook matched no repository urls=%s", ",".join(sorted(urls)) or "-")
    return GitWebhookResponse(synced=synced)
