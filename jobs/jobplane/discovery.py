"""Finds jobs: modules in JOBS_ROOT (imported by file name) and installed packages' entry points."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobplane.job import Job, clear_registry, registered_jobs

if TYPE_CHECKING:
    from jobplane.localsettings import RunSettings

__all__ = ["Discovery", "describe_job", "discover_jobs", "find_job", "jobs_root_modules", "name_conflicts"]

log = logging.getLogger(__name__)


@dataclass
class Discovery:
    """The registered jobs by class path, the modules that failed to import with their errors, and the
    jobs whose name another job also has (class path → message naming both classes)."""

    jobs: dict[str, type[Job]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)


def name_conflicts(jobs: Mapping[str, type[Job]]) -> dict[str, str]:
    """Jobs that share a name with another job, each with a message naming the others.

    As in Nautobot, a job's name is unique among all jobs, whatever their grouping: it is how the API
    names a job (``/api/extras/jobs/<name>/``), so two jobs with one name would shadow each other.
    """
    by_name: dict[str, list[str]] = {}
    for class_path, cls in jobs.items():
        by_name.setdefault(cls.properties().name, []).append(class_path)
    conflicts = {}
    for name, paths in by_name.items():
        if len(paths) < 2:
            continue
        for path in paths:
            others = ", ".join(
                f"{p} (grouping {jobs[p].properties().grouping!r})" for p in sorted(paths) if p != path
            )
            conflicts[path] = (
                f"NameConflict: job name {name!r} of {path} (grouping {jobs[path].properties().grouping!r}) "
                f"is also the name of {others}; give one of them another Meta.name"
            )
    return conflicts


def _describe_error(exc: BaseException, root: Path | None = None) -> str:
    """One line: the exception and where it broke (a SyntaxError carries its own file and line).

    With ``root`` (a checked-out repository), the deepest frame under it is named, and paths under it
    are shown relative to it: ``jobs/broken.py``, never the temporary folder it was fetched into.
    """
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({_shown_path(exc.filename, root)}, line {exc.lineno})"
    frames: list[traceback.FrameSummary] = list(traceback.extract_tb(exc.__traceback__))
    if root is not None:
        frames = [frame for frame in frames if _shown_path(frame.filename, root) != frame.filename] or frames
    where = f" ({_shown_path(frames[-1].filename, root)}, line {frames[-1].lineno})" if frames else ""
    message = str(exc)
    if root is not None:
        for prefix in {str(root), str(root.resolve())}:
            message = message.replace(prefix + "/", "").replace(prefix, ".")
    return f"{type(exc).__name__}: {message}{where}"


def _shown_path(filename: str | None, root: Path | None) -> str | None:
    if root is None or not filename:
        return filename
    for prefix in {str(root), str(root.resolve())}:
        if filename.startswith(prefix + "/"):
            return filename[len(prefix) + 1 :]
    return filename


def jobs_root_modules(root: Path) -> list[str]:
    """Module names importable from JOBS_ROOT: ``*.py`` files and packages, skipping private names."""
    if not root.is_dir():
        return []
    names = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            names.append(entry.stem)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            names.append(entry.name)
    return names


def _put_root_on_path(root: Path) -> str:
    path = str(root.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def _import(name: str, root_path: str | None, errors: dict[str, str]) -> None:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        errors[name] = _describe_error(exc)
        log.warning("job module failed to import module=%s error=%s", name, errors[name])
        return
    origin = getattr(module, "__file__", None) or ""
    if root_path is not None and not str(Path(origin).resolve()).startswith(root_path):
        # The name is already taken (the standard library, an installed package): say so, don't guess.
        errors[name] = (
            f"NameConflict: module {name!r} in JOBS_ROOT is shadowed by {origin or 'a built-in module'}; "
            "rename the file"
        )


def _forget_modules(names: list[str]) -> None:
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        clear_registry(name)


def discover_jobs(settings: RunSettings, *, reload: bool = False) -> Discovery:
    """Import every job source and return the registered jobs and the import errors.

    A module that fails to import is reported and does not hide the jobs of the others.
    """
    errors: dict[str, str] = {}
    root = settings.jobs_root
    names = jobs_root_modules(root)
    if reload:
        importlib.invalidate_caches()
        _forget_modules(names)
    if names:
        root_path = _put_root_on_path(root)
        for name in names:
            _import(name, root_path, errors)
    elif not root.is_dir():
        log.info("JOBS_ROOT does not exist path=%s", root)
    # Imported here: find_job() imports a job's own module without it (measured start-up cost, a tenth of
    # a no-op local run once SQLAlchemy and pydantic were gone from it).
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=settings.jobs_entry_point_group):
        if reload:
            _forget_modules([entry_point.module])
        _import(entry_point.module, None, errors)
    jobs = registered_jobs()
    conflicts = name_conflicts(jobs)
    for class_path, message in sorted(conflicts.items()):
        log.warning("job name is not unique class_path=%s error=%s", class_path, message)
    return Discovery(jobs=jobs, errors=errors, conflicts=conflicts)


def find_job(class_path: str, settings: RunSettings) -> tuple[type[Job] | None, Discovery | None]:
    """The job class for a class path, importing only its module when it can.

    Returns the class, or None with the full discovery (for an error message listing what exists).
    """
    module_name, _, class_name = class_path.rpartition(".")
    if module_name and class_name:
        top = module_name.split(".", 1)[0]
        if top in jobs_root_modules(settings.jobs_root):
            _put_root_on_path(settings.jobs_root)
        try:
            importlib.import_module(module_name)
        except Exception:  # Reported, with every other module's state, by the full discovery below.
            log.debug("direct import failed module=%s", module_name, exc_info=True)
        else:
            job = registered_jobs().get(class_path)
            if job is not None:
                return job, None
    discovery = discover_jobs(settings)
    return discovery.jobs.get(class_path), discovery


def describe_job(cls: type[Job]) -> dict[str, Any]:
    """What the code says about a job, in the camelCase shape of a JobDefinition's status."""
    props = cls.properties()
    return {
        "classPath": cls.class_path(),
        "moduleName": cls.__module__,
        "jobClassName": cls.__name__,
        "supportsDryrun": cls.supports_dryrun(),
        "code": {
            "name": props.name,
            "grouping": props.grouping,
            "description": props.description,
            "approvalRequired": props.approval_required,
            "dryrunDefault": props.dryrun_default,
            "hasSensitiveVariables": props.has_sensitive_variables,
            "hidden": props.hidden,
            "isSingleton": props.is_singleton,
            "softTimeLimit": props.soft_time_limit,
            "timeLimit": props.time_limit,
            "taskQueues": list(props.task_queues),
        },
        "variablesSchema": cls.json_schema(),
    }
