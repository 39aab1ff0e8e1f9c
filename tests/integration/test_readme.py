"""The README's opening commands stay true: the first one runs an example job end to end."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _opening_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "the README opens with a sh code block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_a_run_command_and_the_test_command() -> None:
    first, second = _opening_commands()[:2]
    assert "jobplane runjob --local" in first
    assert second == "bash scripts/test.sh"
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test.sh" in ci


def test_readme_first_command_runs_the_example_job(tmp_path: Path) -> None:
    first = _opening_commands()[0]
    # The install steps are what this test environment already did; run the last step as written.
    runjob = shlex.split(first.split("&&")[-1])
    assert runjob[0] == ".venv/bin/jobplane"
    command = [sys.executable, "-m", "jobplane.cli", *runjob[1:]]
    env = {**os.environ, "JOBPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'readme.sqlite3'}"}
    env.pop("JOBPLANE_JOBS_ROOT", None)  # the default must find the bundled examples
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS  run: Hello, Ada!" in done.stdout
    assert "Status: SUCCESS" in done.stdout
