"""Builders for test objects shared across tiers: the custom resources (one builder per kind), job modules
on disk, a recording reporter, and a `runjob --local` run on a data database of the test's."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from jobplane.joblog import LogEntry
from jobplane_crds.v1alpha1 import VERSION, JobDefinition, JobQueue, JobRepository, JobRun, JobSchedule
from jobplane_crds.v1alpha1.common import Resource

# --- custom resources ---
#
# Each builder returns the body a test would `kubectl apply`, POST or hand to a reconciler, built through the
# kind's typed model: a misspelt or ill-typed field raises pydantic's ValidationError here rather than
# making a body the CRD's schema refuses. Spec fields are keyword arguments (snake_case or camelCase);
# the body holds exactly the fields given (nothing of the models' defaults), in camelCase.
# `unvalidated` is for tests of refusals and of raw input (what a webhook sees before the schema, a status
# the operator reads as it finds it): it is merged into the body after validation, key by key into
# nested objects, and is the only way to get a body the models would refuse.


def custom_resource(
    model: type[Resource],
    name: str,
    *,
    namespace: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    unvalidated: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A body of the kind ``model``. ``metadata`` adds to name and namespace (uid, labels, generation...);
    a status is given as the apiserver holds it (camelCase)."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    raw: dict[str, Any] = {
        "apiVersion": f"jobplane.io/{VERSION}",
        "kind": model.kind_name,
        "metadata": {**meta, **(metadata or {})},
        "spec": dict(spec),
    }
    if status is not None:
        raw["status"] = dict(status)
    body = model.model_validate(raw).model_dump(mode="json", by_alias=True, exclude_unset=True)
    return _merged(body, unvalidated or {})


# One builder per kind: job_run("r1", namespace="ops", job="audit.Audit", data={...}).
job_run = partial(custom_resource, JobRun)  # spec needs at least job
job_definition = partial(custom_resource, JobDefinition)
job_queue = partial(custom_resource, JobQueue)  # no spec fields: an empty spec, a queue of the defaults
job_repository = partial(custom_resource, JobRepository)  # spec needs at least url and slug
job_schedule = partial(custom_resource, JobSchedule)  # spec needs at least job and schedule


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else value
    return merged


def runjob_local(
    workdir: Path, jobs_root: Path, data_url: str, class_path: str, data: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """`jobplane runjob --local` of ``class_path`` with a results store of its own in ``workdir`` and the
    job-data database ``data_url``; nothing of the caller's JOBPLANE_* environment leaks in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBPLANE_")}
    env.update(
        JOBPLANE_JOBS_ROOT=str(jobs_root),
        JOBPLANE_DATABASE_URL=f"sqlite:///{workdir / 'local-store.sqlite3'}",
        JOBPLANE_DATA_DATABASE_URL=data_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "runjob", "--local", class_path, "--data", json.dumps(data)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def printed_result(done: subprocess.CompletedProcess[str]) -> Any:
    """The result a `runjob --local` printed (its summary's ``Result:`` line)."""
    found = re.search(r"^Result: (.*)$", done.stdout, re.MULTILINE)
    assert found, done.stdout + done.stderr
    return json.loads(found.group(1))


def write_module(root: Path, name: str, source: str) -> Path:
    """Write a job module (dedented) into a JOBS_ROOT folder."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@dataclass
class RecordingReporter:
    """A RunReporter that keeps everything in memory, for unit tests of the runner's lifecycle."""

    entries: list[LogEntry] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    inputs: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    discarded: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    outcome: tuple[str, Any, str | None] | None = None
    max_file_size: int = 1024

    def started(self) -> None:
        self.events.append("started")

    def log(self, entry: LogEntry) -> None:
        self.entries.append(entry)

    def create_file(self, name: str, content: bytes) -> str:
        if len(content) > self.max_file_size:
            raise ValueError(f"File {name!r} is {len(content)} bytes, above the limit")
        file_id = str(uuid.uuid4())
        self.files[file_id] = (name, content)
        return file_id

    def open_input_file(self, file_id: str) -> IO[bytes]:
        name, content = self.inputs[file_id]
        handle = io.BytesIO(content)
        handle.name = name
        return handle

    def discard_input_files(self, file_ids: list[str]) -> None:
        self.discarded.extend(file_ids)

    def finished(self, status: str, result: Any, traceback: str | None) -> None:
        self.events.append("finished")
        self.outcome = (status, result, traceback)

    def messages(self, level: str | None = None) -> list[str]:
        return [e.message for e in self.entries if level is None or e.level == level]
