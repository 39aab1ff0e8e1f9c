"""The UI's Jinja2 environment and the one function routes render pages and fragments with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from jobplane_api.ui.auth import CSRF_FIELD, CSRF_HEADER, csrf_token, set_csrf_cookie

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "is_htmx", "render", "templates"]

UI_DIR = Path(__file__).parent
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@cache
def templates() -> Jinja2Templates:
    """The templates, autoescaped (Jinja2Templates does so for .html), with the UI's globals."""
    environment = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = environment.env
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.globals["CSRF_HEADER"] = CSRF_HEADER
    env.filters["pretty_json"] = _pretty_json
    env.filters["tojson_attr"] = lambda value: json.dumps(value)
    return environment


def is_htmx(request: Request) -> bool:
    """Whether htmx made the request (it then wants a fragment, not a whole page)."""
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with the request's user and CSRF token in its context.

    Templates get ``request``, ``user`` (the signed-in Principal or None), ``csrf_token`` (the value) and
    the ``csrf_input`` macro in ``_macros.html`` renders the hidden field.
    """
    token = csrf_token(request)
    merged = {
        "user": getattr(request.state, "ui_principal", None),
        "csrf_token": token,
        "htmx": is_htmx(request),
        **(context or {}),
    }
    response = templates().TemplateResponse(request, name, merged, status_code=status_code, headers=headers)
    set_csrf_cookie(request, response)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
