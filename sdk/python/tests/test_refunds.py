"""client.refunds, client.reversals and client.bank_paybills against a real gateway."""

from __future__ import annotations

import time
import uuid

import pytest

from pesaswitch_sdk import ConflictError, Pesaswitch, Refund, Reversal, ValidationError


def paid(client: Pesaswitch, amount: int, phone: str) -> str:
    payment = client.payments.create(amount=amount, phone=phone, reference=uuid.uuid4().hex)
    assert client.payments.wait_for_final(payment.id, timeout=20).status == "completed"
    return payment.id


def final_refund(client: Pesaswitch, refund_id: str) -> Refund:
    for _ in range(200):
        refund = client.refunds.get(refund_id)
        if refund.is_final:
            return refund
        time.sleep(0.05)
    raise AssertionError(f"{refund_id} is still {refund.status}")


def final_reversal(client: Pesaswitch, reversal_id: str) -> Reversal:
    for _ in range(200):
        reversal = client.reversals.get(reversal_id)
        if reversal.is_final:
            return reversal
        time.sleep(0.05)
    raise AssertionError(f"{reversal_id} is still {reversal.status}")


def test_a_partial_refund_and_an_over_refund(client: Pesaswitch) -> None:
    payment_id = paid(client, 1000, "0712345601")
    refund = client.refunds.create(payment_id, amount=100, reason="Broken item")
    assert (refund.amount, refund.payment_id, refund.reason) == (100, payment_id, "Broken item")
    assert final_refund(client, refund.id).status == "completed"
    detail = client.payments.get(payment_id)
    assert (detail.amount_refunded, detail.amount_refundable) == (100, 900)
    assert [r.id for r in detail.refunds] == [refund.id]
    with pytest.raises(ValidationError) as refused:
        client.refunds.create(payment_id, amount=901)
    assert refused.value.code == "refund_exceeds_payment"


def test_a_reversal(client: Pesaswitch) -> None:
    payment_id = paid(client, 500, "0712345602")
    reversal = client.reversals.create(payment_id, reason="Duplicate order")
    assert reversal.receipt == client.payments.get(payment_id).mpesa_receipt
    assert final_reversal(client, reversal.id).status == "completed"
    assert client.payments.get(payment_id).reversed is True
    with pytest.raises(ConflictError) as again:
        client.reversals.create(payment_id)
    assert again.value.code == "payment_already_reversed"


def test_bank_paybills(client: Pesaswitch) -> None:
    found = client.bank_paybills.list("equity")
    assert [(b.name, b.paybill) for b in found.data] == [("Equity Bank", "247247")]
    assert found.retrieved
    assert len(client.bank_paybills.list().data) > 20
