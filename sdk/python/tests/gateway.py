"""A real gateway for the SDK's tests: ``pesaswitch serve`` with its embedded simulator and
worker, on a fresh SQLite database and a free port of 127.0.0.1, started once per session.

The gateway comes from the environment the tests run in (the repository's ``.venv``, where
``make install`` puts both packages). The SDK never sees the database, so these tests run
once per ``make test`` rather than once per database.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from pesaswitch_sdk import AsyncPesaswitch, Pesaswitch, RetryPolicy

SECRET_KEY = "sdk-tests-secret-key-not-for-production-use"
# Quick retries, so that a test of a refusal does not sit in backoff.
FAST_RETRIES = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.2)
SDK_ROOT = Path(__file__).resolve().parent.parent


def _pesaswitch_command() -> str:
    beside_python = Path(sys.executable).parent / "pesaswitch"
    found = str(beside_python) if beside_python.exists() else shutil.which("pesaswitch")
    if found is None:
        raise RuntimeError("The SDK's tests need the gateway installed: run `make install`")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Gateway:
    base_url: str
    secret_key: str
    public_key: str

    def client(self, api_key: str | None = None) -> Pesaswitch:
        return Pesaswitch(api_key or self.secret_key, self.base_url, retries=FAST_RETRIES)

    def async_client(self) -> AsyncPesaswitch:
        return AsyncPesaswitch(self.secret_key, self.base_url, retries=FAST_RETRIES)


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pesaswitch serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"pesaswitch serve not healthy in 30 s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def running_gateway(workdir: Path) -> Iterator[Gateway]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PESASWITCH_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'gateway.db'}",
        "PESASWITCH_SECRET_KEY": SECRET_KEY,
        "PESASWITCH_HOST": "127.0.0.1",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_PUBLIC_URL": base_url,
        "PESASWITCH_LOG_LEVEL": "warning",
        "PESASWITCH_SIMULATOR_DELAY": "0",
        # Many test payments of the same amount to the same number, back to back: Daraja's
        # 2-minute duplicate rule and its one-prompt-per-number lock would refuse them.
        "PESASWITCH_SIMULATOR_RULE_SAME_AMOUNT": "false",
        "PESASWITCH_SIMULATOR_RULE_SUBSCRIBER_LOCK": "false",
        # 254711990002 (no callback) stays pending until the first status query, 2 s on.
        "PESASWITCH_RECONCILE_AFTER": "2",
        "PESASWITCH_RECONCILE_BACKOFF": "0.5",
        "PESASWITCH_RECONCILE_INTERVAL": "0.2",
        "PESASWITCH_WEBHOOK_INTERVAL": "0.1",
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
    }
    command = _pesaswitch_command()
    log = workdir / "serve.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [command, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_healthy(process, f"{base_url}/healthz", log)
        created = subprocess.run(
            [command, "accounts", "create", "--name", "SDK tests", "--json"],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        account = json.loads(created.stdout)
        # The tests take C2B on the wallet channel: the gateway's own paybill, which the
        # operator gives to an account (a merchant's key cannot take it).
        subprocess.run(
            [command, "c2b", "assign", str(account["default_channel_id"])],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        yield Gateway(base_url, account["secret_key"], account["public_key"])
    finally:
        _stop(process)
