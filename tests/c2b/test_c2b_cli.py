"""The CLI against a standalone simulator process, over real HTTP: register a till's
URLs, lose the confirmation (no gateway is listening), and recover it with the sweep."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from pesaswitch.accounts.models import ChannelKind
from tests.c2b.helpers import add_channel
from tests.conftest import TEST_SECRET_KEY, create_merchant
from tests.support.processes import PESASWITCH, Process, free_port


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PESASWITCH, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _json(stdout: str) -> Any:
    """The command's JSON, after any log lines (logs go to stdout too)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[start:]))


async def test_register_then_sweep(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings()
    merchant = await create_merchant(settings)
    channel_id = await add_channel(settings, merchant, ChannelKind.TILL)
    port = free_port()
    base = {
        "PESASWITCH_DATABASE_URL": settings.database_url,
        "PESASWITCH_SECRET_KEY": TEST_SECRET_KEY,
        "PESASWITCH_SIMULATOR_DELAY": "0",
        "PESASWITCH_LOG_LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }
    simulator = Process([PESASWITCH, "simulator", "--port", str(port)], base, tmp_path / "sim.log")
    try:
        simulator_url = f"http://127.0.0.1:{port}"
        simulator.wait_http(f"{simulator_url}/simulator/health")
        env = {**base, "PESASWITCH_DARAJA_BASE_URL": simulator_url,
               # Nobody listens there: the confirmation is lost.
               "PESASWITCH_PUBLIC_URL": f"http://127.0.0.1:{free_port()}"}  # fmt: skip

        embedded = _cli(base, "channels", "register-c2b", str(channel_id))
        assert embedded.returncode == 2
        assert "embedded simulator" in embedded.stderr
        missing = _cli(env, "channels", "register-c2b", "999999")
        assert missing.returncode == 1
        assert "No channel" in missing.stderr

        done = _cli(env, "channels", "register-c2b", str(channel_id))
        assert done.returncode == 0, done.stderr
        shortcode = _json(done.stdout)["shortcode"]
        paid = httpx.post(
            f"{simulator_url}/simulator/c2b/pay",
            json={"shortcode": shortcode, "amount": 60, "msisdn": "0708374149",
                  "bill_ref": "TABLE-4", "kind": "till"},
            timeout=30,
        )  # fmt: skip
        assert paid.status_code == 201, paid.text
        assert paid.json()["confirmations_sent"] == [0]

        swept = _cli(env, "c2b", "sweep", str(channel_id))
        assert swept.returncode == 0, swept.stderr
        assert _json(swept.stdout)["recovered"] == [paid.json()["trans_id"]]
        again = _cli(env, "c2b", "sweep", str(channel_id))
        assert _json(again.stdout)["recovered"] == []
    finally:
        simulator.stop()
