"""Reading payments: scoping, filters, pagination, phone validation, service endpoints."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from tests.conftest import Gateway, Merchant, create_merchant, problem


async def make_payment(gateway: Gateway, merchant: Merchant, **fields: Any) -> dict[str, Any]:
    body = {"amount": 10, "phone": "0708374149", **fields}
    response = await gateway.client.post("/v1/payments", headers=merchant.auth, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_another_account_sees_404(gateway: Gateway, merchant: Merchant) -> None:
    payment = await make_payment(gateway, merchant)
    other = await create_merchant(gateway.settings, "Nosy shop")
    for headers in (other.auth, other.read_auth):
        response = await gateway.client.get(f"/v1/payments/{payment['id']}", headers=headers)
        assert response.status_code == 404
        assert problem(response)["code"] == "not_found"
        listed = await gateway.client.get("/v1/payments", headers=headers)
        assert listed.json()["data"] == []
    own = await gateway.client.get(f"/v1/payments/{payment['id']}", headers=merchant.read_auth)
    assert own.status_code == 200


async def test_list_filters_and_cursor_pages(gateway: Gateway, merchant: Merchant) -> None:
    made = [
        await make_payment(
            gateway, merchant, amount=10 + i, phone=f"07120001{i:02d}", reference=f"R-{i}"
        )
        for i in range(5)
    ]
    failed = await make_payment(gateway, merchant, amount=10, phone="0711001032")
    await gateway.wait_for_status(merchant, failed["id"])

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["starting_after"] = cursor
        page = (
            await gateway.client.get("/v1/payments", headers=merchant.auth, params=params)
        ).json()
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [failed["id"], *reversed([p["id"] for p in made])]

    by_ref = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"reference": "R-3"}
    )
    assert [p["id"] for p in by_ref.json()["data"]] == [made[3]["id"]]
    by_phone = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"phone": "+254 712 000 102"}
    )
    assert [p["id"] for p in by_phone.json()["data"]] == [made[2]["id"]]
    cancelled = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"status": "cancelled"}
    )
    assert [p["id"] for p in cancelled.json()["data"]] == [failed["id"]]
    future = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"created_after": "2999-01-01T00:00:00Z"}
    )
    assert future.json()["data"] == []
    bad = await gateway.client.get("/v1/payments", headers=merchant.auth, params={"status": "x"})
    assert bad.status_code == 422
    assert problem(bad)["code"] == "validation_error"
    too_many = await gateway.client.get(
        "/v1/payments", headers=merchant.auth, params={"limit": 500}
    )
    assert too_many.status_code == 422


async def test_phone_validation_endpoint(gateway: Gateway, merchant: Merchant) -> None:
    ok = await gateway.client.post(
        "/v1/phone-numbers/validate", headers=merchant.read_auth, json={"phone": "0708 374 149"}
    )
    assert ok.json() == {
        "original": "0708 374 149",
        "normalized": "254708374149",
        "valid": True,
        "network": "safaricom",
    }
    airtel = await gateway.client.post(
        "/v1/phone-numbers/validate", headers=merchant.auth, json={"phone": "0733123456"}
    )
    assert airtel.json()["valid"] is False
    assert airtel.json()["network"] == "airtel"
    garbage = await gateway.client.post(
        "/v1/phone-numbers/validate", headers=merchant.auth, json={"phone": "12"}
    )
    assert garbage.json() == {"original": "12", "normalized": None, "valid": False, "network": None}
    missing = await gateway.client.post(
        "/v1/phone-numbers/validate", headers=merchant.auth, json={}
    )
    assert missing.status_code == 422


async def test_openapi_is_valid_and_health_answers(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    validate(spec)
    assert "/v1/payments" in spec["paths"]
    assert "/daraja/stk/{token}" not in spec["paths"]
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    # At the documented path itself, not a redirect to /metrics/.
    metrics = await gateway.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "python_info" in metrics.text


async def test_unknown_route_is_problem_json(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"
