"""The web UI: server-rendered pages (Jinja2 + htmx) served under ``/`` by the API's own app.

Pages live in ``ui/routes/<area>.py``, one router per area, each with :func:`csrf_protect` as a router
dependency; templates in ``ui/templates/<area>/`` (fragments start with ``_``); vendored static assets in
``ui/static/`` (see ``static/vendor/VENDORED.md``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobplane_api.errors import ApiError
from jobplane_api.settings import ApiSettings
from jobplane_api.ui.auth import CsrfFailed, LoginRequired, login_url
from jobplane_api.ui.templating import STATIC_DIR, is_htmx, render

__all__ = ["install_ui"]

# Only our own files: the vendored htmx and its extension, Pico CSS, and ui.js. Pico and htmx's indicator
# styles set style attributes, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def install_ui(app: FastAPI) -> None:
    """Mount the pages and the static files, and answer the UI's errors with pages (the API's with JSON)."""
    from jobplane_api.ui.routes import ROUTERS

    app.mount("/static", StaticFiles(directory=STATIC_DIR, packages=None), name="static")
    settings: ApiSettings = app.state.settings
    if settings.ui_data_database_url is not None:
        from jobplane.store.database import create_store_engine
        from jobplane_api.ui.object_choices import DataChoices

        url = settings.ui_data_database_url.get_secret_value()
        app.state.ui_object_choices = DataChoices(create_store_engine(url, pool_pre_ping=True))
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if not _is_api(request):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = login_url(request)
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return render(request, "errors/error.html", {"status": 403, "message": exc.reason}, status_code=403)

    # The API's handlers answer JSON; these keep that for /api/ and render a page everywhere else.
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if _is_api(request):
            return JSONResponse(exc.body(), status_code=exc.status_code)
        return render(
            request,
            "errors/error.html",
            {"status": exc.status_code, "message": exc.detail, "body": exc.body()},
            status_code=exc.status_code,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "Error."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Not found."
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
        return render(
            request, "errors/error.html", {"status": exc.status_code, "message": detail},
            status_code=exc.status_code, headers=exc.headers,
        )  # fmt: skip
