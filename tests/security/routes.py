"""The gateway's routes, read from its router (mounted sub-applications included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Router


def iter_routes(app: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (METHOD, path template) the app answers, e.g. ("GET", "/v1/payments/{payment_id}");
    a mount that is not a router (static files, metrics) as ("*", "/prefix/{path}")."""
    routes = app.routes if isinstance(app, FastAPI | Router) else None
    if routes is None:
        yield "*", f"{prefix}/{{path}}"
        return
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            yield from iter_routes(route.app, prefix + route.path)
            continue
        path = context.path
        if path is None:
            continue
        for method in sorted(context.methods or {"*"}):
            if method != "HEAD":
                yield method, prefix + path


def with_path_parameters(app: Any) -> set[str]:
    """Each route whose path takes a parameter, as "METHOD /path/{param}"."""
    return {f"{method} {path}" for method, path in iter_routes(app) if "{" in path}


REFERENCE_NAMES = ("_id", "reference", "slug", "token")


def _names(context: Any) -> set[str]:
    import pydantic

    dependant = getattr(context, "dependant", None)
    if dependant is None:
        return set()
    names = {p.name for p in [*dependant.query_params, *dependant.path_params]}
    for param in dependant.body_params:
        annotation = param.field_info.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel):
                names |= set(candidate.model_fields)
            else:
                names.add(param.name)
    return names


def with_references(app: Any, prefix: str = "") -> set[str]:
    """Each API route that takes an id or a reference in its path, query or JSON body."""
    found: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            if isinstance(route.app, FastAPI | Router):
                found |= with_references(route.app, prefix + route.path)
            continue
        if any(name.endswith(REFERENCE_NAMES) for name in _names(context)):
            for method in sorted(context.methods or ()):
                if method != "HEAD":
                    found.add(f"{method} {prefix}{context.path}")
    return found
