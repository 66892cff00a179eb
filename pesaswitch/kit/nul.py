"""A NUL character (U+0000) in a request's path, query or JSON body is refused.

PostgreSQL's text cannot hold U+0000 (SQLite can): a ``"\\u0000"`` in a description,
a ``%00`` in a reference filter or an id reached the driver and came back as a 500 on
PostgreSQL only. Every app (native and dialects) runs ``refuse_nul`` before its routes,
so the NUL is a 422 in the surface's own error shape, on both databases, before anything
is written.

The common request holds no NUL, and pays for one substring test per part: the body is
the bytes the route has already read and parsed, searched for the JSON escape; only a
hit (which may be an escaped backslash, ``"\\\\u0000"``, and so no NUL) parses it again to
find the string that holds one. Routes that read their own body (Daraja's callbacks,
Pokea's signed remittance) are left to refuse it in their own way: ``refuse_nul_in_json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

NUL = "\x00"
_ESCAPED = b"\\u0000"
_MESSAGE = "Must not contain a NUL character (U+0000)"


def _error(loc: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    return {"type": "nul_character", "loc": loc, "msg": _MESSAGE, "input": value}


def _nul_paths(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            # A key with a NUL is stored too where the object is (metadata).
            yield from _nul_paths(key, (*path, key))
            yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, index))


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def may_hold_nul(raw: bytes) -> bool:
    """Whether the JSON text ``raw`` may hold a NUL in a string (False: it holds none)."""
    # UTF-8 JSON writes U+0000 only as this escape (a raw NUL byte is invalid JSON, and
    # the "u" is lower case; its zeros have no case). json.loads also reads UTF-16 and
    # UTF-32, whose first four bytes always hold a zero byte: those are parsed to look.
    return _ESCAPED in raw or b"\x00" in raw[:4]


def refuse_nul_in_json(raw: bytes) -> None:
    """Raise a RequestValidationError if the JSON text ``raw`` holds a NUL in a string."""
    if not may_hold_nul(raw):
        return
    try:
        document = json.loads(raw)
    except ValueError:
        return  # not JSON after all: the route's own parsing answers that
    errors = [_error(("body", *path), None) for path in _nul_paths(document, ())]
    if errors:
        raise RequestValidationError(errors)


def nul_in_path(request: Request) -> list[dict[str, Any]]:
    """The path parameters that hold a NUL, as validation errors (none: an empty list)."""
    # scope["path"] is decoded: a %00 in any segment is a NUL here.
    if NUL not in request.scope["path"]:
        return []
    return [
        _error(("path", name), value)
        for name, value in request.path_params.items()
        if isinstance(value, str) and NUL in value
    ]


async def refuse_nul(request: Request) -> None:
    scope = request.scope
    errors = nul_in_path(request)
    route = scope.get("route")
    if b"%00" in scope["query_string"] and isinstance(route, APIRoute):
        # Only the parameters the route reads: any other is ignored, NUL or not.
        taken = _query_names(route.dependant)
        errors += [
            _error(("query", name), value)
            for name, value in request.query_params.multi_items()
            if name in taken and NUL in value
        ]
    if errors:
        raise RequestValidationError(errors)
    if isinstance(route, APIRoute) and route.body_field is not None:
        # Already read (and cached) by FastAPI to parse the body: no second read.
        refuse_nul_in_json(await request.body())
