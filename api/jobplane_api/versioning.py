"""Nautobot's ``API-Version`` response header on every ``/api/`` answer: clients read the REST API version
from it (pynautobot's ``Api.version`` reads it from ``GET /api/``; scripts compare it before using a feature).

Nautobot answers the version a request asked for in ``Accept: ...; version=X`` when it allows X, its own
major.minor otherwise, and refuses other versions with 406. Jobplane serves one shape whatever is asked (the
seed's examples ask for 1.3, which Nautobot 2 and 3 refuse), so it always names that one: the Nautobot
release whose serializers it follows.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_VERSION", "ApiVersionHeader"]

API_VERSION = "3.1"


class ApiVersionHeader:
    """ASGI middleware adding ``API-Version`` to the responses of ``/api/`` paths, errors and streams
    included (a plain ASGI wrapper: it never buffers a streamed body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["API-Version"] = API_VERSION
            await send(message)

        await self.app(scope, receive, send_with_version)
