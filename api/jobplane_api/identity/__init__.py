"""Identity of API callers: users, groups, tokens, Nautobot-style object permissions and authentication."""

from __future__ import annotations

from jobplane_api.identity.authentication import authenticate, load_grants, principal_of_user
from jobplane_api.identity.errors import (
    AlreadyExists,
    AuthenticationFailed,
    IdentityError,
    InvalidPermission,
    InvalidValue,
    NotFound,
)
from jobplane_api.identity.permissions import ACTIONS, OBJECT_TYPES, READ_ACTIONS, validate_permission
from jobplane_api.identity.principal import Grant, Principal
from jobplane_api.identity.tokens import create_token, generate_key, hash_key

__all__ = [
    "ACTIONS",
    "OBJECT_TYPES",
    "READ_ACTIONS",
    "AlreadyExists",
    "AuthenticationFailed",
    "Grant",
    "IdentityError",
    "InvalidPermission",
    "InvalidValue",
    "NotFound",
    "Principal",
    "authenticate",
    "create_token",
    "generate_key",
    "hash_key",
    "load_grants",
    "principal_of_user",
    "validate_permission",
]
