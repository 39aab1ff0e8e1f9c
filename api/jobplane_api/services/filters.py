"""Nautobot's list filters on SQL columns: ``field`` and its ``field__<lookup>`` forms, values ORed.

Nautobot's filter sets give every text field the lookups ``n``, ``ic``, ``nic``, ``isw``, ``nisw``, ``iew``,
``niew``, ``ie``, ``nie``, ``re``, ``nre``, ``ire``, ``nire``, and every date-time field ``n``, ``lt``,
``lte``, ``gt``, ``gte`` (plus ``isnull`` where it may be null). Several values of one parameter match any
of them; a negated lookup (``n...``) matches rows that match none.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, not_, or_

from jobplane_api.errors import BadRequest

__all__ = [
    "TEXT_LOOKUPS",
    "TIME_LOOKUPS",
    "parse_boolean",
    "parse_datetime",
    "split_lookup",
    "text_condition",
    "time_condition",
]

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}
TEXT_LOOKUPS = frozenset(
    {"", "n", "ic", "nic", "isw", "nisw", "iew", "niew", "ie", "nie", "re", "nre", "ire", "nire"}
)
TIME_LOOKUPS = frozenset({"", "n", "lt", "lte", "gt", "gte", "isnull"})


def split_lookup(key: str) -> tuple[str, str]:
    """``"expires__gte"`` → ``("expires", "gte")``; ``"expires"`` → ``("expires", "")``."""
    field, sep, lookup = key.partition("__")
    return field, lookup if sep else ""


def parse_boolean(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadRequest(body={name: [f"{value!r} is not a valid boolean: use true or false."]})


def parse_datetime(name: str, value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset; a space for ``T``; a date alone is its midnight); no zone is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            body={name: [f"{value!r} is not a date and time: use ISO 8601, e.g. 2027-01-31T12:00:00Z."]}
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _like(value: str) -> str:
    # The value is matched as written: LIKE's own wildcards in it are escaped, as Django escapes them.
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _regex(name: str, value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise BadRequest(body={name: [f"{value!r} is not a valid regular expression: {exc}."]}) from None
    return value


def _any(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else false()


def text_condition(column: Any, key: str, lookup: str, values: list[str]) -> ColumnElement[bool]:
    """The condition of ``field__lookup=value...`` on a text column (lookup in TEXT_LOOKUPS)."""
    negated = lookup.startswith("n")
    base = lookup[1:] if negated else lookup
    match: dict[str, Callable[[str], ColumnElement[bool]]] = {
        "": lambda value: column == value,
        "ic": lambda value: column.ilike(f"%{_like(value)}%", escape="\\"),
        "isw": lambda value: column.ilike(f"{_like(value)}%", escape="\\"),
        "iew": lambda value: column.ilike(f"%{_like(value)}", escape="\\"),
        "ie": lambda value: column.ilike(_like(value), escape="\\"),
        "re": lambda value: column.regexp_match(_regex(key, value)),
        "ire": lambda value: column.regexp_match(_regex(key, value), flags="i"),
    }
    condition = _any([match[base](value) for value in values])
    return not_(condition) if negated else condition


def time_condition(column: Any, key: str, lookup: str, values: list[str]) -> ColumnElement[bool]:
    """The condition of ``field__lookup=value...`` on a date-time column (lookup in TIME_LOOKUPS).

    ``field__n`` keeps the rows without a value, as Django's ``exclude()`` keeps them.
    """
    if lookup == "isnull":
        wanted = {parse_boolean(key, value) for value in values}
        return _any([column.is_(None) if flag else column.is_not(None) for flag in wanted])
    moments = [parse_datetime(key, value) for value in values]
    if lookup == "":
        return column.in_(moments)  # type: ignore[no-any-return]
    if lookup == "n":
        return or_(column.is_(None), column.not_in(moments))
    compare: Callable[[Any, Any], ColumnElement[bool]] = {
        "lt": operator.lt,
        "lte": operator.le,
        "gt": operator.gt,
        "gte": operator.ge,
    }[lookup]
    return _any([compare(column, moment) for moment in moments])
