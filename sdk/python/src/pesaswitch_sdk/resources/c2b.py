"""``client.c2b``: payments customers make to a channel's till or paybill unprompted
(``/v1/channels/{id}/c2b…`` and ``/v1/c2b/notifications``).

Configure the channel's rules (``put_settings``), register its URLs with M-Pesa
(``register``); each confirmed payment then appears in ``client.payments`` with
``source="c2b"``. ``sweep`` and ``recover`` find payments whose confirmation never came.
"""

from __future__ import annotations

from typing import Any, Literal

from pesaswitch_sdk._http import ApiRequest, AsyncTransport, SyncTransport
from pesaswitch_sdk._models import C2BNotification, C2BRecovery, C2BSettings, C2BSweep

DefaultAction = Literal["accept", "reject"]


def _path(channel_id: int, suffix: str = "") -> str:
    return f"/v1/channels/{channel_id}/c2b{suffix}"


def _put(channel_id: int, rules: dict[str, Any]) -> ApiRequest:
    # A PUT replaces the rules with the same body each time: safe to send twice.
    return ApiRequest("PUT", _path(channel_id), json=rules)


def _action(channel_id: int, action: str, body: dict[str, Any] | None = None) -> ApiRequest:
    # Registering again re-sends the same URLs; a sweep or a recovery records a receipt
    # at most once: each is safe to retry.
    return ApiRequest("POST", _path(channel_id, f"/{action}"), json=body)


def _rules(
    validation_enabled: bool,
    account_pattern: str | None,
    min_amount: int | None,
    max_amount: int | None,
    validation_url: str | None,
    default_action: DefaultAction,
) -> dict[str, Any]:
    # Every field is sent, None included: the PUT replaces all the rules.
    return {
        "validation_enabled": validation_enabled, "account_pattern": account_pattern,
        "min_amount": min_amount, "max_amount": max_amount, "validation_url": validation_url,
        "default_action": default_action,
    }  # fmt: skip


def _notifications(body: Any) -> list[C2BNotification]:
    return [C2BNotification.model_validate(row) for row in body]


class C2B:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def get_settings(self, channel_id: int) -> C2BSettings:
        """The channel's rules; ``NotFoundError`` (``c2b_not_configured``) if it has none."""
        request = ApiRequest("GET", _path(channel_id))
        return C2BSettings.model_validate(self._transport.send(request))

    def put_settings(
        self,
        channel_id: int,
        *,
        validation_enabled: bool = False,
        account_pattern: str | None = None,
        min_amount: int | None = None,
        max_amount: int | None = None,
        validation_url: str | None = None,
        default_action: DefaultAction = "accept",
    ) -> C2BSettings:
        """Set (replace) the rules M-Pesa's validation requests are answered by:
        ``account_pattern`` is a regular expression the whole account number must match."""
        rules = _rules(validation_enabled, account_pattern, min_amount, max_amount,
                       validation_url, default_action)  # fmt: skip
        return C2BSettings.model_validate(self._transport.send(_put(channel_id, rules)))

    def register(self, channel_id: int) -> C2BSettings:
        """Register the channel's confirmation and validation URLs with M-Pesa."""
        return C2BSettings.model_validate(self._transport.send(_action(channel_id, "register")))

    def sweep(self, channel_id: int) -> C2BSweep:
        """Ask M-Pesa (Pull Transactions) for recent payments and record the missed ones."""
        return C2BSweep.model_validate(self._transport.send(_action(channel_id, "sweep")))

    def recover(self, channel_id: int, receipt: str) -> C2BRecovery:
        """Look one missed payment up by its M-Pesa receipt (from the customer's SMS)."""
        request = _action(channel_id, "recover", {"receipt": receipt})
        return C2BRecovery.model_validate(self._transport.send(request))

    def notifications(self) -> list[C2BNotification]:
        """The account's latest 50 C2B notifications from M-Pesa, newest first."""
        request = ApiRequest("GET", "/v1/c2b/notifications")
        return _notifications(self._transport.send(request))


class AsyncC2B:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def get_settings(self, channel_id: int) -> C2BSettings:
        request = ApiRequest("GET", _path(channel_id))
        return C2BSettings.model_validate(await self._transport.send(request))

    async def put_settings(
        self,
        channel_id: int,
        *,
        validation_enabled: bool = False,
        account_pattern: str | None = None,
        min_amount: int | None = None,
        max_amount: int | None = None,
        validation_url: str | None = None,
        default_action: DefaultAction = "accept",
    ) -> C2BSettings:
        """See ``C2B.put_settings``."""
        rules = _rules(validation_enabled, account_pattern, min_amount, max_amount,
                       validation_url, default_action)  # fmt: skip
        return C2BSettings.model_validate(await self._transport.send(_put(channel_id, rules)))

    async def register(self, channel_id: int) -> C2BSettings:
        request = _action(channel_id, "register")
        return C2BSettings.model_validate(await self._transport.send(request))

    async def sweep(self, channel_id: int) -> C2BSweep:
        return C2BSweep.model_validate(await self._transport.send(_action(channel_id, "sweep")))

    async def recover(self, channel_id: int, receipt: str) -> C2BRecovery:
        request = _action(channel_id, "recover", {"receipt": receipt})
        return C2BRecovery.model_validate(await self._transport.send(request))

    async def notifications(self) -> list[C2BNotification]:
        request = ApiRequest("GET", "/v1/c2b/notifications")
        return _notifications(await self._transport.send(request))
