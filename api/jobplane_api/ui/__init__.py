"""The web UI: server-rendered pages (Jinja2 + htmx) served under ``/`` by the API's own app.

Pages live in ``ui/routes/<area>.py``, one router per area, each with :func:`csrf_protect` as a router
dependency; templates in ``ui/templates/<area>/`` (fragments start with ``_``); vendored static assets in
``ui/static/`` (see ``static/vendor/VENDORED.md``).
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobplane_api.errors import ApiError
from jobplane_api.settings import ApiSettings
from jobplane_api.ui.auth import SESSION_COOKIE, CsrfFailed, LoginRequired, login_url, optional_user
from jobplane_api.ui.headers import PageSecurityHeaders
from jobplane_api.ui.object_choices import DataChoices
from jobplane_api.ui.routes import ROUTERS
from jobplane_api.ui.templating import STATIC_DIR, is_htmx, render
from jobplane_store.database import create_store_engine

__all__ = ["install_ui"]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def install_ui(app: FastAPI) -> None:
    """Mount the pages and the static files, and answer the UI's errors with pages (the API's with JSON)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR, packages=None), name="static")
    settings: ApiSettings = app.state.settings
    if settings.ui_data_database_url is not None:
        url = settings.ui_data_database_url.get_secret_value()
        app.state.ui_object_choices = DataChoices(create_store_engine(url, pool_pre_ping=True))
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)

    app.add_middleware(PageSecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = login_url(request)
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return render(request, "errors/error.html", {"status": 403, "message": exc.reason}, status_code=403)

    # The API's handlers answer JSON: they still do for /api/ (and /static/), a page answers elsewhere.
    api_handlers = {kind: app.exception_handlers[kind] for kind in API_ERRORS}

    async def _error(request: Request, exc: Exception) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            answer = api_handlers[_kind_of(exc)](request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        if isinstance(exc, ApiError):
            status, message, body = exc.status_code, exc.detail, exc.body()
        elif isinstance(exc, RequestValidationError):
            status, message, body = (
                400,
                "The request is not valid.",
                {"errors": jsonable_encoder(exc.errors())},
            )
        else:
            assert isinstance(exc, StarletteHTTPException)
            status = exc.status_code
            message = (
                exc.detail if isinstance(exc.detail, str) and exc.detail != "Not Found" else "Not found."
            )
            body = None
        await run_in_threadpool(_identify, request)
        headers = getattr(exc, "headers", None)
        context = {"status": status, "message": message, "body": body}
        return render(request, "errors/error.html", context, status_code=status, headers=headers)

    for kind in API_ERRORS:
        app.add_exception_handler(kind, _error)


API_ERRORS: tuple[type[Exception], ...] = (ApiError, RequestValidationError, StarletteHTTPException)


def _kind_of(exc: Exception) -> type[Exception]:
    return next(kind for kind in API_ERRORS if isinstance(exc, kind))


def _identify(request: Request) -> None:
    """Find the signed-in user of a request that failed before its route did, for the error page's nav."""
    if getattr(request.state, "ui_principal", None) is not None or not request.cookies.get(SESSION_COOKIE):
        return
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        optional_user(request, session)
        session.commit()
