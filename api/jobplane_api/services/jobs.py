"""Jobs as Nautobot shows them, read from the JobDefinitions; patching and deleting them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobplane_api.errors import BadRequest, Conflict, NotFound, PermissionDenied, Unavailable
from jobplane_api.kube import KubeConflict, KubeError, KubeNotFound
from jobplane_api.schemas import JobRead, JobUpdate, JobVariableRead, NestedObject
from jobplane_api.services.filters import parse_boolean
from jobplane_api.services.job_queues import QUEUE
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "DEFAULT_QUEUE",
    "JOB",
    "delete_job",
    "filter_jobs",
    "find_job",
    "job_record",
    "job_variables",
    "list_jobs",
    "patch_job",
]

JOB = "extras.job"
DEFAULT_QUEUE = "default"
# Nautobot's overridable fields, in the API's snake_case and the CRD's camelCase.
OVERRIDABLE = {
    "grouping": "grouping",
    "name": "name",
    "description": "description",
    "approval_required": "approvalRequired",
    "dryrun_default": "dryrunDefault",
    "has_sensitive_variables": "hasSensitiveVariables",
    "hidden": "hidden",
    "is_singleton": "isSingleton",
    "soft_time_limit": "softTimeLimit",
    "time_limit": "timeLimit",
    "task_queues": "taskQueues",
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def class_path_of(definition: JobDefinition) -> str:
    return definition.class_path or ""


def job_queue_names(definition: JobDefinition) -> list[str]:
    return list(definition.effective().task_queues or [DEFAULT_QUEUE])


def job_record(
    definition: JobDefinition | Mapping[str, Any], base_url: str, queue_ids: Mapping[str, str] | None = None
) -> JobRead:
    """The Nautobot job record of a JobDefinition (the model, or the object as Kubernetes sends it)."""
    definition = JobDefinition.of(definition)
    meta = definition.metadata
    spec = definition.spec
    status = definition.status
    effective = definition.effective()
    class_path = class_path_of(definition)
    module_name, _, class_name = class_path.rpartition(".")
    name = str(effective.name or class_name or meta.name)
    uid = str(meta.uid)
    queues = job_queue_names(definition)
    queue_ids = queue_ids or {}

    def queue_ref(queue: str) -> NestedObject | None:
        """The JobQueue resource of that name, or None when there is none (a queue named in code only)."""
        queue_id = queue_ids.get(queue)
        if not queue_id:
            return None
        return NestedObject(
            id=uuid.UUID(queue_id),
            object_type="extras.jobqueue",
            url=f"{base_url}/api/extras/job-queues/{queue_id}/",
        )

    def flag(field: str) -> bool:
        return getattr(spec.overrides, field) is not None  # the API's names are the model's

    created = parse_time(meta.creation_timestamp)
    return JobRead(
        id=uuid.UUID(uid),
        display=name,
        url=f"{base_url}/api/extras/jobs/{uid}/",
        natural_slug=meta.name,
        module_name=module_name,
        job_class_name=class_name,
        class_path=class_path,
        grouping=str(effective.grouping or module_name),
        name=name,
        description=str(effective.description or ""),
        installed=bool(status is not None and status.installed),
        enabled=spec.enabled,
        has_sensitive_variables=effective.has_sensitive_variables is not False,
        approval_required=bool(effective.approval_required),
        hidden=bool(effective.hidden),
        dryrun_default=bool(effective.dryrun_default),
        soft_time_limit=float(effective.soft_time_limit or 0),
        time_limit=float(effective.time_limit or 0),
        supports_dryrun=bool(status is not None and status.supports_dryrun),
        is_singleton=bool(effective.is_singleton),
        grouping_override=flag("grouping"),
        name_override=flag("name"),
        description_override=flag("description"),
        approval_required_override=flag("approval_required"),
        dryrun_default_override=flag("dryrun_default"),
        hidden_override=flag("hidden"),
        soft_time_limit_override=flag("soft_time_limit"),
        time_limit_override=flag("time_limit"),
        has_sensitive_variables_override=flag("has_sensitive_variables"),
        is_singleton_override=flag("is_singleton"),
        task_queues=queues,
        task_queues_override=flag("task_queues"),
        job_queues=[ref for ref in map(queue_ref, queues) if ref is not None],
        job_queues_override=flag("task_queues"),
        default_job_queue=queue_ref(queues[0]) if queues else None,
        default_job_queue_override=flag("task_queues"),
        created=created,
        last_updated=created,
        notes_url=None,
    )


def queue_ids(kube: KubeGateway) -> dict[str, str]:
    """The uid of each JobQueue, by name."""
    return {str(queue.metadata.name): str(queue.metadata.uid) for queue in kube.queues()}


# --- filters --------------------------------------------------------------------------------------------

TEXT_FIELDS = ("grouping", "name", "module_name", "job_class_name", "class_path")
FLAG_FIELDS = ("installed", "enabled", "hidden", "has_sensitive_variables", "is_singleton")
TEXT_LOOKUPS: dict[str, Callable[[str, str], bool]] = {
    "isw": str.startswith,
    "iew": str.endswith,
    "ic": lambda text, part: part in text,
    "ie": str.__eq__,
}


def _matcher(key: str, values: list[str]) -> Callable[[JobRead], bool] | None:
    """One filter of the job list as a predicate; None for parameters that are not job filters."""
    if key in FLAG_FIELDS:
        flags = {parse_boolean(key, value) for value in values}
        return lambda record: getattr(record, key) in flags
    if key in TEXT_FIELDS or key == "id":
        exact = set(values)
        return lambda record: str(getattr(record, key)) in exact
    field, _, lookup = key.rpartition("__")
    if lookup in TEXT_LOOKUPS:
        if field not in TEXT_FIELDS:
            raise BadRequest(body={key: [f"Unknown filter field {field!r}."]})
        test, lowered = TEXT_LOOKUPS[lookup], [value.lower() for value in values]
        return lambda record: any(test(str(getattr(record, field)).lower(), value) for value in lowered)
    if key == "q":
        words = [value.lower() for value in values if value]

        def search(record: JobRead) -> bool:
            text = f"{record.name} {record.grouping} {record.description} {record.class_path}".lower()
            return all(word in text for word in words)

        return search
    return None


def filter_jobs(records: Iterable[JobRead], filters: Mapping[str, list[str]]) -> list[JobRead]:
    """Nautobot's job filters: installed, enabled, hidden, grouping, name, module_name(__isw), q."""
    matchers = [m for key, values in filters.items() if (m := _matcher(key, values)) is not None]
    return [record for record in records if all(match(record) for match in matchers)]


def _visible(principal: Principal, record: JobRead, action: str = "view") -> bool:
    return principal.allows(action, JOB, record.model_dump(mode="json"))


def list_jobs(
    *, kube: KubeGateway, principal: Principal, base_url: str, filters: Mapping[str, list[str]]
) -> list[JobRead]:
    if not principal.has("view", JOB):
        raise PermissionDenied()
    ids = queue_ids(kube)
    records = [job_record(definition, base_url, ids) for definition in kube.definitions()]
    visible = [record for record in records if _visible(principal, record)]
    return sorted(filter_jobs(visible, filters), key=lambda record: (record.grouping, record.name))


def find_job(
    *, kube: KubeGateway, principal: Principal, key: str, base_url: str, action: str = "view"
) -> tuple[JobDefinition, JobRead]:
    """The job named by a UUID, its name or class path; 404 when unknown or not visible to the caller."""
    if not principal.has("view", JOB) and not principal.has(action, JOB):
        raise PermissionDenied()
    definition = kube.find_definition(key)
    if definition is None:
        raise NotFound(f"No job with id or name {key!r}." if not _UUID.match(key) else None)
    record = job_record(definition, base_url, queue_ids(kube))
    if not (_visible(principal, record) or _visible(principal, record, action)):
        raise NotFound()
    if action != "view" and not _visible(principal, record, action):
        raise PermissionDenied(f"You do not have permission to {action} this job.")
    return definition, record


def spec_patch(update: JobUpdate) -> dict[str, Any]:
    """The JSON merge patch of a JobDefinition's spec for a PATCH of its job record.

    Read-only and unknown keys never get here: the schema drops them, as Nautobot's serializer does.
    """
    given = update.model_dump(exclude_unset=True)
    patch: dict[str, Any] = {}
    if given.get("enabled") is not None:
        patch["enabled"] = given["enabled"]
    elif "enabled" in given:
        raise BadRequest(body={"enabled": ["This field may not be null."]})
    overrides: dict[str, Any] = {}
    for field, crd_field in OVERRIDABLE.items():
        flag = given.get(f"{field}_override")
        if field == "task_queues":
            if sets_job_queues(update):
                continue  # Nautobot's job_queues and default_job_queue decide (queue_patch)
            if flag is None and field in given:
                flag = given.get("job_queues_override")
        if flag is False:
            overrides[crd_field] = None  # merge-patch null: the code's value applies again
        elif field in given and given[field] is not None:
            overrides[crd_field] = given[field]
        elif flag is True and field not in given:
            raise BadRequest(body={field: [f"{field}_override is true: give the value of {field} too."]})
    if overrides:
        patch["overrides"] = overrides
    return patch


QUEUE_FIELDS = ("job_queues", "default_job_queue", "job_queues_override", "default_job_queue_override")


def sets_job_queues(update: JobUpdate) -> bool:
    """Whether the update names queues Nautobot's way (job_queues, default_job_queue, their flags) rather
    than through task_queues alone; then task_queues, read-only in Nautobot, is ignored."""
    given = update.model_fields_set
    return "job_queues" in given or "default_job_queue" in given


def _queue_reference(field: str, reference: Any, queues: Sequence[JobQueue]) -> str:
    """The name of the JobQueue a reference names: its id, name or API URL, or an object holding one of
    them (``{"id"}``, ``{"url"}``, ``{"name"}``, as a record shows one), as Nautobot's related fields do."""
    value = reference
    if isinstance(reference, dict):
        value = next((reference[key] for key in ("id", "url", "name") if reference.get(key)), None)
        if value is None:
            raise BadRequest(body={field: ["Name a job queue by its id, name or url."]})
    if not isinstance(value, str) or not value:
        raise BadRequest(body={field: [f"{reference!r} is not a job queue: give its id, name or url."]})
    key = value.rstrip("/").rsplit("/", 1)[-1] if "://" in value else value
    for queue in queues:
        if key in (queue.metadata.uid, queue.metadata.name):
            return str(queue.metadata.name)
    # A queue the caller may not view is as absent as one that does not exist.
    raise BadRequest(body={field: [f"There is no job queue {value!r} (looked up by id, name and url)."]})


def _ids(references: list[Any]) -> list[str]:
    return [str(ref.get("id") if isinstance(ref, dict) else ref) for ref in references]


def queue_patch(
    update: JobUpdate, definition: JobDefinition, record: JobRead, queues: Sequence[JobQueue]
) -> dict[str, Any]:
    """The ``taskQueues`` override for Nautobot's queue fields: ``{}`` (unchanged), ``{"taskQueues": list}``
    (the default first) or ``{"taskQueues": None}`` (the code's queues again).

    As in Nautobot the default is always one of the job's queues: job_queues without it keep it, and a
    default not among them joins them. One override holds both here, so the two flags act as one: a flag
    true sets it (alone: to the queues in effect); a flag false drops it, and refuses queues other than the
    code's. A value given without a flag sets it. ``queues`` are the JobQueues the caller may view. A value
    equal to what the record shows (a record sent back) chooses nothing, even ``[]`` or null where the
    job's queues have no JobQueue resource.
    """
    given = update.model_dump(include=set(QUEUE_FIELDS), exclude_unset=True)
    if not given or ("task_queues" in update.model_fields_set and not sets_job_queues(update)):
        return {}  # nothing of Nautobot's queue fields, or task_queues with a flag (spec_patch's)
    current = job_queue_names(definition)
    code_metadata = definition.status.code if definition.status is not None else None
    code = list((code_metadata.task_queues if code_metadata is not None else None) or [DEFAULT_QUEUE])
    default, listed = current[0], current
    chose_default = chose_queues = False
    if "default_job_queue" in given:
        reference = given["default_job_queue"]
        shown = str(record.default_job_queue.id) if record.default_job_queue else None
        if reference is None and shown is not None:
            raise BadRequest(body={"default_job_queue": ["This field may not be null."]})
        if reference is not None and _ids([reference]) != [shown]:
            default, chose_default = _queue_reference("default_job_queue", reference, queues), True
    if "job_queues" in given:
        references = given["job_queues"]
        if not isinstance(references, list):
            raise BadRequest(
                body={"job_queues": ["Give a list of job queues (ids, names, urls or objects)."]}
            )
        if _ids(references) != [str(ref.id) for ref in record.job_queues]:
            if not references:
                raise BadRequest(body={"job_queues": ["A job needs at least one queue."]})
            listed, chose_queues = [_queue_reference("job_queues", ref, queues) for ref in references], True
    wanted = list(dict.fromkeys([default, *listed]))
    overridden = definition.spec.overrides.task_queues is not None
    chose = chose_default or chose_queues
    flags = {given.get("job_queues_override"), given.get("default_job_queue_override")}
    if True in flags or (chose and False not in flags):
        return {} if overridden and wanted == current else {"taskQueues": wanted}
    if False in flags:
        # What was given must then be the code's own queues (and default), as a record of them shows it.
        as_code = [default if chose_default else code[0], *(listed if chose_queues else code)]
        if chose and list(dict.fromkeys(as_code)) != code:
            raise BadRequest(
                body={
                    "job_queues_override": [
                        "The override flag is false, so the job's queues follow its code "
                        f"({', '.join(code)}): set it true to choose other queues."
                    ]
                }
            )
        return {"taskQueues": None} if overridden else {}
    return {}


def patch_job(
    *, kube: KubeGateway, principal: Principal, key: str, update: JobUpdate, base_url: str
) -> JobRead:
    definition, record = find_job(kube=kube, principal=principal, key=key, base_url=base_url, action="change")
    patch = spec_patch(update)
    queues = [
        queue
        for queue in kube.queues()
        if principal.allows("view", QUEUE, {"id": queue.metadata.uid, "name": queue.metadata.name})
    ]
    if queue_override := queue_patch(update, definition, record, queues):
        patch.setdefault("overrides", {}).update(queue_override)
    if not patch:
        return job_record(definition, base_url, queue_ids(kube))
    try:
        updated = kube.patch_definition_spec(str(definition.metadata.name), patch)
    except KubeNotFound:
        raise NotFound() from None
    except KubeConflict as exc:
        raise Conflict(str(exc)) from None
    except KubeError as exc:
        raise BadRequest(body={"detail": [str(exc)]}) from None
    return job_record(updated, base_url, queue_ids(kube))


def delete_job(*, kube: KubeGateway, principal: Principal, key: str, base_url: str) -> None:
    definition, _ = find_job(kube=kube, principal=principal, key=key, base_url=base_url, action="delete")
    try:
        kube.delete_definition(str(definition.metadata.name))
    except KubeNotFound:
        raise NotFound() from None
    except KubeError as exc:
        raise Unavailable(str(exc)) from None


def job_variables(definition: JobDefinition | Mapping[str, Any]) -> list[JobVariableRead]:
    """Nautobot's per-variable metadata, read back from the job's JSON Schema."""
    schema = JobDefinition.of(definition).variables_schema
    properties: dict[str, Any] = schema.get("properties") or {}
    order = schema.get("x-jobplane-order") or list(properties)
    required = set(schema.get("required") or [])
    variables = []
    for name in order:
        prop = properties.get(name) or {}
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        choices = prop.get("x-jobplane-choices")
        variables.append(
            JobVariableRead(
                name=name,
                type=str(prop.get("x-jobplane-type", "")),
                label=prop.get("title"),
                help_text=prop.get("description"),
                required=name in required,
                min_length=prop.get("minLength"),
                max_length=prop.get("maxLength"),
                min_value=prop.get("minimum"),
                max_value=prop.get("maximum"),
                choices=[list(choice) for choice in choices] if choices else None,
                default=prop.get("default"),
                model=prop.get("x-jobplane-model") or (items or {}).get("x-jobplane-model"),
            )
        )
    return variables
