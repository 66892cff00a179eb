"""Fixtures: one real gateway per session (gateway.py) and a client of it per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pesaswitch_sdk import Pesaswitch

from gateway import Gateway, running_gateway


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway) -> Iterator[Pesaswitch]:
    with gateway.client() as sdk:
        yield sdk
