"""Container images for the test cluster, built locally without a registry: base, pause, Dockerfile images."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
CACHE = Path(os.environ.get("JOBPLANE_IMAGE_CACHE", Path.home() / ".cache" / "jobplane" / "images"))

BASE_SUITE = "bookworm"
BASE_MIRROR = os.environ.get("JOBPLANE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Debian's python3 (3.11) plus venv so Dockerfiles can install a wheelhouse into an isolated environment;
# git and ssh for jobs from Git repositories (the Dockerfile installs them only when missing).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "procps", "git", "openssh-client")
# Wheels the base's glibc (bookworm: 2.36) can load; pip does not widen a single --platform by itself.
BASE_PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 37)))
BASE_NAME = "localhost/jobplane-base"
PAUSE_NAME = "localhost/jobplane-pause"
# Bump when the recipe below changes in a way the inputs do not capture.
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class Image:
    """A built image: its reference (what pods use) and an archive containerd can import."""

    ref: str
    archive: Path


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    log.debug("run %s", cmd)
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _hash(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _hash_tree(root: Path) -> str:
    """Content hash of a build context: relative paths and file bytes, so any edit gives a new tag."""
    parts: list[bytes | str] = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            parts += [str(p.relative_to(root)), p.read_bytes()]
    return _hash(*parts)


def _podman_has(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def _save(ref: str, archive: Path) -> None:
    """Export ref as a docker-archive: its RepoTags carry the full name, which `ctr import` keeps."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    _run(["podman", "save", "--quiet", "--format", "docker-archive", "-o", str(tmp), ref])
    tmp.rename(archive)
    # Each edit of an image's inputs makes a new tag; drop archives of older tags so the cache stays small.
    stale = re.compile(re.escape(archive.name[: -len(".tar") - 16]) + r"[0-9a-f]{16}\.tar")
    for old in archive.parent.iterdir():
        if old != archive and stale.fullmatch(old.name):
            log.info("removing stale image archive %s", old)
            old.unlink(missing_ok=True)


def base_image() -> Image:
    """Debian bookworm minbase + python3 via debootstrap and `podman import`, cached by a content hash."""
    tag = _hash(RECIPE_VERSION, BASE_SUITE, BASE_MIRROR, *BASE_PACKAGES)
    ref = f"{BASE_NAME}:{tag}"
    archive = CACHE / f"jobplane-base-{tag}.tar"
    rootfs_tar = CACHE / f"jobplane-base-rootfs-{tag}.tar"
    if not _podman_has(ref):
        if not rootfs_tar.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="jobplane-debootstrap-", dir="/var/tmp") as tmp:
                root = Path(tmp) / "rootfs"
                log.info("debootstrap %s into %s", BASE_SUITE, root)
                _run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(BASE_PACKAGES)}",
                        BASE_SUITE,
                        str(root),
                        BASE_MIRROR,
                    ],
                    stdout=subprocess.DEVNULL,
                )
                # Apt caches and lists are dead weight in an image that never runs apt.
                for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                    shutil.rmtree(root / junk, ignore_errors=True)
                part = rootfs_tar.with_suffix(".part")
                _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(part), "."])
                part.rename(rootfs_tar)
        _run(
            ["podman", "import", "--quiet", "--change", "CMD=/usr/bin/python3", str(rootfs_tar), ref],
            stdout=subprocess.DEVNULL,
        )
    if not archive.exists():
        _save(ref, archive)
    return Image(ref, archive)


def pause_image() -> Image:
    """A scratch image with one static binary that waits for SIGTERM and reaps children (pod sandbox)."""
    src = HERE / "pause"
    tag = _hash(RECIPE_VERSION, _hash_tree(src))
    ref = f"{PAUSE_NAME}:{tag}"
    archive = CACHE / f"jobplane-pause-{tag}.tar"
    if archive.exists():
        return Image(ref, archive)
    if not _podman_has(ref):
        with tempfile.TemporaryDirectory(prefix="jobplane-pause-") as tmp:
            ctx = Path(tmp)
            _run(["gcc", "-static", "-Os", "-s", "-o", str(ctx / "pause"), str(src / "pause.c")])
            (ctx / "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n')
            _run(["podman", "build", "--quiet", "-t", ref, str(ctx)], stdout=subprocess.DEVNULL)
    _save(ref, archive)
    return Image(ref, archive)


def wheelhouse(requirements: list[str], dest: Path) -> Path:
    """Build wheels for requirements on the host (which has PyPI), so `podman build` needs no network."""
    dest.mkdir(parents=True, exist_ok=True)
    if requirements:
        # The image's Python is Debian's 3.11; pin the wheel tags to it rather than to the host interpreter.
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                *(arg for platform in BASE_PLATFORMS for arg in ("--platform", platform)),
                "--implementation",
                "cp",
                "-d",
                str(dest),
                *requirements,
            ]
        )
    return dest


def build_image(
    context: Path,
    name: str,
    *,
    requirements: list[str] | None = None,
    build_args: dict[str, str] | None = None,
) -> Image:
    """Build context/Dockerfile FROM the local base image and export it; the tag is a hash of every input.

    The Dockerfile receives `BASE` (the base image reference) and finds pre-built wheels under `wheels/` in
    the build context. The result is cached as an archive; a cluster imports it into its own containerd.
    """
    base = base_image()
    reqs = sorted(requirements or [])
    args = {"BASE": base.ref, **(build_args or {})}
    tag = _hash(RECIPE_VERSION, _hash_tree(context), *reqs, *sorted(f"{k}={v}" for k, v in args.items()))
    ref = f"localhost/{name}:{tag}"
    archive = CACHE / f"{name.replace('/', '_')}-{tag}.tar"
    if archive.exists():
        return Image(ref, archive)
    with tempfile.TemporaryDirectory(prefix=f"jobplane-build-{name.replace('/', '_')}-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(context, ctx)
        wheelhouse(reqs, ctx / "wheels")
        cmd = ["podman", "build", "--quiet", "--network=none", "-t", ref]
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        log.info("podman build %s from %s", ref, context)
        _run([*cmd, str(ctx)], stdout=subprocess.DEVNULL)
    _save(ref, archive)
    return Image(ref, archive)


def testapp_image() -> Image:
    """The small image the e2e tests run on the real node."""
    return build_image(HERE / "testapp", "jobplane-testapp", requirements=["six==1.17.0"])


# The build backend pyproject asks for (hatchling>=1.27: the SPDX license field); the dev venv need not
# have it, so pin here.
BUILD_REQUIREMENTS = ("hatchling==1.33.0",)
# What the project Dockerfile copies, besides the package folders pyproject names.
PROJECT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
# The scripts the Dockerfile runs to slim the image (docker/slim_venv.py, docker/slim_rootfs.sh).
PROJECT_FOLDERS = ("docker",)
PROJECT_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*_cache", "build", "dist")


def _applies(req: Requirement, extra: str) -> bool:
    # Markers are evaluated for this interpreter: the venv's CPython 3.11 on Linux, like the image's.
    return req.marker is None or req.marker.evaluate({"extra": extra})


def _pinned_closure(requirements: list[str]) -> list[str]:
    """requirements and everything they pull in, pinned to what this venv has installed.

    The image then runs the versions the unit tests ran; a requirement missing from the venv stays as
    written, for pip to resolve.
    """
    pinned: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()
    todo = [req for req in map(Requirement, requirements) if _applies(req, "")]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            pinned.setdefault(key, f"{req.name}{req.specifier}")
            continue
        pinned[key] = f"{req.name}=={version}"
        for extra in ("", *sorted(req.extras)):
            if (key, extra) not in expanded:
                expanded.add((key, extra))
                requires = map(Requirement, metadata.requires(req.name) or [])
                todo += [dep for dep in requires if _applies(dep, extra)]
    return sorted(pinned.values(), key=str.lower)


# The extras the image installs (the Dockerfile's `[all]`): every command's dependencies.
IMAGE_EXTRAS = ("all",)


def _with_extras(project: dict[str, Any], extras: tuple[str, ...]) -> list[str]:
    """The project's dependencies with ``extras``, expanding the extras that name the project itself."""
    name = canonicalize_name(project["project"]["name"])
    optional = project["project"].get("optional-dependencies", {})
    requirements = list(project["project"]["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in optional[extra]:
            parsed = Requirement(requirement)
            if canonicalize_name(parsed.name) == name:
                todo += sorted(parsed.extras)
            else:
                requirements.append(requirement)
    return requirements


def project_requirements(root: Path = REPO_ROOT, extras: tuple[str, ...] = IMAGE_EXTRAS) -> list[str]:
    """The project's runtime dependencies with ``extras`` (pinned closure) plus what building its wheel
    needs. ``extras=()``: the job SDK's alone, what ``pip install .`` brings."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    return [*_pinned_closure(_with_extras(project, extras)), *BUILD_REQUIREMENTS]


def stage_project_context(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Copy what the project Dockerfile needs into dest: its files and the package folders pyproject names."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    folders = [Path(package).parent.as_posix() for package in packages]
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copy2(root / name, dest / name)
    for folder in sorted({*folders, *PROJECT_FOLDERS}):
        shutil.copytree(root / folder, dest / folder, ignore=PROJECT_IGNORE)
    return dest


def project_image(jobs_dir: str = "jobs/examples") -> Image:
    """The project's own image (root Dockerfile), built offline from a host-made wheelhouse and cached."""
    with tempfile.TemporaryDirectory(prefix="jobplane-project-ctx-") as tmp:
        context = stage_project_context(Path(tmp) / "ctx")
        return build_image(
            context,
            "jobplane",
            requirements=project_requirements(),
            build_args={"OFFLINE": "1", "JOBS_DIR": jobs_dir},
        )


def main(argv: list[str] | None = None) -> int:
    """Build (or find cached) the base, pause and test images; print one `ref archive` line per image."""
    logging.basicConfig(level=logging.INFO, format="[images] %(message)s")
    del argv
    for img in (base_image(), pause_image(), testapp_image(), project_image()):
        print(img.ref, img.archive)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
