"""Kenya's banks' M-Pesa paybill numbers, from the data file shipped in the package
(``bank_paybills.json``: its ``source`` and ``retrieved`` date are served with it).

A bank channel is one of these paybills plus the merchant's account number at that bank;
``check_bank_channel`` refuses any other paybill, so a typo cannot send a merchant's
collections to the wrong business number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pesaswitch.errors import ValidationFailed

DATA_FILE = "bank_paybills.json"
# Bank account numbers: digits mostly, some with letters; spaces and dashes are dropped.
_ACCOUNT = re.compile(r"^[A-Za-z0-9]{1,40}$")


class UnknownBankPaybill(ValidationFailed):
    code = "unknown_bank_paybill"
    title = "The paybill is not a known bank's"


class InvalidBankAccount(ValidationFailed):
    code = "invalid_bank_account"
    title = "The bank account number is not valid"


@dataclass(frozen=True, slots=True)
class BankPaybill:
    name: str
    paybill: str
    aliases: tuple[str, ...] = ()

    def matches(self, query: str) -> bool:
        words = " ".join((self.name, self.paybill, *self.aliases)).lower()
        return all(part in words for part in query.lower().split())


@dataclass(frozen=True, slots=True)
class BankPaybills:
    source: str
    retrieved: str
    banks: tuple[BankPaybill, ...]

    def search(self, query: str | None) -> list[BankPaybill]:
        if not query or not query.strip():
            return list(self.banks)
        return [bank for bank in self.banks if bank.matches(query.strip())]

    def by_paybill(self, paybill: str) -> BankPaybill | None:
        return next((bank for bank in self.banks if bank.paybill == paybill), None)


@cache
def bank_paybills() -> BankPaybills:
    raw = json.loads(resources.files(__package__).joinpath(DATA_FILE).read_text("utf-8"))
    banks = tuple(
        BankPaybill(str(b["name"]), str(b["paybill"]), tuple(str(a) for a in b.get("aliases", ())))
        for b in raw["banks"]
    )
    return BankPaybills(str(raw["source"]), str(raw["retrieved"]), banks)


def check_bank_channel(paybill: str | None, account_number: str | None) -> str:
    """The normalised account number of a valid bank channel, or a ValidationFailed."""
    if not paybill or bank_paybills().by_paybill(paybill.strip()) is None:
        raise UnknownBankPaybill(
            f"{paybill!r} is not a bank paybill we know; GET /v1/bank-paybills lists them",
            paybill=paybill,
        )
    account = re.sub(r"[\s-]", "", account_number or "")
    if not _ACCOUNT.match(account):
        raise InvalidBankAccount(
            "A bank channel needs the bank account number: 1-40 letters or digits"
        )
    return account
