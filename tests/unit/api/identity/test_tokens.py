"""API token keys and their stored hashes, and password hashes in Django's format."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobplane_api.identity.passwords import hash_password, verify_password
from jobplane_api.identity.tokens import create_token, generate_key, hash_key
from jobplane_store.database import create_store_engine
from jobplane_store.identity import Token, User
from jobplane_store.models import Base


def test_keys_are_40_random_hex_characters() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"[0-9a-f]{40}", key) for key in keys)


def test_keys_are_stored_as_their_sha256() -> None:
    key = "0123456789abcdef0123456789abcdef01234567"
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(hash_key(key)) == 64
    assert hash_key(key) != hash_key(key.upper())


def test_create_token_keeps_only_the_hash_and_a_prefix(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    Base.metadata.create_all(engine)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        user = User(username="ada")
        session.add(user)
        _, key = create_token(
            session=session, user=user, expires=expires, write_enabled=False, description="ci"
        )
    with Session(engine) as session:
        stored = session.scalars(select(Token)).one()
        assert stored.key_hash == hash_key(key)
        assert stored.key_prefix == key[:8]
        assert (stored.expires, stored.write_enabled, stored.description) == (expires, False, "ci")
        assert stored.last_used is None
        assert stored.created - datetime.now(UTC) < timedelta(minutes=1)
        assert key not in {stored.key_hash, stored.key_prefix, stored.description}
    with Session(engine) as session, pytest.raises(ValueError, match="aware"):
        create_token(session=session, user=User(username="x"), expires=datetime(2030, 1, 1))
    engine.dispose()


def test_passwords_round_trip_and_read_django_hashes() -> None:
    encoded = hash_password("s3cret", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert verify_password("s3cret", encoded)
    assert not verify_password("S3cret", encoded)
    # A hash as Django writes it: pbkdf2_sha256$<iterations>$<salt>$<base64 of the derived key>.
    digest = hashlib.pbkdf2_hmac("sha256", b"hunter2", b"somesalt", 1000)
    django = f"pbkdf2_sha256$1000$somesalt${base64.b64encode(digest).decode()}"
    assert verify_password("hunter2", django)
    for unusable in (None, "", "!unusable", "md5$1$x$y", "pbkdf2_sha256$x$y$z"):
        assert not verify_password("hunter2", unusable)
