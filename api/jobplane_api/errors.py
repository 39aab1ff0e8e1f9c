"""Domain errors of the API and the one place that turns them into HTTP responses.

Services raise these; routes never build an HTTP error inline. The bodies are Nautobot's (Django REST
framework's) shapes, which existing clients already parse: ``{"detail": "..."}`` for refusals and
``{"field": ["message"]}`` or ``{"errors": ...}`` for bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "NotAuthenticated",
    "NotFound",
    "NotInstalled",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unavailable",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client can act on; ``code`` is a stable string, ``status_code`` its one HTTP status."""

    status_code = 500
    code = "Error"
    default_detail = "The request failed."

    def __init__(self, detail: str | None = None, *, body: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.default_detail
        self._body = body
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return self._body if self._body is not None else {"detail": self.detail}


class BadRequest(ApiError):
    """Input that does not fit; the body names the fields, e.g. ``{"errors": {"var": ["..."]}}``."""

    status_code = 400
    code = "BadRequest"
    default_detail = "The request is not valid."


class NotAuthenticated(ApiError):
    # Nautobot answers a missing or bad token with 403 (session authentication comes first in its
    # DRF settings and gives no WWW-Authenticate challenge); clients expect that code.
    status_code = 403
    code = "NotAuthenticated"
    default_detail = "Authentication credentials were not provided."


class PermissionDenied(ApiError):
    status_code = 403
    code = "PermissionDenied"
    default_detail = "You do not have permission to perform this action."


class NotFound(ApiError):
    status_code = 404
    code = "NotFound"
    default_detail = "Not found."


class NotInstalled(ApiError):
    """Nautobot's 405 for a job whose code is no longer installed."""

    status_code = 405
    code = "NotInstalled"
    default_detail = "This job is not installed: its code was not found at the last sync."


class Conflict(ApiError):
    status_code = 409
    code = "Conflict"
    default_detail = "The object changed meanwhile; read it again and retry."


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "PayloadTooLarge"
    default_detail = "The upload is too large."


class Unavailable(ApiError):
    status_code = 503
    code = "Unavailable"
    default_detail = "A service the API needs is not reachable; retry shortly."


def _field_of(location: tuple[Any, ...]) -> str:
    # ("body", "data", "x") -> "data.x"; ("query", "limit") -> "limit"
    parts = [str(part) for part in location[1:]] if len(location) > 1 else [str(p) for p in location]
    return ".".join(parts) or "non_field_errors"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to its response, in one place."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # DRF's shape and status for bad input: 400 with the messages per field.
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            errors.setdefault(_field_of(tuple(error.get("loc", ()))), []).append(str(error.get("msg")))
        return JSONResponse(errors, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Error."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Not found."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
