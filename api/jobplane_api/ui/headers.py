"""The security headers of the web UI's answers, as a plain ASGI middleware."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "PageSecurityHeaders"]

# Only our own files: the vendored htmx and its extension, Pico CSS, and ui.js. Pico and htmx's indicator
# styles set style attributes, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


class PageSecurityHeaders:
    """Adds the headers above to every answer outside ``/api/`` that does not set them itself.

    A plain ASGI wrapper rather than Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``),
    which every request of the app went through, the REST API's included: that one runs the rest of the
    app in a task of its own and relays the body through a memory stream (bench/README.md, the run
    endpoint), and would buffer nothing here either way.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith("/api/") or path == "/api":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
