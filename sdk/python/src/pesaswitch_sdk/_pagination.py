"""Cursor pages, and iterating over every item across them.

The gateway's lists answer ``{"data": [...], "has_more": bool, "next_cursor": "..."}``,
newest first; the next page is ``?starting_after=<next_cursor>`` with the same filters.
Iterating a page yields its items, then fetches and yields the following pages lazily;
``page.data`` is this page alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from pesaswitch_sdk._http import ApiRequest

T = TypeVar("T")


class _PageBody(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None = None


def _next_request(request: ApiRequest, cursor: str) -> ApiRequest:
    return ApiRequest(
        request.method,
        request.path,
        params={**(request.params or {}), "starting_after": cursor},
        replay_safe=request.replay_safe,
    )


class SyncPage(Generic[T]):
    def __init__(
        self,
        body: Any,
        *,
        request: ApiRequest,
        parse: Callable[[Any], T],
        send: Callable[[ApiRequest], Any],
    ) -> None:
        parsed = _PageBody[Any].model_validate(body)
        self.data: list[T] = [parse(row) for row in parsed.data]
        self.has_more = parsed.has_more
        self.next_cursor = parsed.next_cursor
        self._request = request
        self._parse = parse
        self._send = send

    def next_page(self) -> SyncPage[T] | None:
        if not self.has_more or self.next_cursor is None:
            return None
        request = _next_request(self._request, self.next_cursor)
        return SyncPage(self._send(request), request=request, parse=self._parse, send=self._send)

    def __iter__(self) -> Iterator[T]:
        page: SyncPage[T] | None = self
        while page is not None:
            yield from page.data
            page = page.next_page()


class AsyncPage(Generic[T]):
    def __init__(
        self,
        body: Any,
        *,
        request: ApiRequest,
        parse: Callable[[Any], T],
        send: Callable[[ApiRequest], Awaitable[Any]],
    ) -> None:
        parsed = _PageBody[Any].model_validate(body)
        self.data: list[T] = [parse(row) for row in parsed.data]
        self.has_more = parsed.has_more
        self.next_cursor = parsed.next_cursor
        self._request = request
        self._parse = parse
        self._send = send

    async def next_page(self) -> AsyncPage[T] | None:
        if not self.has_more or self.next_cursor is None:
            return None
        request = _next_request(self._request, self.next_cursor)
        body = await self._send(request)
        return AsyncPage(body, request=request, parse=self._parse, send=self._send)

    async def __aiter__(self) -> AsyncIterator[T]:
        page: AsyncPage[T] | None = self
        while page is not None:
            for item in page.data:
                yield item
            page = await page.next_page()


def page_params(limit: int | None, **filters: Any) -> dict[str, str | int | None]:
    params: dict[str, str | int | None] = {"limit": limit}
    for name, value in filters.items():
        params[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return params
