"""An orphaned STK push settled from the shortcode's statement (Pull Transactions).

An orphan is a pending STK payment with no CheckoutRequestID and no callback: the push's
answer was lost (a timeout) or the API process died between sending it and recording
the answer, and then the callback was lost too. STK Query needs the CheckoutRequestID,
so only the money itself can tell: a paid prompt is a transaction on the statement of
the shortcode it paid (PartyB), with the push's AccountReference as its BillRefNumber.

The rules, for the statement over the payment's window (``window_for``):

- a row **carries** the payment when its BillRefNumber is the AccountReference the push
  sent (case and surrounding spaces aside) and its time is inside the window;
- it **matches** when it also has the payment's amount, a payer compatible with the
  payment's phone (Daraja shows it whole, masked or hashed) and a receipt no payment
  holds yet;
- exactly one matching row: paid, completed with that row's receipt; no row carrying
  the payment at all: not paid, ``expired`` with ``no_transaction``; anything else (two
  matches, or rows that carry the reference but do not match): undecided, left pending.

UNCERTAIN (not in reference/daraja.md): that Daraja's statement lists STK payments at
all, and that their BillRefNumber is the AccountReference (the C2B echo of an STK
payment is read the same way, c2b/service.py). ``Settings.checks_statement`` is why.

The state changes here are service functions: a session, keyword-only arguments, no
commit. Each is a conditional UPDATE on ``status = 'pending'``, so racing workers settle
a payment once, and the completed one goes through ``service.settled`` like a callback
(one event; the wallet credit keyed by the receipt, so once).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pesaswitch.accounts.models import Channel
from pesaswitch.config import Settings
from pesaswitch.daraja.c2b import PulledTransaction
from pesaswitch.kit.clock import NAIROBI
from pesaswitch.kit.crypto import secrets_equal
from pesaswitch.payments.models import Payment, PaymentStatus
from pesaswitch.payments.service import Applied, ResultSource, reload, settled

log = structlog.get_logger(__name__)

# The result_code of a payment the statement showed was not paid.
NO_TRANSACTION = "no_transaction"
NO_TRANSACTION_DESC = (
    "No payment: the shortcode's statement (Pull Transactions) shows no transaction for "
    "this payment's account reference in the prompt's lifetime"
)
PAID_DESC = "Paid: found in the shortcode's statement (Pull Transactions)"
STATEMENT_TIME = "%Y%m%d%H%M%S"


@dataclass(frozen=True, slots=True)
class Window:
    """Nairobi time, naive and in whole seconds, as Pull Transactions takes it."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


def _nairobi(utc_naive: datetime) -> datetime:
    return utc_naive.replace(tzinfo=UTC).astimezone(NAIROBI).replace(tzinfo=None)


def window_for(settings: Settings, created_at: datetime) -> Window:
    """From the margin before the payment was created (clocks differ) to the moment its
    statement is conclusive (``Settings.orphan_after``), widened to whole seconds."""
    margin = timedelta(seconds=settings.stk_statement_margin)
    start = _nairobi(created_at - margin).replace(microsecond=0)
    end = _nairobi(created_at + settings.orphan_after).replace(microsecond=0)
    return Window(start, end + timedelta(seconds=1))


class Verdict(StrEnum):
    PAID = "paid"
    UNPAID = "unpaid"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    row: PulledTransaction | None = None
    why: str = ""


def _digits_phone(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if len(digits) == 12 and digits.startswith("254"):
        return digits
    if len(digits) == 10 and digits.startswith("0"):
        return "254" + digits[1:]
    if len(digits) == 9:
        return "254" + digits
    return None


def payer_matches(shown: str, phone: str) -> bool:
    """Whether the payer Daraja shows can be ``phone`` (2547…/2541…): in full, masked as
    C2B v2 does (``2547 ***** 149``), or as C2B v1's SHA-256 hash. A payer the statement
    leaves out contradicts nothing."""
    text = shown.strip()
    if not text:
        return True
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return secrets_equal(text.lower(), hashlib.sha256(phone.encode()).hexdigest())
    if "*" in text:
        head = re.sub(r"\D", "", text.split("*", 1)[0])
        tail = re.sub(r"\D", "", text.rsplit("*", 1)[-1])
        return phone.startswith(head) and phone.endswith(tail)
    return _digits_phone(text) == phone


def _when(row: PulledTransaction) -> datetime | None:
    if row.trans_time is None:
        return None
    return datetime.strptime(row.trans_time, STATEMENT_TIME)


def decide(
    *,
    account_reference: str,
    amount: int,
    phone: str,
    window: Window,
    rows: Iterable[PulledTransaction],
    taken: set[str],
) -> Decision:
    """The module's rules; ``taken``: receipts some payment already holds."""
    wanted = account_reference.strip().upper()
    carrying = []
    for row in rows:
        when = _when(row)
        # A row without a time is inside the pulled window, so it is kept as evidence.
        if row.bill_ref.strip().upper() == wanted and (when is None or when in window):
            carrying.append(row)
    if not carrying:
        return Decision(Verdict.UNPAID, why="no transaction carries the account reference")
    matching = [
        row
        for row in carrying
        if row.trans_id not in taken and row.amount == amount and payer_matches(row.msisdn, phone)
    ]
    if len(matching) == 1:
        return Decision(Verdict.PAID, matching[0])
    receipts = ", ".join(row.trans_id for row in carrying)
    return Decision(
        Verdict.UNDECIDED,
        why=f"{len(carrying)} transactions carry the reference ({receipts}), "
        f"{len(matching)} match amount, payer and an unused receipt",
    )


async def taken_receipts(session: AsyncSession, receipts: Iterable[str]) -> set[str]:
    wanted = sorted(set(receipts))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(Payment.mpesa_receipt).where(Payment.mpesa_receipt.in_(wanted))
    )
    return {receipt for receipt in rows if receipt is not None}


async def record_paid(
    session: AsyncSession, *, payment_id: str, row: PulledTransaction, now: datetime
) -> Applied:
    """Complete the orphan with the statement's receipt (once, like a callback)."""
    other = aliased(Payment)
    kind = select(Channel.kind).where(Channel.id == Payment.channel_id).scalar_subquery()
    statement = (
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == PaymentStatus.PENDING.value,
            ~exists().where(other.mpesa_receipt == row.trans_id),
        )
        .values(
            status=PaymentStatus.COMPLETED.value,
            result_code="0",
            result_desc=PAID_DESC,
            mpesa_receipt=row.trans_id,
            transaction_date=row.trans_time,
            settled_by=ResultSource.STATEMENT.value,
            next_query_at=None,
            finalized_at=now,
            updated_at=now,
        )
        .returning(Payment, kind)
    )
    try:
        # A savepoint: a racing transaction giving the same receipt to another payment
        # (only possible when two orphans carry one reference) fails this one alone.
        async with session.begin_nested():
            found = (
                await session.execute(
                    statement,
                    execution_options={"populate_existing": True, "synchronize_session": False},
                )
            ).first()
    except IntegrityError:
        found = None
    if found is not None:
        payment, channel_kind = found._tuple()
        await settled(
            session, payment, PaymentStatus.COMPLETED, ResultSource.STATEMENT, now, channel_kind
        )
        return Applied.APPLIED
    return _already(await reload(session, payment_id), PaymentStatus.COMPLETED, row.trans_id)


async def record_no_transaction(
    session: AsyncSession, *, payment_id: str, now: datetime
) -> Applied:
    """Expire the orphan: the statement shows it was not paid. Conditional on still
    having no CheckoutRequestID too: a push answer recorded meanwhile makes STK Query
    the better witness."""
    updated = await session.scalar(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == PaymentStatus.PENDING.value,
            Payment.checkout_request_id.is_(None),
        )
        .values(
            status=PaymentStatus.EXPIRED.value,
            result_code=NO_TRANSACTION,
            result_desc=NO_TRANSACTION_DESC,
            settled_by=ResultSource.STATEMENT.value,
            next_query_at=None,
            finalized_at=now,
            updated_at=now,
        )
        .returning(Payment),
        execution_options={"populate_existing": True, "synchronize_session": False},
    )
    if updated is not None:
        await settled(
            session, updated, PaymentStatus.EXPIRED, ResultSource.STATEMENT, now,
            count_outcome=False,
        )  # fmt: skip
        return Applied.APPLIED
    return _already(await reload(session, payment_id), PaymentStatus.EXPIRED, None)


def _already(current: Payment, status: PaymentStatus, receipt: str | None) -> Applied:
    """Someone else settled it first: the same answer is a duplicate, another a conflict
    (kept as it is: a final status is never overwritten)."""
    if current.status == status.value and (receipt is None or current.mpesa_receipt == receipt):
        return Applied.DUPLICATE
    if current.status == PaymentStatus.PENDING.value:
        # Still pending: the receipt is another payment's, or a push answer came.
        log.warning("payments.statement.not_applied", payment_id=current.id, receipt=receipt)
        return Applied.MISMATCH
    log.warning(
        "payments.result.conflict",
        payment_id=current.id,
        stored=current.status,
        incoming=status.value,
        source=ResultSource.STATEMENT.value,
    )
    return Applied.CONFLICT
