"""Cursor pages: ``?limit=&starting_after=<id>`` over time-ordered ids, newest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None


async def page_params(  # async: FastAPI would run a plain def in its thread pool
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    starting_after: Annotated[str | None, Query(max_length=64)] = None,
) -> PageParams:
    return PageParams(limit=limit, starting_after=starting_after)


class Page(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None


def make_page(rows: Sequence[T], *, limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """``rows`` holds up to limit + 1 items; the extra one only says there is more."""
    has_more = len(rows) > limit
    data = list(rows[:limit])
    return Page[T](
        data=data, has_more=has_more, next_cursor=cursor_of(data[-1]) if has_more else None
    )
