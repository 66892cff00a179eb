"""``Pesaswitch`` and ``AsyncPesaswitch``: one per API key, holding one connection pool.

Each resource is one module in ``resources/`` with a sync and an async class over the same
request builders. A new part of the API is one more module there and one attribute in
both clients below.
"""

from __future__ import annotations

from types import TracebackType

import httpx

from pesaswitch_sdk._http import DEFAULT_TIMEOUT, AsyncTransport, SyncTransport, client_headers
from pesaswitch_sdk._retry import RetryPolicy
from pesaswitch_sdk.resources.c2b import C2B, AsyncC2B
from pesaswitch_sdk.resources.events import (
    AsyncCallbackSecretResource,
    AsyncEvents,
    CallbackSecretResource,
    Events,
)
from pesaswitch_sdk.resources.payments import AsyncPayments, Payments
from pesaswitch_sdk.resources.payouts import AsyncPayouts, Payouts
from pesaswitch_sdk.resources.phone_numbers import AsyncPhoneNumbers, PhoneNumbers
from pesaswitch_sdk.resources.refunds import (
    AsyncBankPaybills,
    AsyncRefunds,
    AsyncReversals,
    BankPaybills,
    Refunds,
    Reversals,
)
from pesaswitch_sdk.resources.wallet import (
    AsyncBalanceResource,
    AsyncLedgerEntries,
    BalanceResource,
    LedgerEntries,
)
from pesaswitch_sdk.resources.webhook_endpoints import AsyncWebhookEndpoints, WebhookEndpoints

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
Timeout = float | httpx.Timeout


def _check_key(api_key: str) -> str:
    # A key pasted with its newline, or an empty environment variable, would otherwise
    # come back as a puzzling 401 from the gateway.
    api_key = api_key.strip()
    if not api_key.startswith(("sk_", "pk_")):
        raise ValueError("api_key must be a pesaswitch key: sk_test_…, sk_live_…, pk_…")
    return api_key


class Pesaswitch:
    """The blocking client. ``with Pesaswitch(...) as client:`` closes its connections."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        """``http_client`` (your own ``httpx.Client``: proxies, certificates, transports) is
        used as given, with the key and base URL set per request; you close it."""
        headers = client_headers(_check_key(api_key))
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        else:
            http_client.base_url = httpx.URL(base_url)
            http_client.headers.update(headers)
        self._http = http_client
        transport = SyncTransport(http_client, retries or RetryPolicy())
        self.payments = Payments(transport)
        self.payouts = Payouts(transport)
        self.balance = BalanceResource(transport)
        self.ledger_entries = LedgerEntries(transport)
        self.phone_numbers = PhoneNumbers(transport)
        self.webhook_endpoints = WebhookEndpoints(transport)
        self.events = Events(transport)
        self.callback_secret = CallbackSecretResource(transport)
        self.refunds = Refunds(transport)
        self.reversals = Reversals(transport)
        self.bank_paybills = BankPaybills(transport)
        self.c2b = C2B(transport)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Pesaswitch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPesaswitch:
    """The asyncio client; ``async with AsyncPesaswitch(...) as client:``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retries: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        headers = client_headers(_check_key(api_key))
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)
        else:
            http_client.base_url = httpx.URL(base_url)
            http_client.headers.update(headers)
        self._http = http_client
        transport = AsyncTransport(http_client, retries or RetryPolicy())
        self.payments = AsyncPayments(transport)
        self.payouts = AsyncPayouts(transport)
        self.balance = AsyncBalanceResource(transport)
        self.ledger_entries = AsyncLedgerEntries(transport)
        self.phone_numbers = AsyncPhoneNumbers(transport)
        self.webhook_endpoints = AsyncWebhookEndpoints(transport)
        self.events = AsyncEvents(transport)
        self.callback_secret = AsyncCallbackSecretResource(transport)
        self.refunds = AsyncRefunds(transport)
        self.reversals = AsyncReversals(transport)
        self.bank_paybills = AsyncBankPaybills(transport)
        self.c2b = AsyncC2B(transport)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPesaswitch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
