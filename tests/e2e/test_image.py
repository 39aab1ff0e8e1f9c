"""The project image (root Dockerfile): at most 200 MB, non-root, no compilers or installers, and what it
holds works, checked inside the image as its own user.

The checks run in a throwaway build on top of the image (`FROM image` + `RUN python3 image_probe.py`):
a `RUN` executes in a real container with the image's user, environment and file system.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from jobplane_store.database import HEAD_REVISION
from tests.cluster import images

# The first test's setup may build the image cold: 3 to 5 minutes here, on a loaded machine.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

MAX_BYTES = 200_000_000  # 200 MB as podman counts it: the uncompressed size of all layers
USER = "10001:10001"
PROBE = Path(__file__).with_name("image_probe.py")


@pytest.fixture(scope="module")
def image() -> str:
    return images.project_image().ref


@pytest.fixture(scope="module")
def probe(image: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jobplane-image-probe-") as tmp:
        context = Path(tmp)
        shutil.copy2(PROBE, context / PROBE.name)
        (context / "Containerfile").write_text(
            f"FROM {image}\nCOPY {PROBE.name} /tmp/\nRUN python3 /tmp/{PROBE.name}\n"
        )
        iidfile = context / "iid"
        proc = subprocess.run(
            ["podman", "build", "--no-cache", "--pull=never", "--network=none", f"--iidfile={iidfile}",
             "-f", str(context / "Containerfile"), str(context)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if iidfile.exists():
            subprocess.run(["podman", "rmi", "--force", iidfile.read_text().strip()], capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    report: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return report


def _inspect(image: str, field: str) -> str:
    return subprocess.run(
        ["podman", "image", "inspect", "--format", f"{{{{{field}}}}}", image],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_image_is_at_most_200_mb(image: str) -> None:
    size = int(_inspect(image, ".Size"))
    assert size <= MAX_BYTES, f"{image} is {size / 1e6:.1f} MB"


def test_image_runs_as_user_10001_who_cannot_change_what_it_runs(image: str, probe: dict[str, Any]) -> None:
    assert _inspect(image, ".Config.User") == USER
    assert (probe["uid"], probe["gid"]) == (10001, 10001)
    assert probe["writable_install"] == []


def test_image_has_no_compiler_and_no_installer(probe: dict[str, Any]) -> None:
    assert probe["compilers"] == []
    assert probe["installers"] == []
    assert probe["python_modules"] == {"pip": False, "setuptools": False, "ensurepip": False}
    assert probe["pip_dists"] == []


def test_every_jobplane_module_imports_and_the_commands_start(probe: dict[str, Any]) -> None:
    modules = probe["modules"]
    assert modules["failed"] == {}
    assert modules["imported"] > 50
    assert probe["help"]["rc"] == 0, probe["help"]
    assert "run-pod" in probe["help"]["out"]
    assert probe["jobs"]["rc"] == 0, probe["jobs"]
    assert "hello_world.HelloWorld" in probe["jobs"]["out"]
    assert probe["psycopg_impl"] == "binary"
    assert {"htmx.min.js", "htmx-ext-sse.js", "pico.min.css"} <= set(probe["ui_assets"])


def test_the_migrations_run_in_the_image(probe: dict[str, Any]) -> None:
    assert probe["db_upgrade"]["rc"] == 0, probe["db_upgrade"]
    assert probe["db_revision"]["rc"] == 0, probe["db_revision"]
    assert probe["db_revision"]["out"].split() == [HEAD_REVISION]


def test_git_fetches_over_ssh_and_reaches_out_with_ssh_and_https(probe: dict[str, Any]) -> None:
    git = probe["git"]
    over_ssh = git["ls_remote_ssh"]
    assert over_ssh["rc"] == 0, over_ssh
    assert f"{git['head']}\tHEAD" in over_ssh["out"]
    # Nothing listens on port 1: ssh itself and git's https helper ran, and failed only to connect.
    real_ssh = git["ls_remote_real_ssh"]
    assert real_ssh["rc"] != 0
    assert "port 1: Connection refused" in real_ssh["out"], real_ssh
    https = git["ls_remote_https"]
    assert https["rc"] != 0
    assert "Failed to connect to 127.0.0.1 port 1" in https["out"], https
    assert probe["ssh"]["rc"] == 0
    assert "OpenSSH" in probe["ssh"]["out"]
    assert probe["pgrep"]["rc"] == 0
    assert "procps" in probe["pgrep"]["out"]
