"""Errors of the identity layer; the API maps them to responses in one place, the CLI to exit codes."""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "AuthenticationFailed",
    "IdentityError",
    "InvalidPermission",
    "InvalidValue",
    "NotFound",
]


class IdentityError(Exception):
    """Base of the identity errors; ``message`` is meant for the person who made the request."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationFailed(IdentityError):
    """The request's credentials were given but are not valid (401)."""


class AlreadyExists(IdentityError):
    """A user, group or permission with that name exists already."""


class NotFound(IdentityError):
    """A named user, group or token does not exist."""


class InvalidValue(IdentityError, ValueError):
    """A name, an expiry or a permission that cannot be accepted as given."""


class InvalidPermission(InvalidValue):
    """An object permission names an unknown object type, action, field or lookup, or a bad value."""
