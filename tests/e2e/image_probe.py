"""Runs inside the project image (a `RUN` of tests/e2e/test_image.py's probe build) and reports as JSON.

Standard library only, plus the image's own packages: it checks what the image holds and that its
features start, as the user the image runs as, and prints one `PROBE {...}` line.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

COMPILERS = ("cc", "gcc", "c++", "g++", "cpp", "cc1", "clang", "tcc", "as", "ld", "make", "go", "rustc")
INSTALLERS = ("pip", "pip3", "apt", "apt-get", "dpkg", "dpkg-deb", "easy_install")
SKIP = ("/proc", "/sys", "/dev")


def run(*cmd: str, **env: str) -> dict[str, object]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    return {"rc": proc.returncode, "out": proc.stdout + proc.stderr}


def executables_named(names: tuple[str, ...]) -> list[str]:
    """Every executable in the image named one of names, also versioned or prefixed (gcc-12,
    x86_64-linux-gnu-gcc), wherever it is: not only on PATH."""
    pattern = re.compile(rf"([\w.]+-linux-gnu-)?({'|'.join(map(re.escape, names))})(-[\d.]+)?")
    found = []
    for root, dirs, files in os.walk("/"):
        if root.startswith(SKIP):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(root, name)
            if pattern.fullmatch(name) and os.access(path, os.X_OK):
                found.append(path)
    return sorted(found)


def import_everything() -> dict[str, object]:
    imported, failed = 0, {}
    for top in (
        "jobplane",
        "jobplane_runtime",
        "jobplane_store",
        "jobplane_crds",
        "jobplane_operator",
        "jobplane_api",
    ):
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            try:
                importlib.import_module(info.name)
                imported += 1
            except Exception as exc:  # reported, the test names the module
                failed[info.name] = repr(exc)
    return {"imported": imported, "failed": failed}


def git_checks(tmp: Path) -> dict[str, object]:
    src = tmp / "src"
    git = ("git", "-c", "user.name=probe", "-c", "user.email=probe@example.invalid", "-C", str(src))
    subprocess.run(("git", "init", "-q", str(src)), check=True)
    subprocess.run((*git, "commit", "-q", "--allow-empty", "-m", "probe"), check=True)
    head = subprocess.run((*git, "rev-parse", "HEAD"), capture_output=True, text=True, check=True).stdout
    # git's ssh transport end to end, the "server" side run locally by a stand-in for ssh: git starts
    # GIT_SSH_COMMAND through sh, and git-upload-pack answers. The real ssh is checked next.
    stand_in = tmp / "ssh-stand-in"
    stand_in.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    stand_in.chmod(0o755)
    over_ssh = run("git", "ls-remote", f"ssh://git@example.invalid{src}", GIT_SSH_COMMAND=str(stand_in))
    return {
        "head": head.strip(),
        "ls_remote_ssh": over_ssh,
        # The real ssh and git's https helper, each up to the connection nothing listens for.
        "ls_remote_real_ssh": run(
            "git",
            "ls-remote",
            "ssh://git@127.0.0.1:1/x.git",
            GIT_SSH_COMMAND="ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
        ),
        "ls_remote_https": run("git", "ls-remote", "https://127.0.0.1:1/x.git"),
    }


def main() -> None:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "probe"
    tmp.mkdir(parents=True, exist_ok=True)
    database = f"sqlite:///{tmp}/probe.sqlite3"
    site = Path(sysconfig.get_path("purelib"))
    vendor = Path(str(importlib.import_module("jobplane_api").__file__)).parent / "ui" / "static" / "vendor"
    report = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "python": sys.executable,
        "compilers": executables_named(COMPILERS),
        "installers": executables_named(INSTALLERS),
        "python_modules": {
            name: importlib.util.find_spec(name) is not None for name in ("pip", "setuptools", "ensurepip")
        },
        "pip_dists": sorted(p.name for p in site.glob("*.dist-info") if p.name.lower().startswith("pip-")),
        "writable_install": [
            p for p in ("/opt/jobplane/venv", "/opt/jobplane/jobs") if os.access(p, os.W_OK)
        ],
        "modules": import_everything(),
        "psycopg_impl": importlib.import_module("psycopg").pq.__impl__,
        "ui_assets": sorted(p.name for p in vendor.iterdir()),
        "help": run("jobplane", "--help"),
        "jobs": run("jobplane", "jobs"),
        "db_upgrade": run("jobplane", "db", "upgrade", JOBPLANE_DATABASE_URL=database),
        "db_revision": run("jobplane", "db", "revision", JOBPLANE_DATABASE_URL=database),
        "pgrep": run("pgrep", "--version"),
        "ssh": run("ssh", "-V"),
        "git": git_checks(tmp),
        "which_git": shutil.which("git"),
    }
    print("PROBE " + json.dumps(report))


if __name__ == "__main__":
    main()
