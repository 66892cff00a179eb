"""client.payments against a real gateway: create, get, list, wait_for_final, and the
errors a payment can end in. Outcomes come from the simulator's test numbers."""

from __future__ import annotations

import re
import uuid

import pytest

from pesaswitch_sdk import (
    AuthenticationError,
    IdempotencyError,
    MpesaRejectedError,
    NotFoundError,
    PaymentStatus,
    PermissionDeniedError,
    Pesaswitch,
    ValidationError,
    WaitTimeoutError,
)

from gateway import Gateway

SUCCESS = "254708374149"
CANCELLED = "254711001032"
NO_CALLBACK = "254711990002"  # only a status query reveals the (successful) result
SUBSCRIBER_LOCKED = "254711990001"  # STK Push answered with HTTP 500 500.001.1001


def order() -> str:
    return f"order-{uuid.uuid4().hex[:10]}"


class TestCreateAndWait:
    def test_completes_with_a_receipt(self, client: Pesaswitch) -> None:
        reference = order()
        payment = client.payments.create(amount=10, phone="0708374149", reference=reference)
        assert payment.id.startswith("pay_")
        assert payment.phone == SUCCESS  # normalised by the gateway
        assert payment.reference == reference

        final = client.payments.wait_for_final(payment.id, timeout=20)
        assert final.status == PaymentStatus.COMPLETED
        assert final.is_final
        assert final.mpesa_receipt is not None
        assert re.fullmatch(r"[A-Z0-9]{10}", final.mpesa_receipt)
        assert final.finalized_at is not None

    def test_a_cancelled_prompt_is_final_too(self, client: Pesaswitch) -> None:
        payment = client.payments.create(amount=11, phone=CANCELLED)
        final = client.payments.wait_for_final(payment.id, timeout=20)
        assert final.status == PaymentStatus.CANCELLED
        assert final.result_code == "1032"
        assert final.mpesa_receipt is None

    def test_wait_gives_up_with_the_pending_payment(self, client: Pesaswitch) -> None:
        payment = client.payments.create(amount=12, phone=NO_CALLBACK)
        with pytest.raises(WaitTimeoutError) as raised:
            client.payments.wait_for_final(payment.id, timeout=0.3, poll_interval=0.1)
        assert isinstance(raised.value, TimeoutError)
        assert raised.value.payment.id == payment.id
        assert raised.value.payment.status == PaymentStatus.PENDING
        # The reconciler's status query settles it a little later.
        final = client.payments.wait_for_final(payment.id, timeout=20, poll_interval=0.2)
        assert final.status == PaymentStatus.COMPLETED


class TestIdempotency:
    def test_the_same_key_returns_the_same_payment(self, client: Pesaswitch) -> None:
        key = str(uuid.uuid4())
        first = client.payments.create(amount=13, phone=SUCCESS, idempotency_key=key)
        again = client.payments.create(amount=13, phone=SUCCESS, idempotency_key=key)
        assert again.id == first.id

    def test_without_a_key_each_create_is_a_new_payment(self, client: Pesaswitch) -> None:
        reference = order()
        first = client.payments.create(amount=14, phone=SUCCESS, reference=reference)
        second = client.payments.create(amount=14, phone=SUCCESS, reference=reference)
        assert first.id != second.id

    def test_the_same_key_with_another_body_is_refused(self, client: Pesaswitch) -> None:
        key = str(uuid.uuid4())
        client.payments.create(amount=15, phone=SUCCESS, idempotency_key=key)
        with pytest.raises(IdempotencyError) as raised:
            client.payments.create(amount=16, phone=SUCCESS, idempotency_key=key)
        assert raised.value.status == 422
        assert raised.value.code == "idempotency_key_mismatch"


class TestErrors:
    def test_an_invalid_phone(self, client: Pesaswitch) -> None:
        with pytest.raises(ValidationError) as raised:
            client.payments.create(amount=10, phone="12345")
        assert raised.value.code == "invalid_phone"
        assert raised.value.status == 422
        assert raised.value.payment is None

    def test_an_amount_out_of_range(self, client: Pesaswitch) -> None:
        with pytest.raises(ValidationError) as raised:
            client.payments.create(amount=250_001, phone=SUCCESS)
        assert raised.value.code == "amount_out_of_range"

    def test_mpesa_refusing_carries_the_failed_payment(self, client: Pesaswitch) -> None:
        with pytest.raises(MpesaRejectedError) as raised:
            client.payments.create(amount=17, phone=SUBSCRIBER_LOCKED)
        error = raised.value
        assert error.code == "daraja_subscriber_locked"
        assert error.status == 409
        assert error.payment is not None
        assert error.payment.status == PaymentStatus.FAILED
        assert client.payments.get(error.payment.id).status == PaymentStatus.FAILED

    def test_an_unknown_payment(self, client: Pesaswitch) -> None:
        with pytest.raises(NotFoundError) as raised:
            client.payments.get("pay_doesnotexist")
        assert raised.value.status == 404

    def test_a_wrong_key(self, gateway: Gateway) -> None:
        with gateway.client("sk_test_wrong") as client, pytest.raises(AuthenticationError) as e:
            client.payments.get("pay_x")
        assert e.value.code == "invalid_api_key"

    def test_a_public_key_reads_but_may_not_create(self, gateway: Gateway) -> None:
        with gateway.client(gateway.public_key) as client:
            assert client.payments.list(limit=1).data is not None
            with pytest.raises(PermissionDeniedError) as raised:
                client.payments.create(amount=10, phone=SUCCESS)
        assert raised.value.code == "insufficient_permissions"

    def test_a_key_that_is_not_one_fails_at_once(self) -> None:
        with pytest.raises(ValueError, match="pesaswitch key"):
            Pesaswitch(api_key="", base_url="http://127.0.0.1:1")


class TestList:
    def test_iterating_pages_through_every_payment(self, client: Pesaswitch) -> None:
        reference = order()
        created = {client.payments.create(amount=18, phone=SUCCESS, reference=reference).id
                   for _ in range(5)}  # fmt: skip

        page = client.payments.list(reference=reference, limit=2)
        assert len(page.data) == 2
        assert page.has_more
        seen = [payment.id for payment in page]
        assert len(seen) == len(set(seen)) == 5
        assert set(seen) == created
        # Newest first, as the gateway lists them.
        assert seen == sorted(seen, reverse=True)

    def test_filters_by_status(self, client: Pesaswitch) -> None:
        payment = client.payments.create(amount=19, phone=CANCELLED, reference=order())
        client.payments.wait_for_final(payment.id, timeout=20)
        cancelled = client.payments.list(status="cancelled", reference=payment.reference)
        assert [p.id for p in cancelled] == [payment.id]
        assert list(client.payments.list(status="completed", reference=payment.reference)) == []
