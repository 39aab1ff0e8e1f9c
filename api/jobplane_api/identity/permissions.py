"""Object permissions as in Nautobot: object types, actions, and constraints checked in Python or in SQL.

Constraints are a dict of lookups that must all match, or a list of such dicts of which one must match.
A lookup is ``field`` or ``field__<lookup>`` (Django's spelling, with Nautobot's filter aliases ``isw``,
``ic``, ``n`` and ``neq``); the value ``"$user"`` stands for the requesting user's username.
Each object type declares the fields a constraint may name: Kubernetes-backed objects (jobs) are
matched in Python against a mapping, store-backed objects become where-clauses on their model.
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from jobplane_api.identity.errors import InvalidPermission
from jobplane_store.models import FileProxy, JobLogEntry, JobResult

__all__ = [
    "ACTIONS",
    "CONSTRAINT_FIELDS",
    "LOOKUPS",
    "OBJECT_TYPES",
    "READ_ACTIONS",
    "USER_TOKEN",
    "CompiledConstraints",
    "ConstraintField",
    "FieldKind",
    "Lookup",
    "compile_constraints",
    "constraints_to_sql",
    "evaluate_constraints",
    "validate_permission",
]

log = logging.getLogger(__name__)

OBJECT_TYPES = frozenset(
    {
        "extras.job",
        "extras.jobresult",
        "extras.joblogentry",
        "extras.fileproxy",
        "extras.jobqueue",
        "extras.scheduledjob",
        "extras.gitrepository",
        "users.user",
        "users.group",
        "users.token",
        "users.objectpermission",
    }
)
ACTIONS = frozenset({"view", "add", "change", "delete", "run", "approve"})
# What a read-only token (and an anonymous reader) may still do.
READ_ACTIONS = frozenset({"view"})
USER_TOKEN = "$user"


class FieldKind(StrEnum):
    STRING = "string"
    UUID = "uuid"
    BOOLEAN = "boolean"
    INTEGER = "integer"


@dataclass(frozen=True)
class ConstraintField:
    """A field constraints may name; ``column`` is set for object types matched in SQL."""

    kind: FieldKind
    column: InstrumentedAttribute[Any] | None = None


def _python(**fields: FieldKind) -> dict[str, ConstraintField]:
    return {name: ConstraintField(kind) for name, kind in fields.items()}


def _sql(**columns: tuple[FieldKind, InstrumentedAttribute[Any]]) -> dict[str, ConstraintField]:
    return {name: ConstraintField(kind, column) for name, (kind, column) in columns.items()}


_S, _U, _B = FieldKind.STRING, FieldKind.UUID, FieldKind.BOOLEAN

# The fields each object type's constraints may name. An object type missing here takes no constraints.
CONSTRAINT_FIELDS: dict[str, dict[str, ConstraintField]] = {
    "extras.job": _python(
        id=_U,
        name=_S,
        grouping=_S,
        module_name=_S,
        job_class_name=_S,
        class_path=_S,
        enabled=_B,
        installed=_B,
        hidden=_B,
        description=_S,
    ),
    "extras.jobresult": _sql(
        id=(_U, JobResult.id),
        name=(_S, JobResult.name),
        user=(_S, JobResult.user),
        status=(_S, JobResult.status),
        job_model_id=(_U, JobResult.job_model_id),
        queue=(_S, JobResult.queue),
        job_class_path=(_S, JobResult.job_class_path),
    ),
    "extras.joblogentry": _sql(
        job_result_id=(_U, JobLogEntry.job_result_id),
        log_level=(_S, JobLogEntry.log_level),
        grouping=(_S, JobLogEntry.grouping),
    ),
    "extras.fileproxy": _sql(
        name=(_S, FileProxy.name),
        job_result_id=(_U, FileProxy.job_result_id),
    ),
    "extras.gitrepository": _python(id=_U, name=_S, slug=_S, remote_url=_S, branch=_S),
    # user: the username the schedule's runs are requested by ({"user": "$user"}: one's own schedules).
    "extras.scheduledjob": _python(id=_U, name=_S, user=_S, interval=_S, enabled=_B, job_model_id=_U),
}

# Spelling in a constraint -> the lookup it means.
LOOKUPS: dict[str, str] = {
    "exact": "exact",
    "iexact": "iexact",
    "in": "in",
    "startswith": "startswith",
    "istartswith": "istartswith",
    "isw": "istartswith",
    "contains": "contains",
    "icontains": "icontains",
    "ic": "icontains",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "isnull": "isnull",
    "neq": "neq",
    "n": "neq",
}
_TEXT_LOOKUPS = frozenset({"iexact", "startswith", "istartswith", "contains", "icontains"})
_ORDER_LOOKUPS = frozenset({"gt", "gte", "lt", "lte"})
_LOOKUPS_BY_KIND: dict[FieldKind, frozenset[str]] = {
    FieldKind.STRING: frozenset(LOOKUPS.values()),
    FieldKind.UUID: frozenset({"exact", "in", "isnull", "neq"}),
    FieldKind.BOOLEAN: frozenset({"exact", "isnull", "neq"}),
    FieldKind.INTEGER: frozenset({"exact", "in", "isnull", "neq"} | _ORDER_LOOKUPS),
}


@dataclass(frozen=True)
class Lookup:
    """One compiled lookup: ``value`` is a scalar, or a tuple for ``in`` and a list-valued ``neq``."""

    field: str
    lookup: str
    value: Any

    def resolve(self, username: str | None) -> tuple[bool, Any]:
        """(usable, value) with ``$user`` replaced; not usable when ``$user`` has no user to stand for."""
        if isinstance(self.value, tuple):
            values = tuple(username if v == USER_TOKEN else v for v in self.value)
            return True, tuple(v for v in values if v is not None)
        if self.value == USER_TOKEN:
            return username is not None, username
        return True, self.value


# An OR of ANDs of lookups.
CompiledConstraints = tuple[tuple[Lookup, ...], ...]


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def validate_permission(object_types: Sequence[str], actions: Sequence[str], constraints: Any) -> None:
    """Raise :class:`InvalidPermission` unless the three parts make a permission that can be enforced."""
    if not object_types:
        raise InvalidPermission("a permission needs at least one object type")
    if not actions:
        raise InvalidPermission("a permission needs at least one action")
    for object_type in object_types:
        if object_type not in OBJECT_TYPES:
            raise InvalidPermission(
                f"unknown object type {object_type!r}; known object types: {_names(OBJECT_TYPES)}"
            )
    for action in actions:
        if action not in ACTIONS:
            raise InvalidPermission(f"unknown action {action!r}; known actions: {_names(ACTIONS)}")
    compile_constraints(constraints, object_types)


def compile_constraints(constraints: Any, object_types: Iterable[str]) -> CompiledConstraints | None:
    """Check constraints against every object type they apply to; None means every object matches."""
    object_types = list(object_types)
    if constraints is None:
        return None
    if isinstance(constraints, Mapping):
        alternatives: list[Any] = [constraints]
    elif isinstance(constraints, list):
        alternatives = constraints
    else:
        raise InvalidPermission("constraints must be a JSON object or a list of them (one must match)")
    compiled: list[tuple[Lookup, ...]] = []
    for alternative in alternatives:
        if not isinstance(alternative, Mapping):
            raise InvalidPermission(
                f"constraints given as a list must hold JSON objects, not {type(alternative).__name__}"
            )
        if not alternative:
            return None  # an empty set of lookups matches everything, so the whole OR does
        compiled.append(
            tuple(_compile_lookup(str(key), value, object_types) for key, value in alternative.items())
        )
    return tuple(compiled) or None


def _compile_lookup(key: str, value: Any, object_types: list[str]) -> Lookup:
    field, _, spelling = key.partition("__")
    spelling = spelling or "exact"
    lookup = LOOKUPS.get(spelling)
    if lookup is None:
        raise InvalidPermission(
            f"unknown lookup {spelling!r} in constraint {key!r}; lookups: {_names(LOOKUPS)}"
        )
    kind: FieldKind | None = None
    for object_type in object_types:
        fields = CONSTRAINT_FIELDS.get(object_type)
        if fields is None:
            raise InvalidPermission(f"permissions on {object_type} cannot have constraints")
        if field not in fields:
            raise InvalidPermission(
                f"constraint {key!r}: {object_type} has no field {field!r}; fields: {_names(fields)}"
            )
        if kind is not None and fields[field].kind != kind:
            raise InvalidPermission(f"constraint {key!r}: {field!r} differs in type between object types")
        kind = fields[field].kind
    assert kind is not None
    if lookup not in _LOOKUPS_BY_KIND[kind]:
        raise InvalidPermission(
            f"constraint {key!r}: lookup {spelling!r} does not apply to {field!r} (a {kind} field); "
            f"use one of: {_names(_LOOKUPS_BY_KIND[kind])}"
        )
    return Lookup(field, lookup, _compile_value(key, kind, lookup, value))


def _compile_value(key: str, kind: FieldKind, lookup: str, value: Any) -> Any:
    if lookup == "isnull":
        if not isinstance(value, bool):
            raise InvalidPermission(f"constraint {key!r} takes true or false")
        return value
    if lookup == "in" or (lookup == "neq" and isinstance(value, list)):
        if not isinstance(value, list):
            raise InvalidPermission(f"constraint {key!r} takes a list of {kind} values")
        return tuple(_scalar(key, kind, item, nullable=False) for item in value)
    if kind == FieldKind.STRING and (lookup in _TEXT_LOOKUPS or lookup in _ORDER_LOOKUPS):
        if not isinstance(value, str):
            raise InvalidPermission(f"constraint {key!r} takes a string")
        return value
    return _scalar(key, kind, value, nullable=lookup in ("exact", "neq"))


def _scalar(key: str, kind: FieldKind, value: Any, *, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise InvalidPermission(f"constraint {key!r} cannot hold null (use __isnull)")
    if kind == FieldKind.STRING:
        if isinstance(value, str):
            return value
    elif kind == FieldKind.UUID:
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise InvalidPermission(f"constraint {key!r}: {value!r} is not a UUID") from None
    elif kind == FieldKind.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidPermission(f"constraint {key!r} takes a {kind} value, not {value!r}")


# --- matching in Python ---------------------------------------------------------------------------


def _normalized(value: Any) -> Any:
    """Mapping values as compiled constraint values hold them: UUIDs as their canonical string."""
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
            return False
        try:
            return compare(actual, expected)
        except TypeError:
            return False

    return check


def _text_check(compare: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        text = _text(actual)
        return text is not None and compare(text, expected)

    return check


def _neq(actual: Any, expected: Any) -> bool:
    if isinstance(expected, tuple):
        return actual not in expected
    return bool(actual != expected)


_PYTHON_CHECKS: dict[str, Callable[[Any, Any], bool]] = {
    "exact": lambda actual, expected: bool(actual == expected),
    "iexact": _text_check(lambda actual, expected: actual.lower() == expected.lower()),
    "in": lambda actual, expected: actual is not None and actual in expected,
    "startswith": _text_check(lambda actual, expected: actual.startswith(expected)),
    "istartswith": _text_check(lambda actual, expected: actual.lower().startswith(expected.lower())),
    "contains": _text_check(lambda actual, expected: expected in actual),
    "icontains": _text_check(lambda actual, expected: expected.lower() in actual.lower()),
    "gt": _ordered(lambda actual, expected: actual > expected),
    "gte": _ordered(lambda actual, expected: actual >= expected),
    "lt": _ordered(lambda actual, expected: actual < expected),
    "lte": _ordered(lambda actual, expected: actual <= expected),
    "isnull": lambda actual, expected: (actual is None) == expected,
    "neq": _neq,
}


def evaluate_constraints(
    constraints: CompiledConstraints | None, obj: Mapping[str, Any], username: str | None
) -> bool:
    """Whether ``obj`` matches; a field the constraints name and ``obj`` lacks matches nothing."""
    if constraints is None:
        return True
    return any(all(_matches(lookup, obj, username) for lookup in lookups) for lookups in constraints)


def _matches(lookup: Lookup, obj: Mapping[str, Any], username: str | None) -> bool:
    usable, expected = lookup.resolve(username)
    if not usable:
        return False
    if lookup.field not in obj:
        # A caller that builds its mappings without a field: deny rather than guess (and say so).
        log.warning("object lacks a constrained field field=%s lookup=%s", lookup.field, lookup.lookup)
        return False
    return _PYTHON_CHECKS[lookup.lookup](_normalized(obj[lookup.field]), expected)


# --- matching in SQL ------------------------------------------------------------------------------


def constraints_to_sql(
    constraints: CompiledConstraints | None, object_type: str, username: str | None
) -> ColumnElement[bool]:
    """A where-clause selecting the rows of ``object_type`` that match."""
    fields = CONSTRAINT_FIELDS.get(object_type)
    if fields is None or any(field.column is None for field in fields.values()):
        raise ValueError(f"{object_type} is not matched in SQL")
    if constraints is None:
        return true()
    return or_(
        *(
            and_(*(_clause(lookup, fields[lookup.field], username) for lookup in lookups))
            for lookups in constraints
        )
    )


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _bind(kind: FieldKind, value: Any) -> Any:
    return uuid.UUID(value) if kind == FieldKind.UUID and value is not None else value


def _clause(lookup: Lookup, field: ConstraintField, username: str | None) -> ColumnElement[bool]:
    usable, value = lookup.resolve(username)
    if not usable:
        return false()
    assert field.column is not None
    column: ColumnElement[Any] = field.column.expression
    if isinstance(value, tuple):
        values = [_bind(field.kind, v) for v in value]
        if lookup.lookup == "in":
            return column.in_(values)
        # "not in" keeps NULLs, as it does in Python: None is not one of the values.
        return or_(column.is_(None), column.not_in(values))
    value = _bind(field.kind, value)
    match lookup.lookup:
        case "exact":
            return column.is_(None) if value is None else column == value
        case "iexact":
            return func.lower(column) == func.lower(value)
        case "startswith":
            return column.startswith(value, autoescape=True)
        case "istartswith":
            return column.istartswith(value, autoescape=True)
        case "contains":
            return column.contains(value, autoescape=True)
        case "icontains":
            return column.icontains(value, autoescape=True)
        case "gt" | "gte" | "lt" | "lte":
            compared: ColumnElement[bool] = _COMPARISONS[lookup.lookup](column, value)
            return compared
        case "isnull":
            return column.is_(None) if value else column.is_not(None)
        case "neq":
            return column.is_distinct_from(value)
    raise AssertionError(f"unhandled lookup {lookup.lookup}")
