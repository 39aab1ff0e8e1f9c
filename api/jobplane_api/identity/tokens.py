"""API tokens: random keys shown once, stored as their SHA-256."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from jobplane_store.identity import Token, User
from jobplane_store.models import utcnow

__all__ = ["KEY_PREFIX_LENGTH", "create_token", "generate_key", "hash_key"]

log = logging.getLogger(__name__)

KEY_PREFIX_LENGTH = 8


def generate_key() -> str:
    """A new key: 40 hex characters (160 random bits), as Nautobot's."""
    return secrets.token_hex(20)


def hash_key(key: str) -> str:
    """The stored form of a key: keys are long and random, so a fast unsalted hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(
    *,
    session: Session,
    user: User,
    expires: datetime | None = None,
    write_enabled: bool = True,
    description: str = "",
    key: str | None = None,
) -> tuple[Token, str]:
    """Create a token for ``user``; returns it with its key, which is not stored and cannot be shown again.

    ``key`` is one the client chose (Nautobot lets it); by default a new random one is generated.
    """
    if expires is not None and expires.tzinfo is None:
        raise ValueError("a token's expiry must be an aware datetime")
    if key is None:
        key = generate_key()
    token = Token(
        user=user,
        key_hash=hash_key(key),
        key_prefix=key[:KEY_PREFIX_LENGTH],
        created=utcnow(),
        expires=expires,
        write_enabled=write_enabled,
        description=description,
    )
    session.add(token)
    session.flush()
    log.info(
        "created token user=%s prefix=%s expires=%s write_enabled=%s",
        user.username,
        token.key_prefix,
        expires.isoformat() if expires else None,
        write_enabled,
    )
    return token, key
