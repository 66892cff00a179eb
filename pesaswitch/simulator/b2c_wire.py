"""Daraja's initiator-API formats as the simulator writes them: B2C, Transaction Status and
Account Balance acknowledgements and ``Result`` callbacks (daraja.md §6, §7).

Each Result deliberately uses a shape Daraja has been seen to send, and they differ:
numbers in B2C Results, strings in Account Balance ones, a ReferenceItem without Value
in Transaction Status ones, so the client has to cope with all of them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pesaswitch.kit.clock import NAIROBI
from pesaswitch.simulator.scenarios import Behaviour, describe

B2C_COMMANDS = {"BusinessPayment", "SalaryPayment", "PromotionPayment"}
IDENTIFIER_TYPES = {"1", "2", "4"}  # MSISDN, till, shortcode
REASON_TYPES = {
    "BusinessPayment": "Business Payment to Customer via API",
    "SalaryPayment": "Salary Payment via API",
    "PromotionPayment": "Promotion Payment via API",
}
# Where the real sandbox says its queue-timeout results go (daraja.md §6).
INTERNAL_QUEUE_TIMEOUT_URL = "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit"
# A flat fee per payout, taken from the Charges Paid account. Safaricom's tariff is
# banded; 22.40 is the fee seen in a Transaction Status capture (daraja.md §7).
B2C_CHARGE = Decimal("22.40")
RECIPIENT_NAME = "JOHN DOE"
ORGANIZATION_NAME = "pesaswitch simulator"

ACCEPTED_DESCRIPTION = "Accept the service request successfully."
# Descriptions differ by API on purpose, as Daraja's do: clients must branch on codes.
B2C_DESCRIPTIONS = {
    2: "Declined due to limit rule: less than the minimum transaction amount.",
    2032: "The transaction receipt number does not exist.",
    8006: "The security credential is locked.",
}
STATUS_ANSWERED = "The service request has been accepted successsfully."  # sic, as seen
# What failed Results carry as TransactionID: a dummy, not a receipt (daraja.md §6).
DUMMY_TRANSACTION_ID = "OA90000000"
QUEUE_TIMEOUT_CODE = 1  # a guess seen in one DTO (daraja.md §6); undocumented
QUEUE_TIMEOUT_DESCRIPTION = "The service request has timed out."


def describe_b2c(code: int) -> str:
    return B2C_DESCRIPTIONS.get(code) or describe(code, for_query=False)


@dataclass(slots=True)
class ShortcodeAccounts:
    """A B2C shortcode's money: payouts leave Utility, their fees go to Charges Paid."""

    utility: Decimal
    working: Decimal = Decimal("0.00")
    charges_paid: Decimal = Decimal("0.00")

    def snapshot(self) -> ShortcodeAccounts:
        return ShortcodeAccounts(self.utility, self.working, self.charges_paid)


@dataclass(slots=True)
class SimulatedPayout:
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str
    command_id: str
    amount: int
    party_a: str
    party_b: str
    result_url: str
    queue_timeout_url: str
    result_code: int
    behaviour: Behaviour
    created_at: float  # monotonic, like the STK pushes
    final_at: float
    initiated: datetime
    balances: ShortcodeAccounts  # after this payout
    results_sent: list[int] = field(default_factory=list)

    @property
    def executed(self) -> bool:
        """Whether M-Pesa ran it at all: a request that timed out in the queue did not."""
        return self.behaviour is not Behaviour.QUEUE_TIMEOUT

    @property
    def completed(self) -> datetime:
        return self.initiated + timedelta(seconds=self.final_at - self.created_at)


def conversation_id(moment: datetime) -> str:
    """``AG_YYYYMMDD_`` followed by 20 hex characters (daraja.md §6)."""
    suffix = secrets.token_hex(10)
    return f"AG_{moment.astimezone(NAIROBI):%Y%m%d}_{suffix}"


def acknowledgement(originator_conversation_id: str, conversation: str) -> dict[str, Any]:
    return {
        "ConversationID": conversation,
        "OriginatorConversationID": originator_conversation_id,
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED_DESCRIPTION,
    }


def _money(value: Decimal) -> float:
    # Daraja sends balances as JSON numbers with cents (8959269.60, -1980.00).
    return float(value.quantize(Decimal("0.01")))


def _daraja_time(moment: datetime) -> int:
    return int(moment.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))


def _parameters(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"ResultParameter": [{"Key": key, "Value": value} for key, value in pairs]}


def b2c_result_body(payout: SimulatedPayout) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": payout.result_code,
        "ResultDesc": describe_b2c(payout.result_code),
        "OriginatorConversationID": payout.originator_conversation_id,
        "ConversationID": payout.conversation_id,
        "TransactionID": payout.transaction_id,
    }
    if payout.result_code == 0:
        # Failures carry no ResultParameters at all (daraja.md §6).
        balances = payout.balances
        completed = payout.completed.astimezone(NAIROBI)
        result["ResultParameters"] = _parameters(
            [
                ("TransactionAmount", payout.amount),
                ("TransactionReceipt", payout.transaction_id),
                ("ReceiverPartyPublicName", f"{payout.party_b} - {RECIPIENT_NAME}"),
                ("TransactionCompletedDateTime", completed.strftime("%d.%m.%Y %H:%M:%S")),
                ("B2CUtilityAccountAvailableFunds", _money(balances.utility)),
                ("B2CWorkingAccountAvailableFunds", _money(balances.working)),
                ("B2CRecipientIsRegisteredCustomer", "Y"),
                ("B2CChargesPaidAccountAvailableFunds", _money(balances.charges_paid)),
            ]
        )
    result["ReferenceData"] = {
        "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": INTERNAL_QUEUE_TIMEOUT_URL}
    }
    return {"Result": result}


def queue_timeout_body(payout: SimulatedPayout) -> dict[str, Any]:
    """Undocumented by Safaricom; the ``Result`` envelope that handlers in the wild read."""
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": QUEUE_TIMEOUT_CODE,
            "ResultDesc": QUEUE_TIMEOUT_DESCRIPTION,
            "OriginatorConversationID": payout.originator_conversation_id,
            "ConversationID": payout.conversation_id,
        }
    }


def failed_query_body(
    code: int, originator_conversation_id: str, conversation: str, *, as_strings: bool = False
) -> dict[str, Any]:
    """A Transaction Status or Account Balance Result for a query that failed."""
    return {
        "Result": {
            "ResultType": "0" if as_strings else 0,
            "ResultCode": str(code) if as_strings else code,
            "ResultDesc": describe_b2c(code),
            "OriginatorConversationID": originator_conversation_id,
            "ConversationID": conversation,
            "TransactionID": DUMMY_TRANSACTION_ID,
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
        }
    }


def transaction_status_body(
    payout: SimulatedPayout,
    *,
    originator_conversation_id: str,
    conversation: str,
    transaction_id: str,
    now: float,
) -> dict[str, Any]:
    """The status of ``payout`` as seen at monotonic time ``now``.

    ``TransactionStatus`` is "Completed" (documented), "Failed" for a failed payout and
    "Pending" while it runs: the last two are the simulator's guesses, and the client
    reads an unknown word as pending.
    """
    final = now >= payout.final_at
    status = "Pending" if not final else "Completed" if payout.result_code == 0 else "Failed"
    paid = status == "Completed"
    parameters = _parameters(
        [
            ("DebitPartyName", f"{payout.party_a} - {ORGANIZATION_NAME}"),
            ("CreditPartyName", f"{payout.party_b} - {RECIPIENT_NAME}"),
            ("OriginatorConversationID", payout.originator_conversation_id),
            ("InitiatedTime", _daraja_time(payout.initiated)),
            ("DebitAccountType", "Utility Account"),
            ("DebitPartyCharges", f"Fee For B2C Payment|KES|{B2C_CHARGE}" if paid else ""),
            ("TransactionReason", ""),
            ("ReasonType", REASON_TYPES.get(payout.command_id, "")),
            ("TransactionStatus", status),
            ("FinalisedTime", _daraja_time(payout.completed) if final else ""),
            ("Amount", float(payout.amount)),
            ("ConversationID", payout.conversation_id),
            ("ReceiptNo", payout.transaction_id),
        ]
    )
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": STATUS_ANSWERED,
            "OriginatorConversationID": originator_conversation_id,
            "ConversationID": conversation,
            "TransactionID": transaction_id,
            "ResultParameters": parameters,
            # A Key without a Value, as captured (daraja.md §7).
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
        }
    }


def account_balance_body(
    accounts: ShortcodeAccounts,
    *,
    originator_conversation_id: str,
    conversation: str,
    transaction_id: str,
    moment: datetime,
) -> dict[str, Any]:
    zero = Decimal("0.00")
    rows = [
        ("Working Account", accounts.working),
        ("Float Account", zero),
        ("Utility Account", accounts.utility),
        ("Charges Paid Account", accounts.charges_paid),
        ("Organization Settlement Account", zero),
    ]
    # name|currency|available|… with six fields per account; the last three are loosely
    # documented (daraja.md §7), so they just repeat the amount and zeroes.
    balance = "&".join(f"{name}|KES|{amount:.2f}|{amount:.2f}|0.00|0.00" for name, amount in rows)
    return {
        "Result": {
            # Strings here, as in the Account Balance documentation (daraja.md §6).
            "ResultType": "0",
            "ResultCode": "0",
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": originator_conversation_id,
            "ConversationID": conversation,
            "TransactionID": transaction_id,
            "ResultParameters": _parameters(
                [("AccountBalance", balance), ("BOCompletedTime", _daraja_time(moment))]
            ),
            "ReferenceData": {
                "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": INTERNAL_QUEUE_TIMEOUT_URL}
            },
        }
    }
