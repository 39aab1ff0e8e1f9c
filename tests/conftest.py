"""Fixtures shared by every tier: a real Postgres started for the session, and results-store URLs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from tests.cluster.cluster import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[object, object, T]) -> T:
    """asyncio.run in a thread of its own: in the whole suite Playwright's sync API (tests/e2e/ui) keeps an
    event loop running in the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def missing_component(message: str) -> None:
    """A real component is absent: a failure in CI (where .ci/run installs it), a skip on a laptop."""
    if IN_CI:
        pytest.fail(f"{message} (CI must install it: see .ci/run)")
    pytest.skip(message)


def _postgres_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class PostgresServer:
    """A throwaway Postgres cluster on 127.0.0.1, owned by this test session.

    ``also_listen``/``trusted_network``: one more address to listen on and the network whose clients it
    trusts (a test cluster's bridge address and pod network, for pods that use the database).
    """

    def __init__(self, bindir: Path, *, also_listen: str = "", trusted_network: str = "") -> None:
        self.bindir = bindir
        self.also_listen = also_listen
        self.trusted_network = trusted_network
        self.root = Path(tempfile.mkdtemp(prefix="jobplane-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # initdb refuses to run as root; the Debian package's "postgres" user owns the cluster then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> None:
        if self.as_user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "jobplane", "--auth=trust", "-E", "UTF8"
        )
        if self.trusted_network:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.trusted_network} trust\n")
        listen = ",".join(filter(None, ("127.0.0.1", self.also_listen)))
        options = f"-c listen_addresses={listen} -p {self.port} -k {self.root} -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://jobplane@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=jobplane dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def start_postgres(*, also_listen: str = "", trusted_network: str = "") -> Iterator[PostgresServer]:
    """A PostgresServer started for the block and stopped after it (see PostgresServer for the options)."""
    bindir = _postgres_bindir()
    if bindir is None:
        missing_component("Postgres server binaries (initdb, pg_ctl) are not installed")
    assert bindir is not None
    server = PostgresServer(bindir, also_listen=also_listen, trusted_network=trusted_network)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's Postgres."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty results-store database: the SQLite default, and a real Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobplane.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))
