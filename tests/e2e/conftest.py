"""Whole flows over real HTTP: the gateway, worker and simulator run as separate processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import TEST_SECRET_KEY, Merchant
from tests.support.processes import PESASWITCH, Process, free_port

FAST_RECONCILE = {
    "PESASWITCH_RECONCILE_AFTER": "0.5",
    "PESASWITCH_RECONCILE_BACKOFF": "0.3",
    "PESASWITCH_RECONCILE_INTERVAL": "0.1",
    "PESASWITCH_DARAJA_TIMEOUT": "1.5",
}


@dataclass
class Stack:
    database_url: str
    logs: Path
    base_env: dict[str, str]
    gateway_env: dict[str, str]
    gateway_url: str = ""
    simulator_url: str = ""
    merchant: Merchant | None = None
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(args, {**self.base_env, **env}, self.logs / f"{name}.log")
        self.processes[name] = process
        return process

    def start_worker(self) -> Process:
        return self.start("worker", [PESASWITCH, "worker"], self.gateway_env)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()

    @property
    def shop(self) -> Merchant:
        assert self.merchant is not None
        return self.merchant

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.gateway_url, timeout=10.0)

    async def wait_for_status(
        self, client: httpx.AsyncClient, payment_id: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = (
                await client.get(f"/v1/payments/{payment_id}", headers=self.shop.auth)
            ).json()
            if body["status"] != "pending" or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.1)

    async def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(query), params)).all())
        finally:
            await engine.dispose()


def create_account_via_cli(env: dict[str, str], name: str, *, live: bool = False) -> Merchant:
    out = subprocess.run(
        [PESASWITCH, "accounts", "create", "--name", name, "--json", *(["--live"] if live else [])],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    data = json.loads(out.stdout)
    return Merchant(
        data["account_id"], data["secret_key"], data["public_key"], data["default_channel_id"],
        data["api_username"],
    )  # fmt: skip


def launch_stack(
    database_url: str,
    logs: Path,
    *,
    embedded_worker: bool = True,
    simulator_env: dict[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
) -> Stack:
    import os

    base_env = {
        "PESASWITCH_DATABASE_URL": database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_LOG_LEVEL": "warning",
    }
    sim_port, gw_port = free_port(), free_port()
    stack = Stack(database_url, logs, base_env, {})
    stack.simulator_url = f"http://127.0.0.1:{sim_port}"
    stack.gateway_url = f"http://127.0.0.1:{gw_port}"
    simulator = stack.start(
        "simulator",
        [PESASWITCH, "simulator", "--port", str(sim_port)],
        {
            "PESASWITCH_SIMULATOR_DELAY": "0.2",
            "PESASWITCH_SIMULATOR_HANG_SECONDS": "4",
            "PESASWITCH_SIMULATOR_PENDING_QUERIES": "3",
            **(simulator_env or {}),
        },
    )
    stack.gateway_env = {
        **FAST_RECONCILE,
        "PESASWITCH_PORT": str(gw_port),
        "PESASWITCH_PUBLIC_URL": stack.gateway_url,
        "PESASWITCH_DARAJA_BASE_URL": stack.simulator_url,
        "PESASWITCH_EMBEDDED_WORKER": "true" if embedded_worker else "false",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.1",
    }
    gateway = stack.start("gateway", [PESASWITCH, "serve", *serve_args], stack.gateway_env)
    try:
        simulator.wait_http(f"{stack.simulator_url}/simulator/health")
        gateway.wait_http(f"{stack.gateway_url}/healthz")
        stack.merchant = create_account_via_cli({**os.environ, **base_env}, "E2E shop")
    except Exception:
        stack.stop_all()
        raise
    return stack


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = launch_stack(database_url, tmp_path_factory.mktemp("logs"))
    yield running
    running.stop_all()
