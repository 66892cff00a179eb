"""The sandbox phone's HTML page, on the simulator and on a gateway with the embedded
simulator: payments created through /v1/payments end as the person on the page decides."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from pesaswitch.app import create_app
from pesaswitch.config import SimulatorMode
from pesaswitch.simulator.app import Simulator, SimulatorConfig
from tests.conftest import Gateway, create_merchant
from tests.simulator.test_daraja_api import KEY, SECRET, push_body, token
from tests.simulator.test_phone import callbacks
from tests.support.receiver import Receiver, running_receiver

PHONE = "254712340001"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    sim = Simulator(SimulatorConfig(KEY, SECRET, mode=SimulatorMode.INTERACTIVE))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://daraja.test"
    ) as client:
        client.headers["Authorization"] = f"Bearer {await token(client)}"
        yield client
    await sim.aclose()


async def held_push(http: httpx.AsyncClient, receiver: Receiver) -> str:
    body = push_body(PartyA=PHONE, PhoneNumber=PHONE, CallBackURL=receiver.url, Amount="75")
    response = await http.post("/mpesa/stkpush/v1/processrequest", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["CheckoutRequestID"])


@pytest.mark.parametrize("spelling", ["254712340001", "0712340001", "+254712340001"])
async def test_the_page_shows_the_held_prompt_for_any_spelling(
    http: httpx.AsyncClient, receiver: Receiver, spelling: str
) -> None:
    cid = await held_push(http, receiver)
    page = await http.get("/simulator/phone", params={"msisdn": spelling})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert f'data-checkout-request-id="{cid}"' in text
    assert "Do you want to pay Ksh 75 to 174379? Enter M-PESA PIN" in text
    assert f'id="pin-{cid}"' in text
    for action in ("pin", "cancel", "timeout"):
        assert f'action="/simulator/phone/prompts/{cid}/{action}"' in text
    assert ">Send</button>" in text
    assert ">Cancel</button>" in text
    assert ">Let it time out</button>" in text
    assert f'data-msisdn="{PHONE}"' in text
    assert 'id="auto-mode-notice"' not in text
    # Nothing is loaded from elsewhere (no CDN, no third-party CSS or JS).
    assert "<script src" not in text
    assert "<link" not in text


async def test_the_pin_form_redirects_back_and_lists_the_result(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    cid = await held_push(http, receiver)
    sent = await http.post(
        f"/simulator/phone/prompts/{cid}/pin", data={"pin": "1234", "msisdn": PHONE}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/simulator/phone?msisdn={PHONE}&notice=pin"
    page = await http.get(sent.headers["location"])
    assert 'data-notice="pin"' in page.text
    assert 'id="no-prompts"' in page.text
    assert re.search(rf'data-checkout-request-id="{cid}"\s+data-result-code="0"', page.text)
    received = await callbacks(receiver)
    assert [c["ResultCode"] for c in received] == [0]
    receipt = received[0]["CallbackMetadata"]["Item"][1]["Value"]
    assert f'<code class="receipt">{receipt}</code>' in page.text

    again = await http.post(f"/simulator/phone/prompts/{cid}/cancel", data={"msisdn": PHONE})
    assert again.headers["location"].endswith("notice=prompt_already_ended")
    shown = await http.get(again.headers["location"])
    assert "That prompt has already ended" in html.unescape(shown.text)
    assert len(await callbacks(receiver)) == 1


async def test_an_empty_pin_from_the_form_changes_nothing(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    cid = await held_push(http, receiver)
    sent = await http.post(f"/simulator/phone/prompts/{cid}/pin", data={"pin": ""})
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("notice=pin_required")
    unknown = await http.post("/simulator/phone/prompts/ws_CO_x/cancel", data={"msisdn": PHONE})
    assert unknown.headers["location"].endswith(f"msisdn={PHONE}&notice=prompt_not_found")
    page = await http.get("/simulator/phone", params={"msisdn": PHONE})
    assert f'id="pin-{cid}"' in page.text
    assert await callbacks(receiver, wait=0.1) == []


# --- on the gateway ------------------------------------------------------------------


async def pay_and_find_prompt(gateway: Gateway, phone: str) -> tuple[Any, str, str]:
    merchant = await create_merchant(gateway.settings)
    created = await gateway.client.post(
        "/v1/payments", headers=merchant.auth, json={"amount": 40, "phone": phone}
    )
    assert created.status_code == 201, created.text
    payment = created.json()
    # The reconciler's queries must not settle a held prompt.
    listed = await gateway.client.get("/simulator/phone/api/prompts", params={"msisdn": phone})
    assert listed.status_code == 200
    waiting = listed.json()["waiting"]
    assert [p["checkout_request_id"] for p in waiting] == [payment["checkout_request_id"]]
    page = await gateway.client.get("/simulator/phone", params={"msisdn": phone})
    assert f'id="pin-{payment["checkout_request_id"]}"' in page.text
    return merchant, payment["id"], payment["checkout_request_id"]


async def test_gateway_payment_completes_after_the_pin(
    gateway_factory: Callable[..., Any],
) -> None:
    gateway: Gateway = await gateway_factory(simulator_mode="interactive")
    merchant, payment_id, cid = await pay_and_find_prompt(gateway, "0712340002")
    still = await gateway.wait_for_status(merchant, payment_id, timeout=0.6)
    assert still["status"] == "pending"
    sent = await gateway.client.post(f"/simulator/phone/prompts/{cid}/pin", data={"pin": "1234"})
    assert sent.status_code == 303
    final = await gateway.wait_for_status(merchant, payment_id)
    assert final["status"] == "completed"
    assert final["result_code"] == "0"
    # The reconciler's query may settle it before the callback does; the query knows no
    # receipt, and the callback brings it a moment later (tests/payments/test_late_receipts).
    final = await gateway.wait_for_receipt(merchant, payment_id)
    assert len(final["mpesa_receipt"]) == 10


@pytest.mark.parametrize(
    ("action", "form", "status", "code"),
    [
        ("cancel", {}, "cancelled", "1032"),
        ("pin", {"pin": "9999"}, "failed", "2001"),
        ("timeout", {}, "expired", "1037"),
    ],
)
async def test_gateway_payment_fails_as_the_person_decides(
    gateway_factory: Callable[..., Any], action: str, form: dict[str, str], status: str, code: str
) -> None:
    gateway: Gateway = await gateway_factory(simulator_mode="interactive", simulator_pin="2468")
    merchant, payment_id, cid = await pay_and_find_prompt(gateway, "254712340003")
    sent = await gateway.client.post(f"/simulator/phone/prompts/{cid}/{action}", data=form)
    assert sent.status_code == 303
    final = await gateway.wait_for_status(merchant, payment_id)
    assert (final["status"], final["result_code"]) == (status, code)


@pytest.mark.parametrize(
    "overrides",
    [
        {"daraja_mode": "sandbox"},
        {"daraja_mode": "production"},
        {"daraja_base_url": "http://127.0.0.1:9"},  # a standalone simulator elsewhere
    ],
)
async def test_no_phone_page_without_an_embedded_simulator(
    make_settings: Callable[..., Any], overrides: dict[str, str]
) -> None:
    app = create_app(make_settings(embedded_worker=False, **overrides))
    assert app.state.runtime.simulator is None
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client:
            for path in ("/simulator/phone", "/simulator/phone/api/prompts?msisdn=0712340001"):
                assert (await client.get(path)).status_code == 404
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await app.state.runtime.aclose()
