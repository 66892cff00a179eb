"""C2B work that talks to Daraja: registering a channel's URLs and the daily sweep.

Both read in one transaction, call Daraja outside any transaction, and write in another,
so no database lock is held across an HTTP round trip.

The sweep uses Pull Transactions, which Safaricom enables per shortcode on request (a
nominated number and a registration; sandbox apps cannot get it): pesaswitch implements
it against its simulator, and against production once Safaricom has enabled it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Channel
from pesaswitch.c2b import confirmations, service
from pesaswitch.c2b.models import C2BRegistration, C2BTransaction, DefaultAction
from pesaswitch.c2b.schemas import C2BSettingsIn
from pesaswitch.daraja.b2c import TransactionStatusRequest
from pesaswitch.daraja.b2c_results import TransactionStatusResult
from pesaswitch.daraja.c2b import C2BNotice, C2BRegisterRequest, ResponseType
from pesaswitch.daraja.errors import DarajaBusinessError, DarajaError
from pesaswitch.daraja.result_codes import Outcome
from pesaswitch.db import transaction
from pesaswitch.errors import DarajaOutage, DarajaRejected, ValidationFailed, log_tick_failure
from pesaswitch.kit.clock import nairobi_now, utcnow
from pesaswitch.payments.push import shortcode_auth
from pesaswitch.payouts.initiate import initiator
from pesaswitch.runtime import Runtime

log = structlog.get_logger(__name__)

# The most Pull Transactions returns per page (its offset steps by this much).
PULL_PAGE = 100


def urls_for(runtime: Runtime, registration: C2BRegistration) -> tuple[str, str]:
    base = f"{runtime.settings.effective_public_url}/daraja/c2b/{registration.token}"
    return f"{base}/confirmation", f"{base}/validation"


def _daraja_problem(exc: DarajaError) -> Exception:
    if isinstance(exc, DarajaBusinessError):
        code = (
            "c2b_already_registered"
            if "already registered" in exc.message.lower()
            else ("daraja_rejected")
        )
        status = 409 if code == "c2b_already_registered" else 422
        return DarajaRejected(f"M-Pesa refused: {exc.error_code} {exc.message}",
                              status_code=status, code=code)  # fmt: skip
    return DarajaOutage(f"M-Pesa did not answer: {exc}", status_code=503,
                        code="daraja_unavailable")  # fmt: skip


async def register_channel(
    runtime: Runtime, *, account_id: str, channel_id: int, operator: bool = False
) -> C2BRegistration:
    """Register the channel's confirmation and validation URLs with Daraja (creating the
    channel's C2B settings with defaults when it has none; on one of the gateway's own
    shortcodes only an ``operator`` may, ``service.configure``)."""
    settings = runtime.settings
    async with transaction(runtime.sessionmaker) as session:
        # The account's active channel, as for its settings (any id: 'not found').
        channel = await accounts.resolve_channel(
            session, account_id=account_id, channel_id=channel_id
        )
        registration = await session.get(C2BRegistration, channel.id)
        if registration is None:
            registration = await service.configure(
                session, channel=channel, data=C2BSettingsIn(),
                gateway_shortcode=settings.daraja_shortcode,
                reserved=(settings.daraja_b2c_shortcode,), operator=operator,
            )  # fmt: skip
        auth = await shortcode_auth(session, settings, channel)
        confirmation_url, validation_url = urls_for(runtime, registration)
        request = C2BRegisterRequest(
            shortcode=registration.shortcode,
            response_type=(
                ResponseType.CANCELLED
                if registration.default_action == DefaultAction.REJECT.value
                else ResponseType.COMPLETED
            ),
            confirmation_url=confirmation_url,
            validation_url=validation_url,
        )
    try:
        await runtime.daraja.for_app(auth.app).register_c2b_urls(request)
    except DarajaError as exc:
        log.warning("c2b.register.failed", channel_id=channel_id, error=str(exc))
        raise _daraja_problem(exc) from exc
    async with transaction(runtime.sessionmaker) as session:
        await service.mark_registered(session, channel_id=channel_id)
        return await service.get_registration(session, account_id=account_id,
                                              channel_id=channel_id)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SweepResult:
    channel_id: int
    seen: int
    recovered: list[str]


async def sweep_channel(runtime: Runtime, *, account_id: str, channel_id: int) -> SweepResult:
    """Ask Pull Transactions for the last ``c2b_sweep_window_hours`` and record every
    payment the confirmations missed (exactly once, like a confirmation)."""
    settings = runtime.settings
    async with runtime.sessionmaker() as session:
        registration = await service.get_registration(
            session, account_id=account_id, channel_id=channel_id
        )
        channel = await session.get(Channel, channel_id)
        assert channel is not None
        auth = await shortcode_auth(session, settings, channel)
        shortcode = registration.shortcode
    # Daraja's times are Nairobi's; naive, as its "YYYY-MM-DD HH:MM:SS" carries no zone.
    # Daraja's times have whole seconds: end a second late so this second's payments count.
    now_nairobi = nairobi_now().replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    start = now_nairobi - timedelta(hours=settings.c2b_sweep_window_hours)
    pulled = []
    client = runtime.daraja.for_app(auth.app)
    try:
        offset = 0
        while True:
            page = await client.pull_transactions(
                shortcode=shortcode, start=start, end=now_nairobi, offset=offset
            )
            pulled.extend(page)
            if len(page) < PULL_PAGE:
                break
            offset += PULL_PAGE
    except DarajaError as exc:
        log.warning("c2b.sweep.failed", channel_id=channel_id, error=str(exc))
        raise _daraja_problem(exc) from exc
    recovered: list[str] = []
    async with transaction(runtime.sessionmaker) as session:
        registration = await service.get_registration(
            session, account_id=account_id, channel_id=channel_id
        )
        for row in pulled:
            notice = C2BNotice(
                transaction_type="", trans_id=row.trans_id, trans_time=row.trans_time or "",
                amount=row.amount, shortcode=shortcode, bill_ref=row.bill_ref,
                msisdn=_masked(row.msisdn), first_name=row.sender.split(" ")[0] if row.sender
                else "", middle_name="", last_name="", org_balance="",
            )  # fmt: skip
            outcome = await confirmations.record_confirmation(
                session, registration=registration, notice=notice, source="sweep"
            )
            if outcome == "applied":
                recovered.append(row.trans_id)
        await session.execute(
            update(C2BRegistration)
            .where(C2BRegistration.channel_id == channel_id)
            .values(swept_until=utcnow())
        )
    if recovered:
        log.warning("c2b.sweep.recovered", channel_id=channel_id, count=len(recovered))
    return SweepResult(channel_id, len(pulled), recovered)


RECEIPT = re.compile(r"^[A-Z0-9]{10}$")


class InvalidReceipt(ValidationFailed):
    code = "invalid_receipt"
    title = "Not an M-Pesa receipt"


@dataclass(frozen=True, slots=True)
class RecoverResult:
    status: str  # known | asked
    payment_id: str | None = None


async def recover_by_receipt(
    runtime: Runtime, *, account_id: str, channel_id: int, receipt: str
) -> RecoverResult:
    """Ask Transaction Status about a receipt the merchant has (from the customer's SMS)
    whose confirmation never came; its Result, at ``/daraja/c2b/<token>/status``,
    records the payment like a confirmation would."""
    receipt = receipt.strip().upper()
    if not RECEIPT.match(receipt):
        raise InvalidReceipt("An M-Pesa receipt is 10 letters and digits, e.g. UAB1C2D3E4")
    settings = runtime.settings
    async with runtime.sessionmaker() as session:
        registration = await service.get_registration(
            session, account_id=account_id, channel_id=channel_id
        )
        known = await session.scalar(
            select(C2BTransaction).where(
                C2BTransaction.trans_id == receipt, C2BTransaction.account_id == account_id
            )
        )
        if known is not None:
            return RecoverResult("known", known.payment_id)
        channel = await session.get(Channel, channel_id)
        assert channel is not None
        auth = await shortcode_auth(session, settings, channel)
        base = f"{settings.effective_public_url}/daraja/c2b/{registration.token}"
        shortcode = registration.shortcode
    try:
        request = TransactionStatusRequest(
            initiator=await initiator(runtime), party_a=shortcode,
            result_url=f"{base}/status", queue_timeout_url=f"{base}/status-timeout",
            transaction_id=receipt, remarks="Missed C2B confirmation",
        )  # fmt: skip
        await runtime.daraja.for_app(auth.app).transaction_status(request)
    except DarajaError as exc:
        raise _daraja_problem(exc) from exc
    return RecoverResult("asked")


def notice_from_status(
    registration: C2BRegistration, result: TransactionStatusResult
) -> C2BNotice | None:
    """A completed C2B payment to this registration's shortcode, as a notice; None when
    the Result is not one (not found, not completed, another shortcode's)."""
    credit = (result.credit_party_name or "").split(" - ")[0].strip()
    if result.outcome is not Outcome.COMPLETED or not result.receipt or not result.amount:
        return None
    if credit != registration.shortcode:
        return None
    debit, _, name = (result.debit_party_name or "").partition(" - ")
    first, _, rest = name.strip().partition(" ")
    return C2BNotice(
        transaction_type="", trans_id=result.receipt.upper(),
        trans_time=result.finalised_at.strftime("%Y%m%d%H%M%S") if result.finalised_at else "",
        amount=result.amount, shortcode=registration.shortcode, bill_ref="",
        msisdn=_masked(debit.strip()), first_name=first, middle_name="",
        last_name=rest.split(" ")[-1] if rest else "", org_balance="",
    )  # fmt: skip


def _masked(msisdn: str) -> str:
    """Pull Transactions may give the full number; keep only Daraja v2's masked form."""
    digits = "".join(ch for ch in msisdn if ch.isdigit())
    if len(digits) == 12 and "*" not in msisdn:
        return f"{digits[:4]} ***** {digits[-3:]}"
    return msisdn[:64]


async def sweep_all(runtime: Runtime) -> int:
    """Every registered channel whose last sweep is older than ``c2b_sweep_interval``."""
    due_before = utcnow() - timedelta(seconds=runtime.settings.c2b_sweep_interval)
    async with runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                select(C2BRegistration.account_id, C2BRegistration.channel_id).where(
                    C2BRegistration.registered_at.is_not(None),
                    (C2BRegistration.swept_until.is_(None))
                    | (C2BRegistration.swept_until < due_before),
                )
            )
        ).all()
    for account_id, channel_id in rows:
        try:
            await sweep_channel(runtime, account_id=account_id, channel_id=channel_id)
        except Exception as exc:  # a database outage is a warning, as in every loop
            log_tick_failure("c2b.sweep.error", exc, channel_id=channel_id)
    return len(rows)
