"""A job author's install: the README's first command, run as written in a fresh copy of the project, brings
the job SDK alone (no kopf, Kubernetes client or FastAPI) and runs the hello_world example end to end.

pip gets its packages from a wheelhouse of the SDK's dependencies (pinned to the versions the test venv
runs, cached under ~/.cache/jobplane/wheels), through pip's own environment variables, so the command
runs unchanged and without depending on the network's speed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster import images
from tests.conftest import REPO_ROOT

WHEEL_CACHE = images.CACHE.parent / "wheels"
# What the servers and the in-cluster parts need, and the SDK must not bring.
SERVER_PACKAGES = ("kopf", "kubernetes", "fastapi", "uvicorn", "httpx", "git", "psycopg")


def _first_readme_command() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "the README opens with a sh code block"
    return next(line for line in block.group(1).splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def sdk_wheelhouse() -> Path:
    """Wheels of the SDK's dependencies and of its build backend, downloaded once per set of versions."""
    requirements = images.project_requirements(extras=())
    dest = WHEEL_CACHE / f"sdk-{images._hash(*requirements)}"
    if not dest.is_dir():
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="sdk-", dir=WHEEL_CACHE))
        images.wheelhouse(requirements, staging)
        try:
            staging.rename(dest)
        except OSError:  # another session filled it meanwhile
            shutil.rmtree(staging)
    return dest


@dataclass
class Install:
    project: Path
    env: dict[str, str]
    first_run: subprocess.CompletedProcess[str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.project / ".venv" / "bin" / args[0]), *args[1:]],
            cwd=self.project,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def install(sdk_wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The README's first command, as written, in a fresh copy of the project (no .venv, no build)."""
    project = images.stage_project_context(tmp_path_factory.mktemp("sdk") / "jobplane")
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JOBPLANE_", "PIP_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(sdk_wheelhouse), PIP_DISABLE_PIP_VERSION_CHECK="1")
    first_run = subprocess.run(
        ["bash", "-c", _first_readme_command()],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    return Install(project, env, first_run)


def test_first_command_installs_the_sdk_and_runs_hello_world(install: Install) -> None:
    done = install.first_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS  run: Hello, Ada!" in done.stdout
    assert "Status: SUCCESS" in done.stdout
    assert (install.project / "jobplane.sqlite3").is_file()


@pytest.mark.parametrize("package", SERVER_PACKAGES)
def test_the_sdk_brings_none_of_the_servers_packages(install: Install, package: str) -> None:
    assert install.first_run.returncode == 0, install.first_run.stderr
    done = install.run("python", "-c", f"import {package}")
    assert done.returncode == 1
    assert f"ModuleNotFoundError: No module named '{package}'" in done.stderr


@pytest.mark.parametrize(
    ("command", "extra"),
    [(["operator"], "operator"), (["api"], "api"), (["sync-jobs", "-n", "default"], "operator")],
)
def test_a_server_command_names_the_extra_to_install(
    install: Install, command: list[str], extra: str
) -> None:
    done = install.run("jobplane", *command)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"pip install 'jobplane[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_runjob_against_the_api_names_the_client_extra(install: Install) -> None:
    done = install.run(
        "jobplane", "runjob", "hello_world.HelloWorld", JOBPLANE_URL="http://127.0.0.1:9", JOBPLANE_TOKEN="t"
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "'httpx'" in done.stderr
    assert "pip install 'jobplane[client]'" in done.stderr


def test_a_local_run_as_a_user_of_the_store_needs_no_server(install: Install, tmp_path: Path) -> None:
    """--username judges the run with the API's permission code, which needs only the store."""
    store = {"JOBPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'users.sqlite3'}"}
    created = install.run(
        "jobplane", "users", "create", "ada", "--superuser", "--database-url", store["JOBPLANE_DATABASE_URL"]
    )
    assert created.returncode == 0, created.stdout + created.stderr
    done = install.run(
        "jobplane", "runjob", "--local", "--username", "ada", "hello_world.HelloWorld", **store
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Status: SUCCESS" in done.stdout
