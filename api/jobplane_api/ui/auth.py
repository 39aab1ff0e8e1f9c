"""Web UI sign-in: a session cookie backed by a token of the user's, and CSRF tokens bound to it.

A sign-in creates an expiring token (described as a web session) and puts its key in an HttpOnly,
SameSite=Lax cookie, Secure when the request came over TLS. Every page authenticates that key exactly as
the API authenticates ``Authorization: Token`` (same store, same grants, inactive users and expiry
refused); signing out deletes the token, so a copied cookie stops working too. The cookie is never read
on ``/api/``: the API keeps tokens only, and so never needs CSRF protection.

CSRF: a signed-in form carries ``csrf_token``, an HMAC of the session key (an attacker can neither read
the HttpOnly cookie nor compute it); htmx sends it as ``X-CSRFToken`` (``hx-headers`` on <body>). The
sign-in form, before any session exists, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy import delete
from sqlalchemy.orm import Session

from jobplane_api.deps import SAFE_METHODS, SessionDep, SettingsDep
from jobplane_api.identity import AuthenticationFailed, Principal, authenticate, create_token, hash_key
from jobplane_api.identity.service import check_password
from jobplane_store.identity import Token

if TYPE_CHECKING:
    from jobplane_api.settings import ApiSettings

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SESSION_DESCRIPTION",
    "CsrfFailed",
    "LoginRequired",
    "OptionalUserDep",
    "UserDep",
    "csrf_protect",
    "csrf_token",
    "end_session",
    "optional_user",
    "require_user",
    "start_session",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "jobplane_session"
CSRF_COOKIE = "jobplane_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRFToken"
SESSION_DESCRIPTION = "Web UI session"


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""


class CsrfFailed(Exception):
    """An unsafe request without the CSRF token of its session; answered with 403."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _now() -> datetime:
    return datetime.now(UTC)


def _secure(request: Request) -> bool:
    # uvicorn sets the scheme from X-Forwarded-Proto for the proxies it trusts (--forwarded-allow-ips).
    return request.url.scheme == "https"


def _session_key(request: Request) -> str | None:
    key = request.cookies.get(SESSION_COOKIE)
    return key if key and len(key) <= 200 else None


# --- who is signed in -----------------------------------------------------------------------------------


def optional_user(request: Request, session: SessionDep) -> Principal | None:
    """The signed-in user of the request, or None (no cookie, or a session that ended or expired)."""
    cached: Principal | None = getattr(request.state, "ui_principal", None)
    if cached is not None:
        return cached
    key = _session_key(request)
    if key is None:
        return None
    try:
        principal = authenticate(session=session, authorization=f"Token {key}", now=_now())
    except AuthenticationFailed:
        return None
    if principal.is_anonymous:
        return None
    request.state.ui_principal = principal
    request.state.ui_session_key = key
    return principal


def require_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    """The signed-in user; a page reached without one redirects to the sign-in page."""
    if principal is None:
        raise LoginRequired()
    return principal


OptionalUserDep = Annotated[Principal | None, Depends(optional_user)]
UserDep = Annotated[Principal, Depends(require_user)]


def login_url(request: Request) -> str:
    """The sign-in page, coming back to this page after it."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login/?next={quote(target, safe='/')}"


# --- signing in and out ---------------------------------------------------------------------------------


def start_session(
    *,
    session: Session,
    settings: ApiSettings,
    request: Request,
    response: Response,
    username: str,
    password: str,
) -> None:
    """Check the password and set the session cookie; AuthenticationFailed on a wrong one."""
    user = check_password(session=session, username=username, password=password)
    now = _now()
    # The user's sessions that expired are of no use to anyone: they go rather than pile up.
    session.execute(
        delete(Token).where(
            Token.user_id == user.id, Token.description == SESSION_DESCRIPTION, Token.expires <= now
        )
    )
    expires = now + timedelta(hours=settings.ui_session_hours)
    _, key = create_token(session=session, user=user, expires=expires, description=SESSION_DESCRIPTION)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=int(settings.ui_session_hours * 3600),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(CSRF_COOKIE, path="/")
    log.info("web UI sign-in username=%s", user.username)


def end_session(*, session: Session, request: Request, response: Response) -> None:
    """Delete the session's token (the cookie is worth nothing after this) and clear the cookie."""
    key = _session_key(request)
    if key is not None:
        session.execute(
            delete(Token).where(Token.key_hash == hash_key(key), Token.description == SESSION_DESCRIPTION)
        )
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="lax")


# --- CSRF ------------------------------------------------------------------------------------------------


def _bound_token(session_key: str) -> str:
    return hmac.new(session_key.encode(), b"jobplane-ui-csrf", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The CSRF token forms of this request must carry (a template global: ``{{ csrf_token() }}``)."""
    key = getattr(request.state, "ui_session_key", None) or _session_key(request)
    if key is not None and getattr(request.state, "ui_principal", None) is not None:
        return _bound_token(key)
    anonymous = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not anonymous:
        anonymous = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = anonymous  # set on the response by render()
    return anonymous


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Set the sign-in form's double-submit cookie when this request made one."""
    value = getattr(request.state, "new_csrf_cookie", None)
    if value:
        response.set_cookie(
            CSRF_COOKIE, value, path="/", secure=_secure(request), httponly=True, samesite="lax"
        )


async def csrf_protect(request: Request, session: SessionDep, settings: SettingsDep) -> None:
    """Refuse an unsafe request whose CSRF token (form field or header) is not its session's.

    A dependency of every UI router, so that no form can be added without it.
    """
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form(max_part_size=settings.upload_max_size + 1)
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not given:
        raise CsrfFailed("The form has no CSRF token: reload the page and submit it again.")
    principal = optional_user(request, session)
    key = getattr(request.state, "ui_session_key", None)
    if principal is not None and key is not None:
        expected = _bound_token(key)
    else:
        expected = request.cookies.get(CSRF_COOKIE) or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfFailed("The form's CSRF token does not match your session: reload the page and retry.")
