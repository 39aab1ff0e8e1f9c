"""Builders for test objects shared across tiers: job modules on disk, a recording reporter, and a
`runjob --local` run on a data database of the test's."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jobplane.joblog import LogEntry


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
