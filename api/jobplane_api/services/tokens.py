"""API tokens as Nautobot's ``/api/users/tokens/`` shows them: each user manages their own, superusers all.

Keys are stored hashed (SHA-256), so a key is in the answer that creates its token and never again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, not_, or_, select, true
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from jobplane_api.errors import BadRequest, NotAuthenticated, NotFound
from jobplane_api.identity import service as identity
from jobplane_api.identity.errors import AuthenticationFailed
from jobplane_api.identity.tokens import create_token, hash_key
from jobplane_api.pagination import Page, PageParams
from jobplane_api.schemas import TokenProvision, TokenRead, TokenUserRead, TokenWrite
from jobplane_api.services.filters import (
    TEXT_LOOKUPS,
    TIME_LOOKUPS,
    parse_boolean,
    split_lookup,
    text_condition,
    time_condition,
)
from jobplane_store.identity import Token, User

if TYPE_CHECKING:
    from jobplane_api.identity import Principal

__all__ = [
    "TOKEN",
    "basic_credentials",
    "create_token_for",
    "delete_token",
    "filter_conditions",
    "get_token",
    "list_tokens",
    "password_user",
    "provision_token",
    "token_record",
    "token_user",
    "update_token",
]

TOKEN = "users.token"


def token_record(token: Token, user: User, *, base_url: str, key: str | None = None) -> TokenRead:
    return TokenRead(
        id=token.id,
        display=f"{token.key_prefix}... ({user.username})",
        url=f"{base_url}/api/users/tokens/{token.id}/",
        user=TokenUserRead(id=user.id, display=user.username, username=user.username),
        created=token.created,
        expires=token.expires,
        last_used=token.last_used,
        key=key,
        key_prefix=token.key_prefix,
        write_enabled=token.write_enabled,
        description=token.description,
    )


def _owned_by(principal: Principal) -> ColumnElement[bool]:
    """The tokens a caller may see and change: their own; a superuser's: everyone's."""
    if principal.is_anonymous or principal.user_id is None:
        # An anonymous reader (allow_anonymous_read) sees jobs and results, never tokens.
        raise NotAuthenticated()
    if principal.is_superuser:
        return true()
    return Token.user_id == principal.user_id


KEY_PARTS = (
    "Keys are stored hashed, so a token is found by its whole key only (key, key__n), never by a part of it."
)


def _whole_numbers(key: str, values: list[str]) -> list[int]:
    try:
        return [int(value) for value in values]
    except ValueError:
        raise BadRequest(body={key: ["Enter a whole number."]}) from None


def _user_condition(values: list[str]) -> ColumnElement[bool]:
    """A user by username or id, as Nautobot's natural-key-or-pk filters take one."""
    ids = [int(value) for value in values if value.isdigit()]
    return or_(User.username.in_(values), Token.user_id.in_(ids))


def filter_conditions(filters: Mapping[str, list[str]]) -> list[ColumnElement[bool]]:
    """Nautobot's token filters: id, key (the whole key: it is compared by its hash), write_enabled,
    created, expires, description with their lookups, and q (in the description); and ``user`` (username
    or id), jobplane's addition, for a superuser who sees everyone's tokens. Other parameters are ignored,
    as the other lists here ignore them."""
    conditions: list[ColumnElement[bool]] = []
    for key, values in filters.items():
        field, lookup = split_lookup(key)
        if field == "id" and lookup in ("", "n"):
            condition: ColumnElement[bool] = Token.id.in_(_whole_numbers(key, values))
        elif field == "key" and lookup in ("", "n"):
            condition = Token.key_hash.in_([hash_key(value) for value in values])
        elif field == "key" and lookup in TEXT_LOOKUPS:
            raise BadRequest(body={key: [KEY_PARTS]})
        elif field == "user" and lookup in ("", "n"):
            condition = _user_condition(values)
        elif key == "write_enabled":
            condition = Token.write_enabled.in_({parse_boolean(key, value) for value in values})
        elif field in ("created", "expires") and lookup in TIME_LOOKUPS:
            if field == "created" and lookup == "isnull":
                continue  # not a filter of a field that always has a value, as in Nautobot
            column = Token.created if field == "created" else Token.expires
            conditions.append(time_condition(column, key, lookup, values))
            continue
        elif field == "description" and lookup in TEXT_LOOKUPS:
            conditions.append(text_condition(Token.description, key, lookup, values))
            continue
        elif key == "q":
            conditions.extend(
                text_condition(Token.description, key, "ic", [value]) for value in values if value
            )
            continue
        else:
            continue
        conditions.append(not_(condition) if lookup == "n" else condition)
    return conditions


def list_tokens(
    *,
    session: Session,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]] | None = None,
) -> Page[TokenRead]:
    where = [_owned_by(principal), *filter_conditions(filters or {})]
    try:
        count = (
            session.scalar(
                select(func.count()).select_from(Token).join(User, Token.user_id == User.id).where(*where)
            )
            or 0
        )
        rows = session.execute(
            select(Token, User)
            .join(User, Token.user_id == User.id)
            .where(*where)
            .order_by(Token.created, Token.id)
            .limit(page.limit)
            .offset(page.offset)
        ).all()
    except DataError as exc:
        # A regular expression Python accepts and the database does not (re, ire lookups).
        raise BadRequest(
            body={"non_field_errors": [f"The filter could not be applied: {exc.orig}"]}
        ) from None
    return page.page([token_record(token, user, base_url=base_url) for token, user in rows], count)


def _lookup(session: Session, principal: Principal, token_id: int) -> tuple[Token, User]:
    row = session.execute(
        select(Token, User)
        .join(User, Token.user_id == User.id)
        .where(Token.id == token_id, _owned_by(principal))
    ).one_or_none()
    if row is None:
        # Someone else's token is as absent as a token that does not exist, as in Nautobot.
        raise NotFound()
    token, user = row
    return token, user


def get_token(*, session: Session, principal: Principal, token_id: int, base_url: str) -> TokenRead:
    token, user = _lookup(session, principal, token_id)
    return token_record(token, user, base_url=base_url)


def _aware(moment: datetime | None) -> datetime | None:
    # A time without a zone is read as UTC, as Nautobot (TIME_ZONE = "UTC") reads it.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def create_token_for(
    *, session: Session, user: User, write: TokenWrite | TokenProvision, base_url: str, now: datetime
) -> TokenRead:
    """A new token of ``user``: the answer holds its key, the only time it is shown."""
    expires = _aware(write.expires)
    if expires is not None and expires <= now:
        raise BadRequest(body={"expires": ["The expiry is in the past: the token could never be used."]})
    chosen = write.key if isinstance(write, TokenWrite) else None
    if chosen is not None and session.scalar(select(Token.id).where(Token.key_hash == hash_key(chosen))):
        raise BadRequest(body={"key": ["token with this key already exists."]})
    token, key = create_token(
        session=session,
        user=user,
        expires=expires,
        write_enabled=write.write_enabled,
        description=write.description,
        key=chosen,
    )
    return token_record(token, user, base_url=base_url, key=key)


def update_token(
    *, session: Session, principal: Principal, token_id: int, write: TokenWrite, base_url: str
) -> TokenRead:
    """Change the fields sent (description, expires, write_enabled); the key and the owner stay."""
    if write.key is not None:
        raise BadRequest(
            body={"key": ["A token's key cannot be changed: it is stored hashed. Create a new token."]}
        )
    token, user = _lookup(session, principal, token_id)
    sent = write.model_fields_set
    if "expires" in sent:
        # A past expiry is accepted here: it is how a token is switched off without deleting it.
        token.expires = _aware(write.expires)
    if "write_enabled" in sent:
        token.write_enabled = write.write_enabled
    if "description" in sent:
        token.description = write.description
    session.flush()
    return token_record(token, user, base_url=base_url)


def delete_token(*, session: Session, principal: Principal, token_id: int) -> None:
    token, _ = _lookup(session, principal, token_id)
    session.delete(token)
    session.flush()


def basic_credentials(authorization: str) -> tuple[str, str]:
    """The username and password of an ``Authorization: Basic`` header; NotAuthenticated if malformed."""
    _, _, encoded = authorization.strip().partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Invalid basic header. Credentials not correctly base64 encoded.") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise NotAuthenticated("Invalid basic header. Credentials not correctly base64 encoded.")
    return username, password


def password_user(*, session: Session, username: str, password: str) -> User:
    """The active user with this password; NotAuthenticated (403, as Nautobot) otherwise."""
    try:
        return identity.check_password(session=session, username=username, password=password)
    except AuthenticationFailed as exc:
        raise NotAuthenticated(exc.message) from None


def token_user(*, session: Session, principal: Principal) -> User:
    """The user whose token the caller presented; NotAuthenticated for an anonymous caller or a user gone."""
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        raise NotAuthenticated()
    return user


def provision_token(
    *,
    session: Session,
    authorization: str | None,
    body: TokenProvision,
    base_url: str,
    now: datetime,
) -> TokenRead:
    """A token for the user of a username and password: from a Basic header, or in the body (NetBox)."""
    if authorization and authorization.strip().lower().startswith("basic "):
        username, password = basic_credentials(authorization)
    elif body.username is not None and body.password is not None:
        username, password = body.username, body.password
    else:
        raise NotAuthenticated("Give a username and password: HTTP basic authentication, or in the body.")
    user = password_user(session=session, username=username, password=password)
    return create_token_for(session=session, user=user, write=body, base_url=base_url, now=now)
