"""A query parameter that a route takes once is refused when it comes more than once.

FastAPI reads a repeated scalar parameter (``?q=a&q=b``) as its last value and drops
the rest without a word: the caller asked for two things and got an answer to one.
Every app (native and dialects) runs ``single_valued_query`` before its routes, so the
repetition is a 422 in the surface's own error shape, as any other invalid parameter is
(found by schemathesis on ``GET /api/v2/bank_paybills``).
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

_SEQUENCES = (list, tuple, set, frozenset)


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    return origin in _SEQUENCES or annotation in _SEQUENCES


def _scalar_names(dependant: Dependant) -> set[str]:
    names = {
        param.alias
        for param in dependant.query_params
        if not _takes_many(param.field_info.annotation)
    }
    for dependency in dependant.dependencies:
        names |= _scalar_names(dependency)
    return names


async def single_valued_query(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return  # (a walk of a few parameters, only for a request with a query string)
    errors = [
        {
            "type": "repeated_parameter",
            "loc": ("query", name),
            "msg": "Given more than once; this parameter takes one value",
            "input": request.query_params.getlist(name),
        }
        for name in sorted(_scalar_names(route.dependant))
        if len(request.query_params.getlist(name)) > 1
    ]
    if errors:
        raise RequestValidationError(errors)
