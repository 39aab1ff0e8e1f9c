"""Request and response schemas of the Nautobot-compatible endpoints, apart from the ORM and CRD models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChoiceValue",
    "FileProxyRead",
    "GitRepositoryRead",
    "GitRepositoryStatusRead",
    "GitRepositorySyncResponse",
    "GitRepositoryWrite",
    "GitWebhookResponse",
    "JobLogEntryRead",
    "JobQueueRead",
    "JobRead",
    "JobRepositoryReference",
    "JobResultRead",
    "JobRunReference",
    "JobRunRequest",
    "JobRunResponse",
    "JobScheduleReference",
    "JobUpdate",
    "JobVariableRead",
    "NestedObject",
    "ScheduleRequest",
    "ScheduledJobRead",
    "ScheduledJobUpdate",
    "TokenProvision",
    "TokenRead",
    "TokenUserRead",
    "TokenWrite",
    "UserRead",
]


class NestedObject(BaseModel):
    """A related object as Nautobot renders it at depth 0: ``{"id", "object_type", "url"}``, all three set.

    A relation whose object cannot be found is ``null`` instead, never an object with empty keys: clients
    such as pynautobot follow ``url`` to load the object's other fields.
    """

    id: uuid.UUID | int
    object_type: str
    url: str


class JobRunReference(BaseModel):
    """Jobplane's addition to a job result: the JobRun resource that carried it out (it has no API URL)."""

    namespace: str
    name: str


class ChoiceValue(BaseModel):
    """A choice field: ``{"value": "SUCCESS", "label": "SUCCESS"}`` (a result's status is its own label)."""

    value: str
    label: str


class JobRead(BaseModel):
    """A job record: the JobDefinition's code metadata, overrides and admin state."""

    id: uuid.UUID
    object_type: Literal["extras.job"] = "extras.job"
    display: str
    url: str
    natural_slug: str
    module_name: str
    job_class_name: str
    class_path: str
    grouping: str
    name: str
    description: str
    installed: bool
    enabled: bool
    is_job_hook_receiver: bool = False
    is_job_button_receiver: bool = False
    has_sensitive_variables: bool
    approval_required: bool
    hidden: bool
    dryrun_default: bool
    read_only: bool = False
    soft_time_limit: float
    time_limit: float
    supports_dryrun: bool
    is_singleton: bool
    grouping_override: bool
    name_override: bool
    description_override: bool
    approval_required_override: bool
    dryrun_default_override: bool
    hidden_override: bool
    soft_time_limit_override: bool
    time_limit_override: bool
    has_sensitive_variables_override: bool
    is_singleton_override: bool
    task_queues: list[str]
    task_queues_override: bool
    job_queues: list[NestedObject]
    job_queues_override: bool
    default_job_queue: NestedObject | None
    default_job_queue_override: bool
    created: datetime | None
    last_updated: datetime | None
    tags: list[Any] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    notes_url: str | None = None


class JobUpdate(BaseModel):
    """A PATCH or PUT of a job: ``enabled`` and each overridable field with its ``*_override`` flag.

    A value given without its flag sets the override too; a flag set to false drops the override, so
    the value follows the code again. Any other key (a read-only field of the record, or one no job has)
    is ignored, as Nautobot's serializers ignore them.
    """

    model_config = ConfigDict(extra="ignore")

    enabled: bool | None = None
    grouping: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = None
    approval_required: bool | None = None
    dryrun_default: bool | None = None
    has_sensitive_variables: bool | None = None
    hidden: bool | None = None
    is_singleton: bool | None = None
    soft_time_limit: float | None = Field(default=None, ge=0)
    time_limit: float | None = Field(default=None, ge=0)
    task_queues: list[str] | None = None
    grouping_override: bool | None = None
    name_override: bool | None = None
    description_override: bool | None = None
    approval_required_override: bool | None = None
    dryrun_default_override: bool | None = None
    has_sensitive_variables_override: bool | None = None
    hidden_override: bool | None = None
    is_singleton_override: bool | None = None
    soft_time_limit_override: bool | None = None
    time_limit_override: bool | None = None
    task_queues_override: bool | None = None
    job_queues: Any = Field(
        default=None,
        description="The queues the job may run on: JobQueue ids, names, URLs or objects with one of them.",
    )
    default_job_queue: Any = Field(
        default=None, description="The queue a run takes when it names none; always among job_queues."
    )
    job_queues_override: bool | None = None
    default_job_queue_override: bool | None = None


class JobVariableRead(BaseModel):
    """One input of a job, as ``jobs/{id}/variables/`` lists it."""

    name: str
    type: str
    label: str | None = None
    help_text: str | None = None
    required: bool
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    choices: list[list[Any]] | None = None
    default: Any = None
    model: str | None = None


class ScheduleRequest(BaseModel):
    """Nautobot's schedule of a run: ``immediately`` runs now, any other interval creates a scheduled job
    (a JobSchedule). Checked by the schedules service, which answers in Nautobot's shapes; other keys are
    ignored."""

    model_config = ConfigDict(extra="ignore")

    name: Any = Field(default=None, description="Required unless immediately; unique among scheduled jobs.")
    interval: Any = Field(
        default="immediately", description="immediately, future, hourly, daily, weekly or custom."
    )
    start_time: Any = Field(
        default=None,
        description="ISO 8601, 15 s ahead or more; needed unless immediately or custom; naive means UTC.",
    )
    crontab: Any = Field(default=None, description="Five-field cron expression, with custom only.")
    time_zone: Any = Field(
        default=None,
        description="Jobplane's addition: the IANA zone of the intervals and crontab (default Etc/UTC).",
    )


class JobRunRequest(BaseModel):
    """The JSON body of ``jobs/{id}/run/``.

    Other top-level keys are ignored, as Nautobot ignores them (pynautobot sends ``job_id``); the job's
    variables go in ``data``, where an unknown one is refused.
    """

    model_config = ConfigDict(extra="ignore")

    data: Any = Field(default_factory=dict)
    task_queue: str | None = None
    job_queue: str | None = None
    schedule: ScheduleRequest | None = None
    dryrun: bool | None = None
    ignore_singleton_lock: bool = Field(
        default=False,
        alias="_ignore_singleton_lock",
        description=(
            "Nautobot's `_ignore_singleton_lock` (its run form's \"Ignore singleton lock\"): run a singleton "
            "job now even while another run of it is active, which keeps running. Needs run on the job."
        ),
    )


class JobResultRead(BaseModel):
    """A run's record: status, times, result, and what it ran on."""

    id: uuid.UUID
    object_type: Literal["extras.jobresult"] = "extras.jobresult"
    display: str
    url: str
    status: ChoiceValue
    name: str
    task_name: str
    date_created: datetime
    date_started: datetime | None
    date_done: datetime | None
    duration: float | None
    result: Any
    traceback: str | None
    task_args: list[Any] = Field(default_factory=list)
    task_kwargs: dict[str, Any] | None
    celery_kwargs: dict[str, Any]
    job_model: NestedObject | None
    user: NestedObject | None
    scheduled_job: NestedObject | None = None
    files: list[NestedObject]
    debug_log_count: int
    info_log_count: int
    success_log_count: int
    warning_log_count: int
    failure_log_count: int
    error_log_count: int
    critical_log_count: int
    reason: str | None
    message: str | None
    run: JobRunReference | None
    requested_by: str | None = Field(
        description=(
            "Who asked for the run: the API user, or the Kubernetes user who applied the JobRun. "
            "``user`` is the API user of that name, null when there is none."
        )
    )
    approved_by: str | None = Field(
        default=None,
        description=(
            "Jobplane's addition: who approved the run of an approval-required job, the API user or the "
            "Kubernetes user who annotated its JobRun or JobSchedule (Nautobot shows it on the scheduled "
            "job)."
        ),
    )
    approved_at: datetime | None = Field(
        default=None, description="Jobplane's addition: when it was approved."
    )
    commit: str | None
    image_digest: str | None = Field(
        default=None,
        description=(
            "Jobplane's addition: the digest of the image the run's pod ran (sha256:...), from the pod's "
            "status; with ``commit`` it tells exactly which code ran. Null until the pod has started."
        ),
    )
    waiting_reason: str | None = Field(
        default=None,
        description=(
            "Jobplane's addition: why the run has not started, while it waits (its JobRun's Waiting "
            "condition): QueueConcurrencyLimit, SingletonLockHeld, AwaitingApproval, InputsSecretMissing, "
            "Unschedulable, ImagePull, ContainerNotCreated or KueueAdmission. Null once it runs."
        ),
    )
    waiting_message: str | None = Field(
        default=None,
        description=(
            "Jobplane's addition: what the run waits for, for a person (the runs ahead of it in its "
            "queue, the run holding its singleton lock, the scheduler's message...). Null once it runs, "
            "and in lists."
        ),
    )
    dry_run: bool
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class JobScheduleReference(BaseModel):
    """Jobplane's addition to a scheduled job: the JobSchedule resource that holds it."""

    namespace: str
    name: str


class ScheduledJobRead(BaseModel):  # type: ignore[no-redef]  # a field named kwargs, as Nautobot's
    """A scheduled job (a JobSchedule) with Nautobot 3.1's ScheduledJob fields, and 2.x's approval ones."""

    id: uuid.UUID
    object_type: Literal["extras.scheduledjob"] = "extras.scheduledjob"
    display: str
    url: str
    natural_slug: str
    name: str
    task: str
    interval: str
    crontab: str
    queue: str
    job_queue: NestedObject | None
    job_model: NestedObject | None
    user: NestedObject | None
    approved_by_user: NestedObject | None = None
    approved_at: datetime | None = None
    approved_by: str | None = Field(
        default=None,
        description=(
            "Jobplane's addition: who approved it, the API user or the Kubernetes user who annotated the "
            "JobSchedule (``approved_by_user`` is the API user of that name, null when there is none)."
        ),
    )
    approval_required: bool
    state: ChoiceValue
    decision_date: datetime | None = None
    associated_approval_workflows: list[Any] = Field(default_factory=list)
    one_off: bool
    start_time: datetime | None
    time_zone: str
    enabled: bool
    last_run_at: datetime | None
    total_run_count: int
    date_changed: datetime | None
    description: str
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any]
    celery_kwargs: dict[str, Any]
    next_run_at: datetime | None = Field(description="Jobplane's addition: the next fire, null when none.")
    requested_by: str | None = Field(description="Jobplane's addition: whose runs the fires are.")
    job_schedule: JobScheduleReference


class ScheduledJobUpdate(BaseModel):
    """A PATCH of a scheduled job (Jobplane's addition): ``enabled`` pauses or resumes its fires. Other
    keys, read-only fields of the record, are ignored."""

    model_config = ConfigDict(extra="ignore")

    enabled: Any = None


class JobRunResponse(BaseModel):
    """201 of the run endpoint: exactly one of the two is set, as Nautobot answers."""

    job_result: JobResultRead | None
    scheduled_job: ScheduledJobRead | None = None


class JobLogEntryRead(BaseModel):
    id: int
    object_type: Literal["extras.joblogentry"] = "extras.joblogentry"
    display: str
    url: str
    created: datetime
    grouping: str
    log_level: str
    log_object: str | None
    message: str
    absolute_url: str | None
    job_result: NestedObject


class FileProxyRead(BaseModel):
    id: uuid.UUID
    object_type: Literal["extras.fileproxy"] = "extras.fileproxy"
    display: str
    url: str
    name: str
    size: int
    uploaded_at: datetime
    file: str
    job_result: NestedObject | None


class JobQueueRead(BaseModel):
    id: uuid.UUID
    object_type: Literal["extras.jobqueue"] = "extras.jobqueue"
    display: str
    url: str
    name: str
    queue_type: ChoiceValue
    description: str
    namespace: str
    concurrency_limit: int | None
    running: int | None
    queued: int | None
    tenant: None = None
    tags: list[Any] = Field(default_factory=list)
    created: datetime | None
    last_updated: datetime | None


class GitRepositoryStatusRead(BaseModel):
    """Jobplane's view of the last sync: the JobRepository's status, in snake_case."""

    synced: bool
    degraded: bool
    message: str | None
    class_paths: list[str]
    import_errors: dict[str, str]
    last_sync_time: datetime | None


class JobRepositoryReference(BaseModel):
    """Jobplane's addition to a Git repository: the JobRepository resource that holds it."""

    namespace: str
    name: str = Field(description="Its metadata.name: the slug with '_' as '-' (kubectl get jobrepository).")


class GitRepositoryRead(BaseModel):
    """A Git repository of jobs (a JobRepository), with Nautobot's fields and jobplane's extras."""

    id: uuid.UUID
    object_type: Literal["extras.gitrepository"] = "extras.gitrepository"
    display: str
    url: str
    name: str = Field(description="The name it was given (any text, unique).")
    slug: str
    remote_url: str
    branch: str
    secrets_group: str | None = Field(description="The Secret holding the credentials, or null.")
    provided_contents: list[str] = Field(default_factory=lambda: ["extras.job"])
    current_head: str = Field(description="The commit of the last successful sync; empty before one.")
    created: datetime | None
    last_updated: datetime | None
    interval: str = Field(description="How often the ref is checked for new commits, e.g. 5m.")
    suspend: bool = Field(description="Not followed: no polling, and sync requests are ignored.")
    status: GitRepositoryStatusRead
    job_repository: JobRepositoryReference
    tags: list[Any] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class GitRepositoryWrite(BaseModel):
    """The body of a create (name and remote_url required) or a PATCH/PUT (what is sent changes).

    ``provided_contents`` must hold ``extras.job`` and nothing else: jobs are all a repository provides
    here (Nautobot's other contents are refused, not ignored); left out, it is ``["extras.job"]``.

    ``secrets_group`` names a Secret of the namespace with keys ``username`` and ``password`` (HTTP;
    a token goes in ``password``) or ``identity`` and ``known_hosts`` (SSH), labelled
    ``jobplane.io/secret-type: repository-credentials`` with a ``url`` key holding the URL's prefix.
    Any other key (a read-only field such as ``current_head``, or an unknown one) is ignored, as Nautobot
    ignores it.
    """

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(
        default=None, description="Any text, unique; the JobRepository's name comes from the slug."
    )
    remote_url: str | None = Field(default=None, description="http(s), ssh or git URL; no password in it.")
    branch: str | None = Field(default=None, description="Branch, tag or commit; default main.")
    slug: str | None = Field(
        default=None, description="Python package name of its jobs; default from the name (as Nautobot's)."
    )
    secrets_group: str | None = Field(default=None, description="Name of the credentials Secret.")
    provided_contents: list[str] | None = Field(default=None, description="Only extras.job is provided.")
    interval: str | None = Field(
        default=None, description="Polling interval such as 30s, 5m, 1h; default 5m."
    )
    suspend: bool | None = Field(default=None, description="Stop following it (polls, syncs on request).")


class GitRepositorySyncResponse(BaseModel):
    """200 of ``git-repositories/{id}/sync/``: the job result that follows the sync until it ends."""

    message: str
    job_result: JobResultRead


class GitWebhookResponse(BaseModel):
    """202 of the push webhook: the repositories whose sync was requested."""

    synced: list[str]


class TokenUserRead(BaseModel):
    """The owner of a token (Nautobot's serializer leaves the user out; superusers here see every token)."""

    id: int
    object_type: Literal["users.user"] = "users.user"
    display: str
    username: str


class TokenRead(BaseModel):
    """An API token. ``key`` is only in the answer that creates the token: the store keeps its hash."""

    id: int
    object_type: Literal["users.token"] = "users.token"
    display: str
    url: str
    user: TokenUserRead
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    key: str | None = Field(
        None, description="The key, in the creating answer only (null afterwards: it is stored hashed)."
    )
    key_prefix: str = Field(description="The key's first characters, to tell tokens apart.")
    write_enabled: bool
    description: str


class TokenWrite(BaseModel):
    """The writable fields of a token; on a change, only the fields sent are changed."""

    expires: datetime | None = None
    write_enabled: bool = True
    description: str = Field("", max_length=200)
    key: str | None = Field(
        None,
        min_length=40,
        max_length=40,
        description="At creation only: a key of 40 characters chosen by the client (default: generated).",
    )


class TokenProvision(BaseModel):
    """A token asked for with a username and password in the body (NetBox's provision payload)."""

    username: str | None = None
    password: str | None = None
    expires: datetime | None = None
    write_enabled: bool = True
    description: str = Field("", max_length=200)


class UserRead(BaseModel):
    """A user as Nautobot's user serializer shows one, read-only; the names and e-mail are not kept here."""

    id: int
    object_type: Literal["users.user"] = "users.user"
    display: str
    url: str
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    is_active: bool
    is_staff: bool = False
    is_superuser: bool
    date_joined: datetime
    last_login: datetime | None = None
    config_data: dict[str, Any] = Field(default_factory=dict)
    groups: list[NestedObject]
