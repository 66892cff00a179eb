"""Interactive mode and the sandbox phone, on the simulator alone: a held push waits for a
person, each answer ends it once with Daraja's code, and callbacks reach a real receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from pesaswitch.config import SANDBOX_PASSKEY, SimulatorMode
from pesaswitch.daraja.wire import stk_password
from pesaswitch.kit.clock import daraja_timestamp
from pesaswitch.simulator.app import Simulator, SimulatorConfig
from tests.simulator.test_daraja_api import KEY, SECRET, push_body, token
from tests.support.receiver import Receiver, running_receiver

PHONE = "254712345678"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def start(timeout: float = 60.0, mode: SimulatorMode = SimulatorMode.INTERACTIVE) -> Any:
    config = SimulatorConfig(KEY, SECRET, mode=mode, pin="4321", prompt_timeout=timeout)
    return Simulator(config)


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim: Simulator = await start()
    yield sim
    await sim.aclose()


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app), base_url="http://daraja.test"
    ) as client:
        client.headers["Authorization"] = f"Bearer {await token(client)}"
        yield client


async def push(
    http: httpx.AsyncClient, receiver: Receiver, phone: str = PHONE, **extra: Any
) -> str:
    body = push_body(PartyA=phone, PhoneNumber=phone, CallBackURL=receiver.url, **extra)
    response = await http.post("/mpesa/stkpush/v1/processrequest", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["ResponseCode"] == "0"
    return str(response.json()["CheckoutRequestID"])


async def query(http: httpx.AsyncClient, checkout_request_id: str) -> httpx.Response:
    timestamp = daraja_timestamp()
    return await http.post(
        "/mpesa/stkpushquery/v1/query",
        json={
            "BusinessShortCode": "174379",
            "Password": stk_password("174379", SANDBOX_PASSKEY, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        },
    )


async def callbacks(receiver: Receiver, count: int = 1, wait: float = 5.0) -> list[dict[str, Any]]:
    """The stkCallback bodies received, after waiting for ``count`` and a little longer."""
    deadline = asyncio.get_running_loop().time() + wait
    while len(receiver.received) < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # room for an unwanted extra callback to show up
    return [json.loads(r.body)["Body"]["stkCallback"] for r in receiver.received]


async def act(http: httpx.AsyncClient, cid: str, action: str, **body: Any) -> httpx.Response:
    return await http.post(f"/simulator/phone/api/prompts/{cid}/{action}", json=body or None)


async def test_correct_pin_pays_once_after_the_held_push(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    cid = await push(http, receiver, Amount="25")
    pending = await query(http, cid)
    assert pending.json()["ResultCode"] == "4999"
    listed = (await http.get("/simulator/phone/api/prompts", params={"msisdn": PHONE})).json()
    assert [p["checkout_request_id"] for p in listed["waiting"]] == [cid]
    assert listed["waiting"][0]["amount"] == 25
    assert listed["mode"] == "interactive"
    assert await callbacks(receiver, wait=0.2) == []  # nothing is decided while held

    # The subscriber stays locked while the prompt waits, as on Daraja.
    locked = await http.post(
        "/mpesa/stkpush/v1/processrequest",
        json=push_body(PartyA=PHONE, PhoneNumber=PHONE, CallBackURL=receiver.url, Amount="26"),
    )
    assert locked.status_code == 500
    assert locked.json()["errorCode"] == "500.001.1001"

    answered = await act(http, cid, "pin", pin="4321")
    assert answered.status_code == 200
    assert answered.json()["prompt"]["result_code"] == 0
    received = await callbacks(receiver)
    assert len(received) == 1
    assert received[0]["CheckoutRequestID"] == cid
    assert received[0]["ResultCode"] == 0
    items = {i["Name"]: i.get("Value") for i in received[0]["CallbackMetadata"]["Item"]}
    assert items["Amount"] == 25
    assert items["MpesaReceiptNumber"] == answered.json()["prompt"]["receipt"]
    assert len(items["MpesaReceiptNumber"]) == 10
    final = await query(http, cid)
    assert final.json()["ResultCode"] == "0"
    assert final.json()["ResultDesc"] == "The service request is processed successfully."


@pytest.mark.parametrize(
    ("action", "body", "code", "query_desc"),
    [
        ("pin", {"pin": "0000"}, 2001, "The initiator information is invalid."),
        ("cancel", {}, 1032, "Request Cancelled by user."),
        ("timeout", {}, 1037, "DS timeout user cannot be reached"),
    ],
)
async def test_other_answers_fail_with_darajas_codes(
    http: httpx.AsyncClient,
    receiver: Receiver,
    action: str,
    body: dict[str, str],
    code: int,
    query_desc: str,
) -> None:
    cid = await push(http, receiver)
    answered = await act(http, cid, action, **body)
    assert answered.status_code == 200
    assert answered.json()["prompt"]["result_code"] == code
    assert answered.json()["prompt"]["receipt"] is None
    received = await callbacks(receiver)
    assert [(c["ResultCode"], "CallbackMetadata" in c) for c in received] == [(code, False)]
    final = (await query(http, cid)).json()
    assert (final["ResultCode"], final["ResultDesc"]) == (str(code), query_desc)


async def test_a_prompt_nobody_answers_expires_as_1037(receiver: Receiver) -> None:
    sim: Simulator = await start(timeout=0.2)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim.app), base_url="http://daraja.test"
        ) as http:
            http.headers["Authorization"] = f"Bearer {await token(http)}"
            cid = await push(http, receiver)
            assert (await query(http, cid)).json()["ResultCode"] == "4999"
            received = await callbacks(receiver)
            assert [c["ResultCode"] for c in received] == [1037]
            assert received[0]["ResultDesc"] == "No response from user."
            late = await act(http, cid, "pin", pin="4321")
            assert late.status_code == 409
            assert late.json()["code"] == "prompt_already_ended"
            assert sim.pushes[cid].ended_by is not None
            assert sim.pushes[cid].ended_by.value == "expired"
    finally:
        await sim.aclose()
    assert len(receiver.received) == 1


async def test_acting_twice_is_refused_and_sends_nothing_more(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    cid = await push(http, receiver)
    assert (await act(http, cid, "cancel")).status_code == 200
    again = await act(http, cid, "pin", pin="4321")
    assert again.status_code == 409
    assert again.json()["code"] == "prompt_already_ended"
    html = await http.post(f"/simulator/phone/prompts/{cid}/timeout", data={})
    assert html.status_code == 303
    assert "notice=prompt_already_ended" in html.headers["location"]
    assert [c["ResultCode"] for c in await callbacks(receiver)] == [1032]
    assert (await query(http, cid)).json()["ResultCode"] == "1032"


async def test_bad_input_gets_clear_4xx(http: httpx.AsyncClient, receiver: Receiver) -> None:
    cid = await push(http, receiver)
    assert (await act(http, "ws_CO_nope", "cancel")).json()["code"] == "prompt_not_found"
    unknown = await act(http, cid, "shout")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_action")
    no_pin = await act(http, cid, "pin")
    assert (no_pin.status_code, no_pin.json()["code"]) == (422, "pin_required")
    empty = await act(http, cid, "pin", pin="")
    assert (empty.status_code, empty.json()["code"]) == (422, "pin_required")
    bad_json = await http.post(f"/simulator/phone/api/prompts/{cid}/pin", content=b"{")
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "invalid_json")
    bad_msisdn = await http.get("/simulator/phone/api/prompts", params={"msisdn": "12"})
    assert (bad_msisdn.status_code, bad_msisdn.json()["code"]) == (400, "invalid_msisdn")
    page = await http.get("/simulator/phone", params={"msisdn": "not-a-phone"})
    assert page.status_code == 400
    assert 'id="msisdn-error"' in page.text
    # None of that ended the prompt.
    assert await callbacks(receiver, wait=0.1) == []
    assert (await query(http, cid)).json()["ResultCode"] == "4999"


@pytest.mark.parametrize(
    ("phone", "code"), [("254711001032", 1032), ("254711000001", 1), ("254708374149", None)]
)
async def test_special_numbers_stay_automatic(
    http: httpx.AsyncClient, receiver: Receiver, phone: str, code: int | None
) -> None:
    cid = await push(http, receiver, phone=phone)
    listed = (await http.get("/simulator/phone/api/prompts", params={"msisdn": phone})).json()
    if code is None:  # Daraja's own test number is an ordinary number: it is held
        assert [p["checkout_request_id"] for p in listed["waiting"]] == [cid]
        return
    assert listed["waiting"] == []
    assert [c["ResultCode"] for c in await callbacks(receiver)] == [code]
    assert (await act(http, cid, "cancel")).status_code == 404


async def test_auto_mode_decides_alone_and_the_page_says_so(receiver: Receiver) -> None:
    sim: Simulator = await start(mode=SimulatorMode.AUTO)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim.app), base_url="http://daraja.test"
        ) as http:
            http.headers["Authorization"] = f"Bearer {await token(http)}"
            cid = await push(http, receiver)
            assert [c["ResultCode"] for c in await callbacks(receiver)] == [0]
            page = await http.get("/simulator/phone", params={"msisdn": PHONE})
            assert page.status_code == 200
            assert 'id="auto-mode-notice"' in page.text
            assert "PESASWITCH_SIMULATOR_MODE=interactive" in page.text
            assert f'data-checkout-request-id="{cid}"' in page.text  # in the recent list
            assert 'id="no-prompts"' in page.text
    finally:
        await sim.aclose()
