"""The double-entry ledger: accounts, journal entries and their postings.

Units. Amounts are integers in the currency's ledger unit: whole shillings for KES (as
everywhere in pesaswitch; M-Pesa moves whole shillings) and cents for USD.

Sign convention. A posting's ``amount`` is added to its account's balance: positive is
money into that account, negative is money out of it. Every entry's postings sum to zero
per currency, so the balances of all accounts of a currency sum to zero too.

- ``wallet`` (per merchant and currency): the merchant's available funds. Never < 0.
- ``payout_hold`` (per merchant and currency): funds reserved for payouts in flight.
  Never < 0.
- ``fees`` (per currency): the operator's fee income. Never < 0.
- ``settlement`` (per shortcode and currency): the M-Pesa shortcode the money comes in
  and goes out through. It is the counterpart of money crossing the ledger's edge: a
  collection takes its amount out of it (-amount), a payout puts its amount back
  (+amount). It is therefore normally negative, and -balance is what the gateway owes
  (wallets + holds + fees) for money that went through that shortcode. It is the only
  kind allowed below zero.

The database enforces the balance rule (``ck_ledger_accounts_balance_non_negative``) and
the shape of each account; the service changes a cached balance only by a conditional
``UPDATE … SET balance = balance + :delta WHERE … balance + :delta >= 0``.

Entries and postings are immutable: nothing updates or deletes them; a correction is a
new entry. ``JournalEntry.key`` is the natural idempotency key (``collection:<receipt>``,
``payout:<id>:reserve``, …), so an entry is posted at most once whoever races to post it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pesaswitch.db import Base
from pesaswitch.kit.clock import utcnow


class Currency(StrEnum):
    KES = "KES"
    USD = "USD"


class LedgerAccountKind(StrEnum):
    WALLET = "wallet"
    PAYOUT_HOLD = "payout_hold"
    FEES = "fees"
    SETTLEMENT = "settlement"

    @property
    def may_go_negative(self) -> bool:
        return self is LedgerAccountKind.SETTLEMENT


class EntryKind(StrEnum):
    COLLECTION = "collection"
    PAYOUT_RESERVE = "payout_reserve"
    PAYOUT_SETTLE = "payout_settle"
    PAYOUT_RELEASE = "payout_release"
    # A reversal takes the collection back: reserve (wallet -> hold), then settle (the
    # collection's postings undone) or release (hold -> wallet). refunds/ledger.py.
    REVERSAL_RESERVE = "reversal_reserve"
    REVERSAL_SETTLE = "reversal_settle"
    REVERSAL_RELEASE = "reversal_release"
    ADJUSTMENT = "adjustment"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('wallet', 'payout_hold', 'fees', 'settlement')", name="kind_known"
        ),
        CheckConstraint("currency IN ('KES', 'USD')", name="currency_known"),
        # The rule concurrent spenders cannot break, whatever the code does.
        CheckConstraint("balance >= 0 OR kind = 'settlement'", name="balance_non_negative"),
        # Merchant accounts have an owner; the operator's fees and settlement have none.
        CheckConstraint(
            "(account_id IS NOT NULL) = (kind IN ('wallet', 'payout_hold'))", name="owner"
        ),
        CheckConstraint("(shortcode IS NOT NULL) = (kind = 'settlement')", name="shortcode"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # "wallet:<account>:<currency>", "fees:<currency>", "settlement:<shortcode>:<currency>":
    # a NOT NULL natural key, because a UNIQUE over nullable columns lets NULLs repeat.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=None
    )
    shortcode: Mapped[str | None] = mapped_column(String(10), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    # Σ of this account's postings, moved by post_entry in the transaction that posts them.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    # The payment (pay_…) or payout (po_…) the entry is about, when there is one.
    reference: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        # A merchant's entries, newest first: postings of its accounts → their entries.
        Index("ix_postings_account_entry", "ledger_account_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
