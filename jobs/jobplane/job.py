"""The Job base class job authors subclass, its Meta properties, and the registry fed by register_jobs()."""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from jobplane.joblog import FAILURE, JobLogger
from jobplane.schema import build_schema
from jobplane.variables import DryRunVar, ScriptVariable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jobplane.localsettings import RunSettings

__all__ = [
    "Job",
    "JobContext",
    "JobProperties",
    "SoftTimeLimitExceeded",
    "TimeLimits",
    "clear_registry",
    "job_properties",
    "job_variables",
    "register_jobs",
    "registered_jobs",
]


class SoftTimeLimitExceeded(Exception):
    """Raised inside a job when its soft time limit passes; the job may clean up before the hard limit."""


class JobContext(Protocol):
    """What a running job reaches through its runner: where files go, the data database, the result id."""

    job_result_id: str
    user: str | None

    def create_file(self, name: str, content: bytes) -> str: ...

    @property
    def db(self) -> Session: ...


@dataclass(frozen=True)
class TimeLimits:
    """Effective soft and hard time limits of a run, in seconds, and a warning when they make no sense."""

    soft: float
    hard: float

    @property
    def warning(self) -> str | None:
        if self.hard <= self.soft:
            return (
                f"The hard time limit ({self.hard:g} s) is not above the soft time limit ({self.soft:g} s): "
                "the job will be killed without a chance to clean up."
            )
        return None


@dataclass(frozen=True)
class JobProperties:
    """A job class's Meta, type-checked, with Nautobot's defaults filled in."""

    name: str
    description: str
    grouping: str
    approval_required: bool = False
    dryrun_default: bool = False
    has_sensitive_variables: bool = True
    hidden: bool = False
    read_only: bool = False
    is_singleton: bool = False
    soft_time_limit: float = 0
    time_limit: float = 0
    task_queues: tuple[str, ...] = ("default",)
    field_order: tuple[str, ...] = ()

    def time_limits(self, settings: RunSettings) -> TimeLimits:
        """0 means the system default (JOBPLANE_SOFT_TIME_LIMIT / JOBPLANE_TIME_LIMIT)."""
        return TimeLimits(
            soft=self.soft_time_limit or settings.soft_time_limit,
            hard=self.time_limit or settings.time_limit,
        )


def _meta_value(cls: type, attr: str, default: Any, types: type | tuple[type, ...]) -> Any:
    value = getattr(getattr(cls, "Meta", None), attr, default)
    if not isinstance(value, types) or (types in (int, float, (int, float)) and isinstance(value, bool)):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(f"{cls.__name__}.Meta.{attr} must be {names}, not {type(value).__name__} ({value!r})")
    return value


def _default_grouping(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    name = getattr(module, "name", None)
    return name if isinstance(name, str) and name else cls.__module__


def job_properties(cls: type[Job]) -> JobProperties:
    """Read and check a job class's Meta; raises TypeError/ValueError naming the bad attribute."""
    cached = cls.__dict__.get("_jobplane_properties")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    limits = {}
    for attr in ("soft_time_limit", "time_limit"):
        value = _meta_value(cls, attr, 0, (int, float))
        if value < 0:
            raise ValueError(f"{cls.__name__}.Meta.{attr} must not be negative ({value!r})")
        limits[attr] = float(value)
    queues = _meta_value(cls, "task_queues", (), (list, tuple))
    for queue in queues:
        if not isinstance(queue, str) or not queue:
            raise TypeError(f"{cls.__name__}.Meta.task_queues must hold queue names, not {queue!r}")
    field_order = _meta_value(cls, "field_order", (), (list, tuple))
    properties = JobProperties(
        name=_meta_value(cls, "name", cls.__name__, str),
        description=inspect.cleandoc(_meta_value(cls, "description", "", str)),
        grouping=_default_grouping(cls),
        approval_required=_meta_value(cls, "approval_required", False, bool),
        dryrun_default=_meta_value(cls, "dryrun_default", False, bool),
        has_sensitive_variables=_meta_value(cls, "has_sensitive_variables", True, bool),
        hidden=_meta_value(cls, "hidden", False, bool),
        read_only=_meta_value(cls, "read_only", False, bool),
        is_singleton=_meta_value(cls, "is_singleton", False, bool),
        task_queues=tuple(queues) or ("default",),
        field_order=tuple(field_order),
        **limits,
    )
    type.__setattr__(cls, "_jobplane_properties", properties)
    return properties


def job_variables(cls: type[Job]) -> list[ScriptVariable]:
    """The job's variables in form order: Meta.field_order first, then declaration order, parents first."""
    found: dict[str, ScriptVariable] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, ScriptVariable):
                found.pop(name, None)
                found[name] = value
            elif name in found:
                del found[name]  # A subclass replaced the variable with something else.
    order = job_properties(cls).field_order
    unknown = [name for name in order if name not in found]
    if unknown:
        raise ValueError(f"{cls.__name__}.Meta.field_order names unknown variables: {', '.join(unknown)}")
    ordered = [found[name] for name in order]
    ordered += [var for name, var in found.items() if name not in order]
    return ordered


class Job:
    """Base class of every job: declare ``*Var`` attributes and a ``Meta``, implement ``run(self, *, ...)``.

    Lifecycle, in Nautobot's order: ``before_start`` → ``run`` → ``on_success`` or ``on_failure`` →
    ``after_return`` (always).
    """

    class Meta:
        pass

    _jobplane_registered: ClassVar[bool] = False

    def __init__(self) -> None:
        self.logger = JobLogger()
        self.failed = False
        self._context: JobContext | None = None

    # --- class-level description ----------------------------------------------------------
    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__name__}"

    @classmethod
    def properties(cls) -> JobProperties:
        return job_properties(cls)

    @classmethod
    def variables(cls) -> list[ScriptVariable]:
        return job_variables(cls)

    @classmethod
    def supports_dryrun(cls) -> bool:
        """Only a variable literally named ``dryrun`` of type DryRunVar counts (Nautobot's rule)."""
        return isinstance(getattr(cls, "dryrun", None), DryRunVar)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The one JSON Schema of this job's data."""
        return build_schema(cls.variables(), dryrun_default=cls.properties().dryrun_default)

    # --- lifecycle hooks (override as needed) ---------------------------------------------
    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before run(); an exception here fails the run and skips run()."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called after run() returned without an exception and without fail()."""

    def on_failure(
        self, exc: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Called after an exception (``exc``) or fail() (``exc`` is the return value, ``einfo`` None)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called last, whatever happened."""

    # --- helpers --------------------------------------------------------------------------
    def fail(self, msg: object, *args: object) -> None:
        """Log at FAILURE level and mark the run failed, without raising."""
        self.failed = True
        self.logger._emit(FAILURE, msg, args, {}, depth=2)

    @property
    def job_result_id(self) -> str | None:
        return self._context.job_result_id if self._context else None

    @property
    def user(self) -> str | None:
        return self._context.user if self._context else None

    @property
    def db(self) -> Session:
        """A SQLAlchemy session on the job data database; commit what you want kept."""
        return self._require_context("db").db

    def create_file(self, filename: str, content: str | bytes) -> str:
        """Attach an output file to the run's result; returns its id. Raises ValueError above the size cap."""
        if not isinstance(filename, str) or not filename or "/" in filename or filename in (".", ".."):
            raise ValueError(f"Invalid file name {filename!r}: give a plain name such as 'report.csv'")
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        return self._require_context("create_file").create_file(filename, data)

    def _job_dir(self) -> Path:
        return Path(inspect.getfile(type(self))).resolve().parent

    def load_json(self, filename: str) -> Any:
        """Load a JSON file that sits next to the job's source file."""
        with (self._job_dir() / filename).open(encoding="utf-8") as handle:
            return json.load(handle)

    def load_yaml(self, filename: str) -> Any:
        """Load a YAML file that sits next to the job's source file."""
        import yaml  # local: PyYAML is loaded by the jobs that use it, not by every run

        with (self._job_dir() / filename).open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)

    def _require_context(self, what: str) -> JobContext:
        if self._context is None:
            raise RuntimeError(f"{what} is only available while the job runs under jobplane")
        return self._context


# --- registration -----------------------------------------------------------------------------

_REGISTRY: dict[str, type[Job]] = {}


def _check_job_class(cls: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Job)) or cls is Job:
        raise TypeError(f"register_jobs() takes Job subclasses, not {cls!r}")
    if cls.run is Job.run:
        raise TypeError(f"{cls.__name__} does not implement run()")
    cls.properties()
    variables = cls.variables()
    parameters = inspect.signature(cls.run).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        missing = [var.name for var in variables if var.name not in accepted]
        if missing:
            raise TypeError(f"{cls.__name__}.run() does not accept the variables {', '.join(missing)}")
    cls.json_schema()


def register_jobs(*jobs: type[Job]) -> None:
    """Make job classes visible; a class that is not registered is not a job (Nautobot's rule)."""
    for cls in jobs:
        _check_job_class(cls)
    for cls in jobs:
        cls._jobplane_registered = True
        _REGISTRY[cls.class_path()] = cls


def registered_jobs() -> dict[str, type[Job]]:
    """Every registered job class by class path."""
    return dict(_REGISTRY)


def clear_registry(module_prefix: str | None = None) -> None:
    """Forget registered classes (all, or those of one module tree) before a fresh discovery."""
    for path in list(_REGISTRY):
        module = _REGISTRY[path].__module__
        if module_prefix is None or module == module_prefix or module.startswith(module_prefix + "."):
            del _REGISTRY[path]
