"""``client.balance`` and ``client.ledger_entries``: the account's wallet and its journal."""

from __future__ import annotations

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport
from pesaswitch_sdk._models import Balance, LedgerEntry
from pesaswitch_sdk._pagination import AsyncPage, SyncPage, page_params

_BALANCE = ApiRequest("GET", "/v1/balance")


def _entries(limit: int | None) -> ApiRequest:
    return ApiRequest("GET", "/v1/ledger/entries", params=page_params(limit))


class BalanceResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def get(self) -> Balance:
        """Available and reserved funds, per currency."""
        return Balance.model_validate(self._transport.send(_BALANCE))


class AsyncBalanceResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def get(self) -> Balance:
        return Balance.model_validate(await self._transport.send(_BALANCE))


class LedgerEntries:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def list(self, *, limit: int | None = None) -> SyncPage[LedgerEntry]:
        """Journal entries, newest first; each one's postings sum to zero per currency."""
        request = _entries(limit)
        send = self._transport.send
        return SyncPage(send(request), request=request, parse=LedgerEntry.model_validate, send=send)


class AsyncLedgerEntries:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def list(self, *, limit: int | None = None) -> AsyncPage[LedgerEntry]:
        request = _entries(limit)
        send = self._transport.send
        return AsyncPage(
            await send(request), request=request, parse=LedgerEntry.model_validate, send=send
        )
