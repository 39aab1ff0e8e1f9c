"""`jobplane users|groups|tokens|permissions create` as an operator runs them, against a real Postgres."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobplane_api.identity import authenticate
from jobplane_store.database import create_store_engine, make_sessionmaker
from jobplane_store.identity import ObjectPermission, Token, User

pytestmark = pytest.mark.postgres


class Cli:
    """Runs the real `jobplane` command with JOBPLANE_API_DATABASE_URL set (or not)."""

    def __init__(self, tmp_path: Path, database_url: str | None) -> None:
        self.cwd = tmp_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_API_")}
        if database_url is not None:
            self.env["JOBPLANE_API_DATABASE_URL"] = database_url

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobplane.cli", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def refused(self, *args: str) -> str:
        """The command exits 2 with one line on stderr and nothing on stdout; returns that line."""
        done = self.run(*args)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        return lines[0]


@pytest.fixture
def cli(tmp_path: Path, postgres_url: str) -> Cli:
    return Cli(tmp_path, postgres_url)


def count(database_url: str, model: type[User] | type[ObjectPermission] | type[Token]) -> int:
    engine = create_store_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_an_operator_sets_up_a_group_a_user_a_permission_and_a_token(cli: Cli, postgres_url: str) -> None:
    assert cli.ok("groups", "create", "ops") == "created group ops\n"
    assert cli.ok("users", "create", "ada", "--group", "ops") == "created user ada\n"
    assert cli.ok("users", "create", "root", "--superuser") == "created user root (superuser)\n"
    out = cli.ok(
        "permissions",
        "create",
        "run compliance",
        "--object-types",
        "extras.job, extras.jobresult",
        "--actions",
        "view,run",
        "--constraints",
        '[{"name__isw": "audit"}, {"name": "$user"}]',
        "--group",
        "ops",
        "--description",
        "compliance team",
    )
    assert out == "created permission run compliance\n"
    stdout = cli.ok("tokens", "create", "ada", "--expires-in-days", "7", "--read-only", "--description", "ci")
    assert re.fullmatch(r"[0-9a-f]{40}\n", stdout)
    key = stdout.strip()

    engine = create_store_engine(postgres_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            token = session.scalars(select(Token)).one()
            assert (token.key_prefix, token.write_enabled, token.description) == (key[:8], False, "ci")
            assert token.expires is not None
            assert abs(token.expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
            principal = authenticate(session=session, authorization=f"Token {key}", now=datetime.now(UTC))
            permission = session.scalars(select(ObjectPermission)).one()
            assert permission.object_types == ["extras.job", "extras.jobresult"]
            assert permission.description == "compliance team"
    finally:
        engine.dispose()
    assert (principal.username, principal.write_enabled) == ("ada", False)
    assert principal.allows("view", "extras.job", {"name": "Audit configs"})
    assert principal.allows("view", "extras.job", {"name": "ada"})
    assert not principal.allows("view", "extras.job", {"name": "Cleanup"})
    assert not principal.has("run", "extras.job")  # a read-only token


def test_refused_commands_write_nothing(cli: Cli, postgres_url: str) -> None:
    cli.ok("users", "create", "ada")
    assert cli.refused("users", "create", "ada") == "jobplane: user 'ada' already exists"
    assert cli.refused("users", "create", "bob", "--group", "missing") == "jobplane: no group 'missing'"
    assert cli.refused("users", "create", "b o b").startswith("jobplane: username 'b o b' may only hold")
    assert cli.refused("tokens", "create", "nobody") == "jobplane: no user 'nobody'"
    assert cli.refused("tokens", "create", "ada", "--expires", "soon").startswith(
        "jobplane: --expires 'soon' is not an ISO 8601 date or time"
    )
    assert cli.refused("tokens", "create", "ada", "--expires", "2001-01-01T00:00:00Z") == (
        "jobplane: the expiry 2001-01-01T00:00:00+00:00 is in the past"
    )
    permission = ["permissions", "create", "p", "--object-types", "extras.job", "--actions", "view"]
    assert cli.refused(*permission, "--constraints", "{grouping: x}").startswith(
        "jobplane: --constraints is not valid JSON"
    )
    assert cli.refused(*permission, "--constraints", '{"owner": "x"}') == (
        "jobplane: constraint 'owner': extras.job has no field 'owner'; fields: class_path, description,"
        " enabled, grouping, hidden, id, installed, job_class_name, module_name, name"
    )
    assert cli.refused(*permission, "--user", "ada", "--user", "nobody") == "jobplane: no user 'nobody'"
    assert cli.refused(
        "permissions", "create", "p", "--object-types", "extras.jobs", "--actions", "view"
    ).startswith("jobplane: unknown object type 'extras.jobs'; known object types: extras.fileproxy")
    assert cli.refused(
        "permissions", "create", "p", "--object-types", "extras.job", "--actions", "execute"
    ).startswith("jobplane: unknown action 'execute'")
    assert (count(postgres_url, User), count(postgres_url, Token), count(postgres_url, ObjectPermission)) == (
        1,
        0,
        0,
    )


def test_the_database_comes_from_the_option_or_the_api_setting(tmp_path: Path, postgres_url: str) -> None:
    unset = Cli(tmp_path, None)
    done = unset.run("groups", "create", "ops")
    assert done.returncode == 3
    assert done.stderr == "jobplane: no database: set JOBPLANE_API_DATABASE_URL or pass --database-url\n"
    assert unset.ok("groups", "create", "ops", "--database-url", postgres_url) == "created group ops\n"
    sqlite_url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    # The option wins over the setting.
    assert Cli(tmp_path, postgres_url).ok("users", "create", "ada", "--database-url", sqlite_url)
    assert count(sqlite_url, User) == 1
    assert count(postgres_url, User) == 0
