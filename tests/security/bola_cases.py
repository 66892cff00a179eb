"""BOLA cases: one per route that takes an object id or a reference.

``test_bola.py`` reads the routes from the app's router and fails for any route with a
path parameter (or an id or reference in its query or JSON body) that has neither a case
here nor an entry in ``EXEMPT``. To cover a new route, add a function::

    @case("GET /v1/refunds/{refund_id}")
    async def _(w: World) -> None:
        await gone(w.http.get(f"/v1/refunds/{w.theirs.refund_id}", headers=w.a.merchant.auth))

with B's object made in ``bola_world.build_world``. A case proves three things: A gets
404 for B's object, B still sees it (the id is real), and nothing of B's changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.dashboard.helpers import post_form
from tests.security.bola_world import World, basic, x_api_key

Case = Callable[[World], Awaitable[None]]
CASES: dict[str, Case] = {}

# Routes with an id in the path that are not an account's objects, and why.
EXEMPT = {
    "POST /daraja/stk/{token}": "Daraja's callback; the unguessable per-payment token is "
    "the credential (tests/daraja: a wrong token is refused)",
    "POST /daraja/b2c/result/{token}": "Daraja's B2C result; per-payout token as above",
    "POST /daraja/b2c/timeout/{token}": "Daraja's B2C timeout; per-payout token as above",
    "POST /daraja/b2c/status/{token}": "Daraja's status result; per-payout token as above",
    "POST /daraja/reversal/result/{token}": "Daraja's reversal Result; the unguessable "
    "per-reversal token is the credential (tests/refunds/test_reversals.py: an unknown "
    "token is a 404)",
    "POST /daraja/reversal/timeout/{token}": "Daraja's reversal queue timeout; per-reversal "
    "token as above",
    "POST /daraja/reversal/status/{token}": "Daraja's Transaction Status Result for a "
    "reversal; per-reversal token as above",
    "GET /daraja/doctor/{nonce}": "`doctor --probe`'s echo: it answers any well-formed "
    "nonce with an HMAC of that nonce under a key of its own (HKDF of the secret key) and "
    "reads no account's object",
    "GET /pay/{slug}": "a payment link's slug is its public address: anyone may open it",
    "POST /pay/{slug}": "anyone may pay through a public payment link",
    "POST /simulator/phone/prompts/{checkout_request_id}/{action}": "the sandbox phone of "
    "the embedded simulator (no accounts; never mounted beside real Daraja)",
    "POST /simulator/phone/api/prompts/{checkout_request_id}/{action}": "as above",
    "* /dashboard/static/{path}": "static files",
}


def case(*routes: str) -> Callable[[Case], Case]:
    def register(func: Case) -> Case:
        for route in routes:
            assert route not in CASES, route
            CASES[route] = func
        return func

    return register


async def gone(request: Awaitable[httpx.Response]) -> httpx.Response:
    response = await request
    assert response.status_code == 404, (response.request.url, response.text)
    return response


async def seen(request: Awaitable[httpx.Response]) -> None:
    response = await request
    assert response.status_code == 200, (response.request.url, response.text)


def unchanged_after(w: World, *paths: str) -> Any:
    """``async with unchanged_after(w, path...)``: B's view of ``paths`` is the same after."""

    class Guard:
        async def __aenter__(self) -> None:
            self.before = await w.snapshot(*paths)
            assert all(status == 200 for status, _ in self.before), self.before

        async def __aexit__(self, *exc: object) -> None:
            if exc[0] is None:
                assert await w.snapshot(*paths) == self.before

    return Guard()


# Native API -----------------------------------------------------------------------------


@case("GET /v1/payments/{payment_id}")
async def _payment(w: World) -> None:
    path = f"/v1/payments/{w.theirs.payment_id}"
    await gone(w.http.get(path, headers=w.a.merchant.auth))
    await gone(w.http.get(path, headers=w.a.merchant.read_auth))
    await seen(w.http.get(path, headers=w.b.merchant.auth))


@case("GET /v1/payments")
async def _payment_search(w: World) -> None:
    for query in (f"reference={w.theirs.payment_reference}", "phone=254708374149"):
        listed = await w.http.get(f"/v1/payments?{query}", headers=w.a.merchant.auth)
        assert w.theirs.payment_id not in listed.text, query


@case("POST /v1/payments")
async def _payment_on_their_channel(w: World) -> None:
    async with unchanged_after(w, "/v1/payments"):
        await gone(w.http.post(
            "/v1/payments", headers=w.a.merchant.auth,
            json={"amount": 10, "phone": "0708374149", "channel_id": w.theirs.channel_id},
        ))  # fmt: skip


@case("GET /v1/payouts/{payout_id}")
async def _payout(w: World) -> None:
    path = f"/v1/payouts/{w.theirs.payout_id}"
    await gone(w.http.get(path, headers=w.a.merchant.auth))
    await seen(w.http.get(path, headers=w.b.merchant.auth))


@case("POST /v1/payouts")
async def _payout_reference(w: World) -> None:
    """References are unique per account: B's does not collide with A's, nor leak."""
    async with unchanged_after(w, f"/v1/payouts/{w.theirs.payout_id}"):
        response = await w.http.post(
            "/v1/payouts", headers=w.a.merchant.auth,
            json={"amount": 100, "phone": "0708374149", "reference": w.theirs.payout_reference},
        )  # fmt: skip
    assert response.status_code == 422, response.text  # A's empty wallet, not a conflict
    assert response.json()["code"] == "insufficient_funds"


@case(
    "GET /v1/webhook-endpoints/{endpoint_id}", "GET /v1/webhook-endpoints/{endpoint_id}/deliveries"
)
async def _endpoint_reads(w: World) -> None:
    for suffix in ("", "/deliveries"):
        path = f"/v1/webhook-endpoints/{w.theirs.endpoint_id}{suffix}"
        await gone(w.http.get(path, headers=w.a.merchant.auth))
        await seen(w.http.get(path, headers=w.b.merchant.auth))


@case(
    "DELETE /v1/webhook-endpoints/{endpoint_id}",
    "POST /v1/webhook-endpoints/{endpoint_id}/disable",
    "POST /v1/webhook-endpoints/{endpoint_id}/enable",
    "POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret",
)
async def _endpoint_actions(w: World) -> None:
    path = f"/v1/webhook-endpoints/{w.theirs.endpoint_id}"
    async with unchanged_after(w, path, "/v1/webhook-endpoints"):
        await gone(w.http.delete(path, headers=w.a.merchant.auth))
        for action in ("disable", "enable", "rotate-secret"):
            await gone(w.http.post(f"{path}/{action}", headers=w.a.merchant.auth))


@case("GET /v1/events/{event_id}", "GET /v1/events/{event_id}/deliveries")
async def _event_reads(w: World) -> None:
    for suffix in ("", "/deliveries"):
        path = f"/v1/events/{w.theirs.event_id}{suffix}"
        await gone(w.http.get(path, headers=w.a.merchant.auth))
        await seen(w.http.get(path, headers=w.b.merchant.auth))


@case("POST /v1/events/{event_id}/redeliver")
async def _redeliver(w: World) -> None:
    deliveries = f"/v1/events/{w.theirs.event_id}/deliveries"
    async with unchanged_after(w, deliveries, f"/v1/webhook-endpoints/{w.theirs.endpoint_id}"):
        await gone(w.http.post(
            f"/v1/events/{w.theirs.event_id}/redeliver", headers=w.a.merchant.auth
        ))  # fmt: skip
        # A's own event to B's endpoint.
        await gone(w.http.post(
            f"/v1/events/{w.a_event_id}/redeliver", headers=w.a.merchant.auth,
            json={"endpoint_id": w.theirs.endpoint_id},
        ))  # fmt: skip


# Refunds and reversals ----------------------------------------------------------------


@case("GET /v1/refunds/{refund_id}", "GET /v1/reversals/{reversal_id}")
async def _return_reads(w: World) -> None:
    for path in (f"/v1/refunds/{w.theirs.refund_id}", f"/v1/reversals/{w.theirs.reversal_id}"):
        await gone(w.http.get(path, headers=w.a.merchant.auth))
        await gone(w.http.get(path, headers=w.a.merchant.read_auth))
        await seen(w.http.get(path, headers=w.b.merchant.auth))


async def _a_view(w: World) -> list[Any]:
    """A's payouts and balance: a refund A was refused must not have made a payout."""
    views = []
    for path in ("/v1/payouts", "/v1/balance"):
        response = await w.http.get(path, headers=w.a.merchant.auth)
        views.append((response.status_code, response.json()))
    return views


@case("POST /v1/payments/{payment_id}/refund")
async def _refund_their_payment(w: World) -> None:
    """B's untouched payment and B's partly refunded one: A may not pay B's customer back,
    and neither B's refundable amounts, B's payouts nor either wallet move."""
    a_before = await _a_view(w)
    for payment_id in (w.theirs.payment_id, w.theirs.refunded_payment_id):
        path = f"/v1/payments/{payment_id}"
        async with unchanged_after(w, path, "/v1/payouts", "/v1/balance"):
            for body in ({}, {"amount": 10}):
                await gone(w.http.post(f"{path}/refund", headers=w.a.merchant.auth, json=body))
    assert await _a_view(w) == a_before


@case("POST /v1/payments/{payment_id}/reversal")
async def _reverse_their_payment(w: World) -> None:
    """B's reversible payment and B's reversed one: B's reversal state and wallet stay."""
    a_before = await _a_view(w)
    for payment_id in (w.theirs.payment_id, w.theirs.reversed_payment_id):
        path = f"/v1/payments/{payment_id}"
        watched = (path, f"/v1/reversals/{w.theirs.reversal_id}", "/v1/balance")
        async with unchanged_after(w, *watched):
            await gone(w.http.post(f"{path}/reversal", headers=w.a.merchant.auth))
            await gone(w.http.post(
                f"{path}/reversal", headers=w.a.merchant.auth, json={"reason": "A's"}
            ))  # fmt: skip
    assert await _a_view(w) == a_before


# Dialects ---------------------------------------------------------------------------------


@case("GET /api/payments/{reference}")
async def _paynexus_payment(w: World) -> None:
    path = f"/api/payments/{w.theirs.payment_reference}"
    await gone(w.http.get(path, headers=x_api_key(w.a.merchant)))
    await seen(w.http.get(path, headers=x_api_key(w.b.merchant)))


@case("POST /api/payments/status-by-checkout-id")
async def _paynexus_by_checkout(w: World) -> None:
    body = {"checkout_request_id": w.theirs.checkout_request_id}
    path = "/api/payments/status-by-checkout-id"
    await gone(w.http.post(path, headers=x_api_key(w.a.merchant), json=body))
    await seen(w.http.post(path, headers=x_api_key(w.b.merchant), json=body))


@case("POST /api/mpesa/payment/initiate")
async def _paynexus_initiate(w: World) -> None:
    """B's reference is A's to use too: A's payment is A's, B's is untouched."""
    their = f"/v1/payments/{w.theirs.payment_id}"
    async with unchanged_after(w, their):
        response = await w.http.post(
            "/api/mpesa/payment/initiate", headers=x_api_key(w.a.merchant),
            json={"amount": 10, "phone": "0708374149", "reference": w.theirs.payment_reference},
        )  # fmt: skip
    assert response.status_code < 300, response.text
    assert w.theirs.payment_id not in response.text


@case("GET /api/v2/transaction-status")
async def _payhero_status(w: World) -> None:
    path = f"/api/v2/transaction-status?reference={w.theirs.payment_reference}"
    await gone(w.http.get(path, headers=basic(w.a.merchant)))
    await seen(w.http.get(path, headers=basic(w.b.merchant)))


@case("GET /api/v2/payment_channels/{channel_id}")
async def _payhero_channel(w: World) -> None:
    path = f"/api/v2/payment_channels/{w.theirs.channel_id}"
    await gone(w.http.get(path, headers=basic(w.a.merchant)))
    await seen(w.http.get(path, headers=basic(w.b.merchant)))


@case("POST /api/v2/payments")
async def _payhero_payment_on_their_channel(w: World) -> None:
    async with unchanged_after(w, "/v1/payments"):
        await gone(w.http.post(
            "/api/v2/payments", headers=basic(w.a.merchant),
            json={"amount": 10, "phone_number": "0708374149", "channel_id": w.theirs.channel_id,
                  "provider": "m-pesa"},
        ))  # fmt: skip


@case("POST /api/v2/withdraw")
async def _payhero_withdraw_reference(w: World) -> None:
    async with unchanged_after(w, f"/v1/payouts/{w.theirs.payout_id}"):
        response = await w.http.post(
            "/api/v2/withdraw", headers=basic(w.a.merchant),
            json={"amount": 100, "phone_number": "0708374149",
                  "external_reference": w.theirs.payout_reference},
        )  # fmt: skip
    assert response.status_code == 422, response.text  # A's empty wallet, not a conflict


# Dashboard and /pay -----------------------------------------------------------------------


@case("GET /dashboard/payments/{payment_id}", "GET /dashboard/webhooks/{endpoint_id}")
async def _dashboard_pages(w: World) -> None:
    for path in (
        f"/dashboard/payments/{w.theirs.payment_id}",
        f"/dashboard/payments/{w.theirs.pending_payment_id}",
        f"/dashboard/webhooks/{w.theirs.endpoint_id}",
    ):
        await gone(w.a.client.get(path))
        await seen(w.b.client.get(path))


async def _refused_form(w: World, action: str, data: dict[str, str] | None = None) -> None:
    response = await post_form(w.a.client, "/dashboard", action, data)
    assert response.status_code == 404, (action, response.text)


@case("POST /dashboard/payments/{payment_id}/requery")
async def _dashboard_requery(w: World) -> None:
    async with unchanged_after(w, f"/v1/payments/{w.theirs.pending_payment_id}"):
        await _refused_form(w, f"/dashboard/payments/{w.theirs.pending_payment_id}/requery")


@case("POST /dashboard/keys/{key_id}/revoke")
async def _dashboard_revoke(w: World) -> None:
    await _refused_form(w, f"/dashboard/keys/{w.theirs.key_id}/revoke")
    await seen(w.http.get("/v1/balance", headers=w.b.merchant.auth))  # B's key still works


@case("POST /dashboard/webhooks/{endpoint_id}/enabled")
async def _dashboard_endpoint_enabled(w: World) -> None:
    async with unchanged_after(w, f"/v1/webhook-endpoints/{w.theirs.endpoint_id}"):
        await _refused_form(
            w, f"/dashboard/webhooks/{w.theirs.endpoint_id}/enabled", {"enabled": "false"}
        )


@case("POST /dashboard/events/{event_id}/redeliver")
async def _dashboard_redeliver(w: World) -> None:
    async with unchanged_after(w, f"/v1/events/{w.theirs.event_id}/deliveries"):
        await _refused_form(w, f"/dashboard/events/{w.theirs.event_id}/redeliver")
        await _refused_form(
            w, f"/dashboard/events/{w.a_event_id}/redeliver", {"endpoint_id": w.theirs.endpoint_id}
        )


@case("POST /dashboard/links/{link_id}/active")
async def _dashboard_link(w: World) -> None:
    await _refused_form(w, f"/dashboard/links/{w.theirs.link_id}/active", {"active": "false"})
    await seen(w.http.get(f"/pay/{w.theirs.link_slug}"))  # B's link still takes payments


@case("GET /pay/{slug}/payments/{payment_id}", "GET /pay/{slug}/payments/{payment_id}/status")
async def _pay_status(w: World) -> None:
    """B's payment, with its valid signature, under A's link: not found."""
    mac = w.status_mac(w.theirs.payment_id)
    for suffix in ("", "/status"):
        theirs = f"/payments/{w.theirs.payment_id}{suffix}?t={mac}"
        await gone(w.http.get(f"/pay/{w.a_link_slug}{theirs}"))
        await seen(w.http.get(f"/pay/{w.theirs.link_slug}{theirs}"))
