"""Random sequences of collections (credited again and again), payout reserves, settles
and releases (twice, out of order, never reserved) against the real database and
services, checked after every step against a model of the balances it should hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Environment
from pesaswitch.config import Settings
from pesaswitch.db import create_engine, create_sessionmaker, transaction
from pesaswitch.errors import InsufficientFunds, LedgerConflict
from pesaswitch.kit.ids import new_id
from pesaswitch.ledger import service
from pesaswitch.ledger.flows import (
    credit_collection,
    release_payout,
    reserve_payout,
    settle_payout,
)
from pesaswitch.ledger.models import LedgerAccountKind
from pesaswitch.ledger.policy import LedgerPolicy, bind_ledger_policy
from pesaswitch.ledger.service import system_balance
from tests.ledger.helpers import new_shortcode

T = TypeVar("T")


class State(Enum):
    RESERVED = "reserved"
    SETTLED = "settled"
    RELEASED = "released"
    REFUSED = "refused"  # the reserve was refused: nothing is held for it


@dataclass
class PayoutModel:
    amount: int
    fee: int
    state: State

    @property
    def total(self) -> int:
        return self.amount + self.fee


@dataclass
class Collection:
    payment_id: str
    receipt: str
    amount: int


class LedgerMachine(RuleBasedStateMachine):
    """One fresh merchant and one fresh payout shortcode per example; the fees account
    is shared with the rest of the suite, so it is compared from where it started."""

    def __init__(
        self,
        run: Callable[[Coroutine[Any, Any, Any]], Any],
        sessions: async_sessionmaker[AsyncSession],
        app_settings: Settings,
    ) -> None:
        super().__init__()
        self.run, self.sessions = run, sessions
        self.policy = LedgerPolicy.from_settings(app_settings)
        self.account_id: str = run(self._new_account(app_settings))
        self.payout_shortcode = new_shortcode()
        self.fees_start: int = run(self._balance(LedgerAccountKind.FEES))
        self.gateway_start: int = run(
            self._balance(LedgerAccountKind.SETTLEMENT, self.policy.gateway_shortcode)
        )
        self.wallet = self.hold = self.fees = self.collected = self.paid_out = 0
        self.collections: list[Collection] = []
        self.payouts: dict[str, PayoutModel] = {}

    async def _new_account(self, app_settings: Settings) -> str:
        async with transaction(self.sessions) as session:
            new = await accounts.create_account(
                session, secret_key=app_settings.secret_key, name="Machine shop",
                environment=Environment.SANDBOX,
            )  # fmt: skip
            return new.account.id

    async def _balance(self, kind: LedgerAccountKind, shortcode: str | None = None) -> int:
        async with self.sessions() as session:
            return await system_balance(session, kind=kind, currency="KES", shortcode=shortcode)

    def _in_transaction(self, work: Callable[[AsyncSession], Coroutine[Any, Any, T]]) -> T:
        async def main() -> T:
            async with transaction(self.sessions) as session:
                return await work(session)

        result: T = self.run(main())
        return result

    # -- collections -------------------------------------------------------------------

    def _credit(self, collection: Collection) -> Any:
        return self._in_transaction(
            lambda session: credit_collection(
                session,
                payment_id=collection.payment_id,
                account_id=self.account_id,
                amount=collection.amount,
                receipt=collection.receipt,
                shortcode=self.policy.gateway_shortcode,
            )
        )

    @rule(amount=st.integers(min_value=1, max_value=20_000))
    def collect(self, amount: int) -> None:
        collection = Collection(new_id("pay"), new_id("R")[-10:], amount)
        assert self._credit(collection) is not None
        fee = self.policy.tariff.collection_fee(amount)
        self.collections.append(collection)
        self.wallet += amount - fee
        self.fees += fee
        self.collected += amount

    @precondition(lambda self: self.collections)
    @rule(data=st.data())
    def credit_again(self, data: st.DataObject) -> None:
        """A duplicate or racing callback: the same receipt is never credited twice."""
        assert self._credit(data.draw(st.sampled_from(self.collections))) is None

    # -- payouts -----------------------------------------------------------------------

    def _step(self, flow: Any, payout_id: str, payout: PayoutModel, **extra: Any) -> Any:
        return self._in_transaction(
            lambda session: flow(
                session,
                payout_id=payout_id,
                account_id=self.account_id,
                currency="KES",
                amount=payout.amount,
                fee=payout.fee,
                **extra,
            )
        )

    @rule(amount=st.integers(min_value=1, max_value=8_000), fee=st.integers(0, 300))
    def reserve(self, amount: int, fee: int) -> None:
        payout_id, payout = new_id("po"), PayoutModel(amount, fee, State.RESERVED)
        try:
            assert self._step(reserve_payout, payout_id, payout) is not None
        except InsufficientFunds:
            assert payout.total > self.wallet
            payout.state = State.REFUSED
        else:
            assert payout.total <= self.wallet
            self.wallet -= payout.total
            self.hold += payout.total
        self.payouts[payout_id] = payout

    def _pick(self, data: st.DataObject, *states: State) -> tuple[str, PayoutModel] | None:
        chosen = sorted(pid for pid, p in self.payouts.items() if p.state in states)
        if not chosen:
            return None
        payout_id = data.draw(st.sampled_from(chosen))
        return payout_id, self.payouts[payout_id]

    @rule(data=st.data())
    def reserve_again(self, data: st.DataObject) -> None:
        picked = self._pick(data, State.RESERVED, State.SETTLED, State.RELEASED)
        if picked is not None:
            assert self._step(reserve_payout, *picked) is None

    def _finish(self, data: st.DataObject, *, settle: bool) -> None:
        picked = self._pick(data, *State)
        if picked is None:
            return
        payout_id, payout = picked
        flow = settle_payout if settle else release_payout
        extra = {"shortcode": self.payout_shortcode} if settle else {}
        same, other = (State.SETTLED, State.RELEASED) if settle else (State.RELEASED, State.SETTLED)
        if payout.state in (other, State.REFUSED):
            # The wrong order, or nothing reserved: refused, and nothing moves.
            try:
                self._step(flow, payout_id, payout, **extra)
            except LedgerConflict:
                return
            raise AssertionError(f"{payout.state} payout {payout_id} was not refused")
        entry = self._step(flow, payout_id, payout, **extra)
        if payout.state is same:
            assert entry is None  # the same step again: a no-op
            return
        assert entry is not None
        payout.state = same
        self.hold -= payout.total
        if settle:
            self.fees += payout.fee
            self.paid_out += payout.amount
        else:
            self.wallet += payout.total

    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        self._finish(data, settle=True)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self._finish(data, settle=False)

    @rule()
    def settle_never_reserved(self) -> None:
        ghost = PayoutModel(10, 0, State.REFUSED)
        try:
            self._step(settle_payout, new_id("po"), ghost, shortcode=self.payout_shortcode)
        except LedgerConflict:
            return
        raise AssertionError("a payout never reserved was settled")

    # -- after every step --------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self) -> None:
        async def read() -> tuple[dict[str, dict[str, int]], list[str], dict[str, int]]:
            async with self.sessions() as session:
                mine = await service.balances(session, account_id=self.account_id)
                breaches = await service.check_invariants(session)
                # The operator's accounts are sharded: each is the sum of its shards.
                kinds = {
                    "fees": (LedgerAccountKind.FEES, None),
                    "gateway": (LedgerAccountKind.SETTLEMENT, self.policy.gateway_shortcode),
                    "payouts": (LedgerAccountKind.SETTLEMENT, self.payout_shortcode),
                }
                others = {
                    name: await system_balance(session, kind=k, currency="KES", shortcode=code)
                    for name, (k, code) in kinds.items()
                }
                return mine, breaches, others

        mine, breaches, others = self.run(read())
        assert breaches == []
        assert mine.get("KES", {"available": 0, "reserved": 0}) == {
            "available": self.wallet,
            "reserved": self.hold,
        }
        assert others["fees"] - self.fees_start == self.fees
        assert others["gateway"] - self.gateway_start == -self.collected
        assert others["payouts"] == self.paid_out
        assert self.wallet >= 0
        assert self.hold == sum(p.total for p in self.payouts.values() if p.state is State.RESERVED)


def test_ledger_state_machine(make_settings: Callable[..., Settings]) -> None:
    app_settings = make_settings()
    # The machine is synchronous; it drives the async services on a loop of its own.
    loop = asyncio.new_event_loop()
    engine = create_engine(app_settings)
    sessions = create_sessionmaker(engine)
    bind_ledger_policy(sessions, app_settings)
    try:
        run_state_machine_as_test(
            lambda: LedgerMachine(loop.run_until_complete, sessions, app_settings),
            settings=settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
