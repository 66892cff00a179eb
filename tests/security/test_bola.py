"""BOLA (OWASP API1): another account's object is 'not found' on every route, and asking
for it changes nothing. The routes come from the app's router, so a new route with an id
fails here until it has a case in ``bola_cases.py`` (docs/security-testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Router

from tests.conftest import Gateway
from tests.dashboard.conftest import Shop, dashboard, shops  # noqa: F401 - fixtures
from tests.security import bola_cases_c2b  # noqa: F401 - registers the C2B cases
from tests.security.bola_cases import CASES, EXEMPT
from tests.security.bola_world import World, build_world

# The routes, read from the app's router (mounted sub-applications included).


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


def test_every_route_with_an_id_has_a_case(gateway: Gateway) -> None:
    app = gateway.app
    needed = with_path_parameters(app) | with_references(app)
    missing = sorted(needed - CASES.keys() - EXEMPT.keys())
    assert not missing, (
        "routes that take an id or a reference without a BOLA case in "
        f"tests/security/bola_cases.py (or a reasoned EXEMPT entry): {missing}"
    )
    stale = sorted((CASES.keys() | EXEMPT.keys()) - needed)
    assert not stale, f"cases for routes the app no longer has: {stale}"


@pytest.fixture
async def world(dashboard: Gateway, shops: tuple[Shop, Shop]) -> World:  # noqa: F811
    a, b = shops
    return await build_world(dashboard, a, b)


async def test_another_accounts_objects_are_not_found(world: World) -> None:
    # One world for every case (building it takes a payment, a payout and a webhook):
    # each case runs, and every failure is reported.
    failures = []
    for route, run in sorted(CASES.items()):
        try:
            await run(world)
        except AssertionError as exc:
            failures.append(f"{route}: {exc}"[:600])
    assert not failures, "\n".join(failures)
