"""The simulator's seeded faults (simulator/chaos.py) and its robustness in chaos runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request

from pesaswitch.simulator import wire
from pesaswitch.simulator.app import Simulator, SimulatorConfig
from pesaswitch.simulator.chaos import Chaos, ChaosSettings, PushFault
from tests.simulator.test_daraja_api import KEY, SECRET, push_body, token


async def test_a_client_gone_mid_body_is_not_a_simulator_error() -> None:
    # Found by the chaos run: a gateway process killed while its STK Push body was being
    # read gave the simulator a ClientDisconnect traceback.
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ValueError, match="disconnected"):
        await wire.read_json(request)


def test_the_same_seed_draws_the_same_faults() -> None:
    numbers = [f"2547120000{n:02d}" for n in range(60)]
    first = [Chaos(ChaosSettings(seed=7, rate=0.5)).push_fault(n) for n in numbers]
    again = [Chaos(ChaosSettings(seed=7, rate=0.5)).push_fault(n) for n in numbers]
    other = [Chaos(ChaosSettings(seed=8, rate=0.5)).push_fault(n) for n in numbers]
    assert first == again
    assert first != other
    assert PushFault.NONE in first
    assert len(set(first)) > 2


async def test_refusals_and_pushes_are_in_the_truth() -> None:
    config = SimulatorConfig(KEY, SECRET, accept_any_app=False, hang_seconds=0.1,
                             chaos=ChaosSettings(seed=11, rate=1.0))  # fmt: skip
    simulator = Simulator(config)
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daraja.test") as http:
        statuses = []
        for n in range(30):
            bearer = {"Authorization": f"Bearer {await token(http)}"}
            body = push_body(PhoneNumber=f"2547120001{n:02d}", PartyA=f"2547120001{n:02d}",
                             CallBackURL=f"https://example.com/cb/{n}")  # fmt: skip
            answer = await http.post("/mpesa/stkpush/v1/processrequest", json=body,
                                     headers=bearer)  # fmt: skip
            statuses.append(answer.status_code)
        truth = (await http.get("/simulator/chaos/truth")).json()
    await simulator.aclose()
    # Every request met a fault (rate 1): each is either refused or accepted (and hung).
    assert len(truth["pushes"]) + len(truth["refused"]) == 30
    assert {500, 503, 404} & set(statuses)
    for url, (_checkout, code, _receipt, amount, _sent) in truth["pushes"].items():
        assert url.startswith("https://example.com/cb/")
        assert code == 0
        assert amount == 1
