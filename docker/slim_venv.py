"""Shrinks the image's venv: drops what no jobplane command loads, zips pure-Python packages, compiles.

Run by the Dockerfile's builder stage with the venv's own interpreter: `python slim_venv.py SITE_PACKAGES`.

1. Removed: the packages' own tests and test harnesses, sources of their compiled extensions (.c, .pyx,
   .h, ...), files for other platforms or tools (urllib3's browser backend, FastAPI's notes for coding
   agents, dotfiles), and
   kubernetes' asyncio client (`kubernetes.aio`, 35+), which nothing here imports: we use the synchronous
   client, and kopf talks to the API through aiohttp itself.
2. Every top-level package made of Python modules only (no extension, no data file) moves into one zip
   on sys.path (a .pth file), with its sources and their bytecode: Python imports from zips by itself
   (zipimport), tracebacks still show the source lines, and the text compresses about five to one.
   The kubernetes client alone is 55 MB of generated modules on disk and 10 MB zipped.
3. The rest is compiled in place. Bytecode is unchecked-hash: the venv never changes in the image, and
   the non-root user could not write fresher bytecode at run time anyway.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
import zipfile
from pathlib import Path

# Our own packages stay on disk: their templates, static files and migrations are read as files.
KEEP_ON_DISK = (
    "jobplane",
    "jobplane_runtime",
    "jobplane_store",
    "jobplane_crds",
    "jobplane_operator",
    "jobplane_api",
)
UNUSED_TREES = (
    "kubernetes/aio",
    "sqlalchemy/testing",  # SQLAlchemy's and Alembic's harnesses for their own test suites
    "alembic/testing",
    "urllib3/contrib/emscripten",
    "fastapi/.agents",
    "jsonschema/benchmarks",
)
TEST_DIRS = ("tests", "test")
BUILD_SOURCES = ("*.c", "*.cpp", "*.h", "*.hpp", "*.pyx", "*.pxd", "*.pxi")
MODULE_FILES = (".py", ".pyi", ".typed")
ZIP_NAME = "jobplane-deps.zip"


def remove_unused(site: Path) -> None:
    for tree in UNUSED_TREES:
        shutil.rmtree(site / tree, ignore_errors=True)
    for path in sorted(site.rglob("*"), reverse=True):  # children before their parents
        relative = path.relative_to(site)
        if not path.exists() or relative.parts[0].endswith(".dist-info"):
            continue
        if path.is_dir() and path.name in TEST_DIRS:
            shutil.rmtree(path)
        elif path.is_file() and (
            any(path.match(pattern) for pattern in BUILD_SOURCES)
            or path.name.startswith(".")
            or (relative.parts[0] == "kubernetes" and path.name.endswith("_test.py"))
        ):
            path.unlink()


def pure_packages(site: Path) -> list[Path]:
    """Top-level regular packages whose files are all Python modules (and type information)."""
    found = []
    for package in sorted(site.iterdir()):
        if not (package / "__init__.py").is_file() or package.name in KEEP_ON_DISK:
            continue
        files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if all(p.suffix in MODULE_FILES for p in files):
            found.append(package)
    return found


def zip_packages(site: Path, packages: list[Path]) -> Path:
    """One zip with each package's sources and, beside each, its bytecode where zipimport looks for it."""
    archive = site / ZIP_NAME
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for package in packages:
            for path in sorted(package.rglob("*")):
                if not path.is_file() or "__pycache__" in path.parts:
                    continue
                name = str(path.relative_to(site))
                zf.write(path, name)
                if path.suffix == ".py":
                    # zipimport reads `module.pyc` next to `module.py`, not __pycache__.
                    pyc = f"{path}c"
                    py_compile.compile(
                        str(path), cfile=pyc, dfile=f"{archive}/{name}", doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                    )  # fmt: skip
                    zf.write(pyc, name + "c")
            shutil.rmtree(package)
    (site / "jobplane-deps.pth").write_text(f"{ZIP_NAME}\n")
    return archive


def main(argv: list[str]) -> int:
    (site_arg,) = argv
    site = Path(site_arg)
    remove_unused(site)
    packages = pure_packages(site)
    zip_packages(site, packages)
    ok = compileall.compile_dir(
        site, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    print(f"zipped {len(packages)} packages: {', '.join(p.name for p in packages)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
