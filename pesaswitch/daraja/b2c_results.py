"""Reading the ``Result`` callbacks of B2C, Transaction Status and Account Balance.

All three share one envelope (daraja.md §6, §7)::

    {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "…",
                "OriginatorConversationID": "…", "ConversationID": "…", "TransactionID": "…",
                "ResultParameters": {"ResultParameter": [{"Key": "…", "Value": …}, …]},
                "ReferenceData": {"ReferenceItem": {"Key": "…", "Value": "…"}}}}

Parameters are read by Key, never by position (their order changes between doc
versions). ResultCode may be a number or a string. Results are sent once, so only what
the outcome rests on is strict (a success's amount and receipt); a garbled side value
(a balance, a date) becomes None instead of losing the whole Result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pesaswitch.daraja.result_codes import (
    TRANSACTION_NOT_FOUND_CODE,
    Outcome,
    outcome_for_b2c_result_code,
    outcome_for_transaction_status,
)
from pesaswitch.daraja.wire import MalformedCallback
from pesaswitch.kit.clock import NAIROBI

B2C_COMPLETED_FORMAT = "%d.%m.%Y %H:%M:%S"  # TransactionCompletedDateTime, unlike STK's
DARAJA_TIME_FORMAT = "%Y%m%d%H%M%S"  # InitiatedTime, FinalisedTime, BOCompletedTime


@dataclass(frozen=True, slots=True)
class B2CResult:
    outcome: Outcome
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    # Present even on failures, where it is often a dummy ("XXXXXXXXXX"); only
    # ``receipt`` is a real M-Pesa receipt.
    transaction_id: str | None
    receipt: str | None = None
    amount: int | None = None
    receiver_public_name: str | None = None  # "2547XXXXXXXX - JOHN DOE"
    completed_at: datetime | None = None  # Nairobi time
    utility_account_funds: Decimal | None = None
    working_account_funds: Decimal | None = None
    charges_paid_account_funds: Decimal | None = None
    recipient_is_registered: bool | None = None


@dataclass(frozen=True, slots=True)
class QueueTimeout:
    """The request expired in Daraja's queue. Not an outcome: whether it ran is unknown
    until Transaction Status says so (daraja.md §6)."""

    originator_conversation_id: str
    conversation_id: str
    result_code: str
    result_desc: str


@dataclass(frozen=True, slots=True)
class TransactionStatusResult:
    # The original transaction's outcome (see outcome_for_transaction_status): PENDING
    # when the query itself failed, FAILED when the transaction does not exist.
    outcome: Outcome
    # The query's own code and ids; the original's ids are the ``original_*`` fields.
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_status: str | None = None  # "Completed", …
    receipt: str | None = None
    amount: int | None = None
    original_originator_conversation_id: str | None = None
    original_conversation_id: str | None = None
    debit_party_name: str | None = None
    credit_party_name: str | None = None
    initiated_at: datetime | None = None  # Nairobi time
    finalised_at: datetime | None = None  # Nairobi time

    @property
    def found(self) -> bool:
        """False when Daraja says there is no such transaction (2032)."""
        return self.result_code != TRANSACTION_NOT_FOUND_CODE


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """One account of the ``AccountBalance`` string, ``name|currency|available|…``."""

    name: str  # "Working Account", "Utility Account", "Charges Paid Account", …
    currency: str
    available: Decimal
    # The three amounts after ``available`` are loosely documented (uncleared, reserved,
    # …, daraja.md §7), so they are kept as sent.
    other_amounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountBalanceResult:
    outcome: Outcome  # COMPLETED when the balances came back
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    accounts: tuple[AccountBalance, ...] = ()
    completed_at: datetime | None = None  # Nairobi time

    def account(self, name: str) -> AccountBalance | None:
        wanted = name.strip().lower()
        return next((a for a in self.accounts if a.name.lower() == wanted), None)


def parse_b2c_result(body: Any) -> B2CResult:
    envelope = _Envelope.read(body, "B2C")
    outcome = outcome_for_b2c_result_code(envelope.code)
    params = envelope.parameters
    receipt = _str_or_none(params.get("TransactionReceipt"))
    amount = _whole_amount(params.get("TransactionAmount"))
    if outcome is Outcome.COMPLETED and (receipt is None or amount is None):
        raise MalformedCallback(
            "a successful B2C Result must carry TransactionAmount and TransactionReceipt"
        )
    registered = _str_or_none(params.get("B2CRecipientIsRegisteredCustomer"))
    return B2CResult(
        outcome=outcome,
        result_code=envelope.code,
        result_desc=envelope.desc,
        originator_conversation_id=envelope.originator_conversation_id,
        conversation_id=envelope.conversation_id,
        transaction_id=envelope.transaction_id,
        receipt=receipt,
        amount=amount,
        receiver_public_name=_str_or_none(params.get("ReceiverPartyPublicName")),
        completed_at=_nairobi_time(
            params.get("TransactionCompletedDateTime"), B2C_COMPLETED_FORMAT
        ),
        utility_account_funds=_decimal(params.get("B2CUtilityAccountAvailableFunds")),
        working_account_funds=_decimal(params.get("B2CWorkingAccountAvailableFunds")),
        charges_paid_account_funds=_decimal(params.get("B2CChargesPaidAccountAvailableFunds")),
        recipient_is_registered=None if registered is None else registered.upper() == "Y",
    )


def parse_queue_timeout(body: Any) -> QueueTimeout:
    """What Daraja posts to QueueTimeOutURL: undocumented, handlers in the wild read the
    same ``Result`` envelope, so only its ids and code are taken (daraja.md §6)."""
    envelope = _Envelope.read(body, "queue timeout")
    return QueueTimeout(
        originator_conversation_id=envelope.originator_conversation_id,
        conversation_id=envelope.conversation_id,
        result_code=envelope.code,
        result_desc=envelope.desc,
    )


def parse_transaction_status_result(body: Any) -> TransactionStatusResult:
    """Keys from daraja.md §7: ReceiptNo, TransactionStatus, Amount, OriginatorConversationID
    and ConversationID (of the original), DebitPartyName, CreditPartyName, InitiatedTime,
    FinalisedTime. DebitPartyCharges, TransactionReason, ReasonType and DebitAccountType
    are not read: nothing here decides on them."""
    envelope = _Envelope.read(body, "Transaction Status")
    params = envelope.parameters
    status = _str_or_none(params.get("TransactionStatus"))
    outcome = outcome_for_transaction_status(envelope.code, status)
    receipt = _str_or_none(params.get("ReceiptNo"))
    amount = _whole_amount(params.get("Amount"))
    if outcome is Outcome.COMPLETED and receipt is None:
        raise MalformedCallback("a Completed Transaction Status must carry ReceiptNo")
    return TransactionStatusResult(
        outcome=outcome,
        result_code=envelope.code,
        result_desc=envelope.desc,
        originator_conversation_id=envelope.originator_conversation_id,
        conversation_id=envelope.conversation_id,
        transaction_status=status,
        receipt=receipt,
        amount=amount,
        original_originator_conversation_id=_str_or_none(params.get("OriginatorConversationID")),
        original_conversation_id=_str_or_none(params.get("ConversationID")),
        debit_party_name=_str_or_none(params.get("DebitPartyName")),
        credit_party_name=_str_or_none(params.get("CreditPartyName")),
        initiated_at=_nairobi_time(params.get("InitiatedTime"), DARAJA_TIME_FORMAT),
        finalised_at=_nairobi_time(params.get("FinalisedTime"), DARAJA_TIME_FORMAT),
    )


def parse_account_balance_result(body: Any) -> AccountBalanceResult:
    envelope = _Envelope.read(body, "Account Balance")
    outcome = outcome_for_b2c_result_code(envelope.code)
    params = envelope.parameters
    accounts: tuple[AccountBalance, ...] = ()
    if outcome is Outcome.COMPLETED:
        raw = params.get("AccountBalance")
        if not isinstance(raw, str):
            raise MalformedCallback("a successful Account Balance Result must carry AccountBalance")
        accounts = parse_account_balances(raw)
    return AccountBalanceResult(
        outcome=outcome,
        result_code=envelope.code,
        result_desc=envelope.desc,
        originator_conversation_id=envelope.originator_conversation_id,
        conversation_id=envelope.conversation_id,
        accounts=accounts,
        completed_at=_nairobi_time(params.get("BOCompletedTime"), DARAJA_TIME_FORMAT),
    )


def parse_account_balances(raw: str) -> tuple[AccountBalance, ...]:
    """``"Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|KES|…"``."""
    accounts = []
    for chunk in raw.split("&"):
        if not chunk.strip():
            continue
        fields = [part.strip() for part in chunk.split("|")]
        available = _decimal(fields[2]) if len(fields) >= 3 else None
        if available is None or not fields[0]:
            raise MalformedCallback(f"unreadable account balance {chunk!r}")
        accounts.append(AccountBalance(fields[0], fields[1], available, tuple(fields[3:])))
    return tuple(accounts)


@dataclass(frozen=True, slots=True)
class _Envelope:
    code: str
    desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str | None
    parameters: dict[str, Any]

    @classmethod
    def read(cls, body: Any, what: str) -> _Envelope:
        try:
            result = body["Result"]
            raw_code = result["ResultCode"]
            originator = result["OriginatorConversationID"]
            conversation = result["ConversationID"]
        except (KeyError, TypeError) as exc:
            raise MalformedCallback(f"not a {what} Result: missing {exc}") from exc
        if not isinstance(raw_code, int | str) or isinstance(raw_code, bool):
            raise MalformedCallback("ResultCode must be a number or a string")
        code = str(raw_code).strip()
        if not code or originator is None or conversation is None:
            raise MalformedCallback(f"not a {what} Result: empty ResultCode or ids")
        return cls(
            code=code,
            desc=str(result.get("ResultDesc", "")),
            originator_conversation_id=str(originator),
            conversation_id=str(conversation),
            transaction_id=_str_or_none(result.get("TransactionID")),
            parameters=_parameters(result.get("ResultParameters")),
        )


def _parameters(container: Any) -> dict[str, Any]:
    if container is None or container == "":
        return {}  # failures usually carry no ResultParameters at all
    if not isinstance(container, dict):
        raise MalformedCallback("ResultParameters must be an object")
    items = container.get("ResultParameter")
    if items is None:
        return {}
    # A single parameter arrives as an object, several as a list.
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise MalformedCallback("ResultParameter must be a list or an object")
    return {
        item["Key"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Key"), str)
    }


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        # Through str: the float 8959269.60 becomes Decimal("8959269.6"), not its binary
        # approximation.
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _whole_amount(value: Any) -> int | None:
    # Amounts are whole shillings, seen as 10, 10.0, "10" and "10.00".
    number = _decimal(value)
    return None if number is None else int(number)


def _nairobi_time(value: Any, fmt: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(str(value).strip(), fmt).replace(tzinfo=NAIROBI)
    except ValueError:
        return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
