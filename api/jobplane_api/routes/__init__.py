"""One router per resource; routes parse requests and shape responses, services do the work."""

from __future__ import annotations

from fastapi import Request

__all__ = ["base_url", "query_filters"]

PAGINATION_KEYS = frozenset({"limit", "offset", "format", "depth", "brief", "exclude_m2m", "ordering"})


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def query_filters(request: Request) -> dict[str, list[str]]:
    """The filter parameters of a list request (everything but pagination), each with all its values."""
    filters: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in PAGINATION_KEYS:
            filters.setdefault(key, []).append(value)
    return filters
