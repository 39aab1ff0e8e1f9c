"""Who is asking and what they may do: the principal a request carries, and the grants it holds."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, or_

from jobplane_api.identity.errors import InvalidPermission
from jobplane_api.identity.permissions import (
    OBJECT_TYPES,
    READ_ACTIONS,
    CompiledConstraints,
    compile_constraints,
    constraints_to_sql,
    evaluate_constraints,
)

__all__ = ["Grant", "Principal"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Grant:
    """One enabled object permission, with its constraints compiled; ``constraints`` None: every object."""

    object_types: frozenset[str]
    actions: frozenset[str]
    constraints: CompiledConstraints | None = None

    @classmethod
    def from_permission(
        cls, *, name: str, object_types: Sequence[str], actions: Sequence[str], constraints: Any
    ) -> Grant | None:
        """The grant of a stored permission, or None (and a warning) when its constraints are invalid."""
        try:
            compiled = compile_constraints(constraints, object_types)
        except InvalidPermission as exc:
            # Written around the validation (by hand in SQL, or by an older version): it grants nothing.
            log.warning("ignoring invalid object permission name=%s error=%s", name, exc.message)
            return None
        return cls(frozenset(object_types), frozenset(actions), compiled)

    def covers(self, action: str, object_type: str) -> bool:
        return action in self.actions and object_type in self.object_types


@dataclass(frozen=True)
class Principal:
    """The identity behind a request. A read-only token (``write_enabled`` False) may only view,
    whatever its user's permissions, superusers included."""

    username: str | None
    is_superuser: bool = False
    write_enabled: bool = False
    grants: tuple[Grant, ...] = ()
    user_id: int | None = None

    @classmethod
    def anonymous(cls, *, read: bool = False) -> Principal:
        """A request without credentials; ``read`` (allow_anonymous_read) lets it view every object type."""
        grants = (Grant(OBJECT_TYPES, READ_ACTIONS),) if read else ()
        return cls(username=None, grants=grants)

    @classmethod
    def anonymous_reader(cls) -> Principal:
        """The anonymous caller when allow_anonymous_read is on: views every object type, never writes."""
        return cls.anonymous(read=True)

    @property
    def is_anonymous(self) -> bool:
        return self.username is None

    def may_use(self, action: str) -> bool:
        """Whether the token lets this action through at all (read-only tokens only view)."""
        return self.write_enabled or action in READ_ACTIONS

    def _grants(self, action: str, object_type: str) -> list[Grant]:
        return [grant for grant in self.grants if grant.covers(action, object_type)]

    def has(self, action: str, object_type: str) -> bool:
        """Whether any object of the type may be acted on (constraints aside): Django's ``has_perm``."""
        if not self.may_use(action):
            return False
        return self.is_superuser or bool(self._grants(action, object_type))

    def allows(self, action: str, object_type: str, obj: Mapping[str, Any]) -> bool:
        """Whether this object may be acted on; ``obj`` holds the fields constraints may name."""
        if not self.may_use(action):
            return False
        if self.is_superuser:
            return True
        return any(
            evaluate_constraints(grant.constraints, obj, self.username)
            for grant in self._grants(action, object_type)
        )

    def restrict(self, action: str, object_type: str, objects: Iterable[M]) -> list[M]:
        """The objects this principal may act on, in their order: ``restrict()`` of a queryset in Python."""
        return [obj for obj in objects if self.allows(action, object_type, obj)]

    def sql_filter(self, action: str, object_type: str) -> ColumnElement[bool] | None:
        """A where-clause for the rows that may be acted on; None: all of them, ``false()``: none."""
        if not self.may_use(action):
            return false()
        if self.is_superuser:
            return None
        grants = self._grants(action, object_type)
        if not grants:
            return false()
        if any(grant.constraints is None for grant in grants):
            return None
        return or_(*(constraints_to_sql(grant.constraints, object_type, self.username) for grant in grants))
