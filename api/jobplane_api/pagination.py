"""Nautobot's limit/offset pagination: ``{"count", "next", "previous", "results"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from starlette.datastructures import URL

from jobplane_api.deps import SettingsDep

__all__ = ["Page", "PageDep", "PageParams"]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next``/``previous`` are absolute URLs, null at the ends."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int
    url: str

    def _link(self, offset: int) -> str:
        return str(URL(self.url).include_query_params(limit=self.limit, offset=offset))

    def page(self, results: list[T], count: int) -> Page[T]:
        next_offset = self.offset + self.limit
        previous = None
        if self.offset > 0:
            previous = self._link(max(0, self.offset - self.limit))
        return Page[T](
            count=count,
            next=self._link(next_offset) if next_offset < count else None,
            previous=previous,
            results=results,
        )


def page_params(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=0, description="Page size; 0 means the largest allowed.")] = None,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Items to skip.")] = 0,
) -> PageParams:
    if limit is None:
        size = settings.default_page_size
    elif limit == 0:
        size = settings.max_page_size
    else:
        size = min(limit, settings.max_page_size)
    return PageParams(limit=size, offset=offset, url=str(request.url))


PageDep = Annotated[PageParams, Depends(page_params)]
