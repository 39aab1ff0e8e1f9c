"""Password hashes in Django's ``pbkdf2_sha256`` format, so that Nautobot users can be carried over."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["ITERATIONS", "hash_password", "verify_password"]

ALGORITHM = "pbkdf2_sha256"
# Django 5.0's count; a stored hash keeps its own, so raising this never locks anyone out.
ITERATIONS = 720_000


def _derive(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return base64.b64encode(digest).decode("ascii")


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_urlsafe(16)
    return f"{ALGORITHM}${iterations}${salt}${_derive(password, salt, iterations)}"


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded``; False for no hash or one in a format we do not know."""
    if not encoded:
        return False
    try:
        algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != ALGORITHM or rounds < 1:
        return False
    return hmac.compare_digest(_derive(password, salt, rounds), expected)
