"""The security battery's shared pieces: a gateway served as a real process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET_KEY, Merchant
from tests.e2e.conftest import create_account_via_cli
from tests.support.processes import PESASWITCH, Process, free_port


@dataclass
class Served:
    url: str
    merchant: Merchant
    process: Process
    log: Path


@contextmanager
def serving(database_url: str, logs: Path, **extra_env: str) -> Iterator[Served]:
    """`pesaswitch serve` on 127.0.0.1 with its embedded simulator and worker."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_PUBLIC_URL": url,
        "PESASWITCH_SIMULATOR_DELAY": "0",
        "PESASWITCH_SIMULATOR_HANG_SECONDS": "2",
        "PESASWITCH_DARAJA_TIMEOUT": "1",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.2",
        **extra_env,
    }
    log = logs / "gateway.log"
    process = Process([PESASWITCH, "serve"], env, log)
    try:
        process.wait_http(f"{url}/healthz")
        merchant = create_account_via_cli({**os.environ, **env}, "Security shop")
        yield Served(url, merchant, process, log)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(database_url, tmp_path_factory.mktemp("served")) as running:
        yield running
