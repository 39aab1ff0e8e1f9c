"""The identity commands of the ``jobplane`` CLI: users, groups, tokens and permissions of the API."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jobplane_api.identity import service
from jobplane_api.identity.errors import IdentityError, InvalidValue
from jobplane_api.settings import ApiSettings
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_UNAVAILABLE", "run_identity_command"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # nothing was written: unknown user, duplicate name, bad constraints
EXIT_UNAVAILABLE = 3  # no database configured, or it cannot be reached


def _error(message: str) -> None:
    print(f"jobplane: {message}", file=sys.stderr)


def _database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    try:
        url = ApiSettings().database_url.get_secret_value()
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors(include_input=False)})
        raise InvalidValue(f"invalid JOBPLANE_API_* settings: {', '.join(fields)}") from None
    if not url:
        raise LookupError("no database: set JOBPLANE_API_DATABASE_URL or pass --database-url")
    return url


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _expiry(args: argparse.Namespace, now: datetime) -> datetime | None:
    if args.expires_in_days is not None:
        if args.expires_in_days < 1:
            raise InvalidValue("--expires-in-days takes a whole number of days, 1 or more")
        return now + timedelta(days=args.expires_in_days)
    if args.expires is None:
        return None
    try:
        expires = datetime.fromisoformat(args.expires)
    except ValueError:
        raise InvalidValue(
            f"--expires {args.expires!r} is not an ISO 8601 date or time (e.g. 2027-01-31T18:00:00Z)"
        ) from None
    # A date or a time without a zone is read as UTC.
    return expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)


def _read_password() -> str:
    """A password from stdin: asked for twice at a terminal, else its first line (never an argument,
    which other local users could read in the process list)."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise InvalidValue("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _create_user(session: Session, args: argparse.Namespace) -> str:
    user = service.create_user(
        session=session,
        username=args.username,
        is_superuser=args.superuser,
        groups=args.group,
        password=args.password,
    )
    return f"created user {user.username}" + (" (superuser)" if user.is_superuser else "")


def _set_password(session: Session, args: argparse.Namespace) -> str:
    user = service.set_password(session=session, username=args.username, password=args.password)
    if user.password_hash is None:
        return f"removed the password of user {user.username}"
    return f"set the password of user {user.username}"


def _create_group(session: Session, args: argparse.Namespace) -> str:
    group = service.create_group(session=session, name=args.name)
    return f"created group {group.name}"


def _create_token(session: Session, args: argparse.Namespace) -> str:
    _, key = service.create_user_token(
        session=session,
        username=args.username,
        expires=_expiry(args, datetime.now(UTC)),
        write_enabled=not args.read_only,
        description=args.description,
    )
    return key


def _create_permission(session: Session, args: argparse.Namespace) -> str:
    constraints: Any = None
    if args.constraints is not None:
        try:
            constraints = json.loads(args.constraints)
        except json.JSONDecodeError as exc:
            raise InvalidValue(f"--constraints is not valid JSON: {exc}") from None
    permission = service.create_permission(
        session=session,
        name=args.name,
        object_types=_split(args.object_types),
        actions=_split(args.actions),
        constraints=constraints,
        description=args.description,
        users=args.user,
        groups=args.group,
    )
    return f"created permission {permission.name}"


_COMMANDS: dict[tuple[str, str], Callable[[Session, argparse.Namespace], str]] = {
    ("users", "create"): _create_user,
    ("users", "set-password"): _set_password,
    ("groups", "create"): _create_group,
    ("tokens", "create"): _create_token,
    ("permissions", "create"): _create_permission,
}


def run_identity_command(args: argparse.Namespace) -> int:
    """Run ``jobplane <users|groups|tokens|permissions> <action>``: all of it or, on an error, nothing."""
    command = _COMMANDS[(args.command, args.identity_action)]
    # Read before the database is opened, so that a prompt does not hold a connection.
    args.password = None
    wants_password = getattr(args, "password_stdin", False) or (
        args.identity_action == "set-password" and not args.remove
    )
    if wants_password:
        try:
            args.password = _read_password()
        except InvalidValue as exc:
            _error(exc.message)
            return EXIT_BAD_INPUT
    try:
        url = _database_url(args)
    except InvalidValue as exc:
        _error(exc.message)
        return EXIT_BAD_INPUT
    except LookupError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    engine = create_store_engine(url)
    try:
        ensure_schema(engine)
        with make_sessionmaker(engine).begin() as session:
            output = command(session, args)
    except IdentityError as exc:
        _error(exc.message)
        return EXIT_BAD_INPUT
    except OperationalError as exc:
        # The driver's own first line: it names the host, never the password.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        _error(f"cannot use the database: {reason}")
        return EXIT_UNAVAILABLE
    finally:
        engine.dispose()
    print(output)
    return EXIT_OK
