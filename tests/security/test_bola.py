"""BOLA (OWASP API1): another account's object is 'not found' on every route, and asking
for it changes nothing. The routes come from the app's router, so a new route with an id
fails here until it has a case in ``bola_cases.py`` (docs/security-testing.md)."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.dashboard.conftest import Shop, dashboard, shops  # noqa: F401 - fixtures
from tests.security.bola_cases import CASES, EXEMPT
from tests.security.bola_world import World, build_world
from tests.security.routes import with_path_parameters, with_references


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
