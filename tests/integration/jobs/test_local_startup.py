"""What a local run loads: on a plain SQLite store, none of the heavy libraries a no-op run does not use.

Their imports were most of a no-op run's time (bench/runjob_overhead.py); this keeps them out of it, without
measuring time. A run that needs one (a Postgres store, settings the model must judge, job data to
validate) still loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import write_module

HEAVY = ("sqlalchemy", "alembic", "pydantic", "pydantic_settings", "jsonschema")

JOBS = """
    from jobplane import Job, StringVar, register_jobs


    class Noop(Job):
        class Meta:
            has_sensitive_variables = False

        def run(self):
            pass


    class Greet(Job):
        who = StringVar(max_length=10)

        class Meta:
            has_sensitive_variables = False

        def run(self, *, who):
            self.logger.info("hello %s", who)


    register_jobs(Noop, Greet)
"""

# Runs the CLI's main() in this process and prints the heavy packages it left loaded (the parent's view: the
# job's own process is forked from it).
PROBE = """
import json, sys
from jobplane.cli import main
wanted = set(json.loads(sys.argv.pop(1)))
code = main(sys.argv[1:])
heavy = sorted({name.partition(".")[0] for name in sys.modules} & wanted)
print("LOADED " + json.dumps({"code": code, "heavy": heavy}))
"""


def loaded_by(tmp_path: Path, *args: str, **env: str) -> dict[str, object]:
    write_module(tmp_path / "jobs", "startup_jobs", JOBS)
    environment = {key: value for key, value in os.environ.items() if not key.upper().startswith("JOBPLANE_")}
    environment |= {
        "JOBPLANE_JOBS_ROOT": str(tmp_path / "jobs"),
        "JOBPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'jobplane.sqlite3'}",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("LOADED ")]
    assert lines, done.stdout + done.stderr
    loaded: dict[str, object] = json.loads(lines[-1].removeprefix("LOADED "))
    assert loaded["code"] == 0, done.stdout + done.stderr
    return loaded


def test_a_noop_run_on_sqlite_loads_none_of_them(tmp_path: Path) -> None:
    # The first run migrates the new store (Alembic, SQLAlchemy); the next ones only read its revision.
    first = loaded_by(tmp_path, "runjob", "--local", "startup_jobs.Noop")
    assert first["code"] == 0
    assert "alembic" in first["heavy"]  # type: ignore[operator]
    assert loaded_by(tmp_path, "runjob", "--local", "--quiet", "startup_jobs.Noop") == {
        "code": 0,
        "heavy": [],
    }


@pytest.mark.parametrize(
    ("args", "env", "needed"),
    [
        (["startup_jobs.Greet", "--data", '{"who": "Ada"}'], {}, "jsonschema"),
        (["startup_jobs.Noop"], {"JOBPLANE_TIME_LIMIT": "1e3"}, "pydantic"),
        (
            ["startup_jobs.Noop"],
            {"JOBPLANE_DATABASE_URL": "sqlite+pysqlite:///other.sqlite3?timeout=5"},
            "sqlalchemy",
        ),
    ],
)
def test_a_run_that_needs_one_loads_it(
    tmp_path: Path, args: list[str], env: dict[str, str], needed: str
) -> None:
    loaded_by(tmp_path, "runjob", "--local", "startup_jobs.Noop")  # the store, migrated
    loaded = loaded_by(tmp_path, "runjob", "--local", *args, **env)
    assert loaded["code"] == 0
    assert needed in loaded["heavy"]  # type: ignore[operator]
