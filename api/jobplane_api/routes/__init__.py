"""One router per resource; routes parse requests and shape responses, services do the work."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request, Response

__all__ = ["attachment", "base_url", "query_filters"]

PAGINATION_KEYS = frozenset({"limit", "offset", "format", "depth", "brief", "exclude_m2m", "ordering"})


def attachment(name: str, content: bytes) -> Response:
    """A file download, its name kept whatever characters it has (RFC 6266 ``filename*``)."""
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def query_filters(request: Request) -> dict[str, list[str]]:
    """The filter parameters of a list request (everything but pagination), each with all its values."""
    filters: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in PAGINATION_KEYS:
            filters.setdefault(key, []).append(value)
    return filters
